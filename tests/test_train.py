"""The training loop: learning, clipping, validation, Ctrl-C and resume."""

from __future__ import annotations

import math
import signal

import pytest
import torch

from charrnn import (
    CharVocab,
    ConfigError,
    EncodedCorpus,
    RecordBatches,
    SampleEvery,
    TimeLimit,
    TrainConfig,
    Trainer,
    WindowBatches,
    evaluate,
    load_checkpoint,
    train,
    train_step,
)
from charrnn.model import map_state
from charrnn.vocab import PAD_ID


def config(**kwargs) -> TrainConfig:
    """CPU, no validation unless asked: tests must not depend on a GPU."""
    return TrainConfig(**{"device": "cpu", "eval_every": 1000, "lr": 1e-2, **kwargs})


@pytest.fixture
def windows(small_corpus):
    return WindowBatches(small_corpus, batch_size=8, seq_len=24, seed=0)


@pytest.fixture
def val_windows(corpus_texts, corpus_vocab):
    corpus = EncodedCorpus.from_texts(corpus_texts[140:], corpus_vocab)
    return WindowBatches(corpus, batch_size=8, seq_len=64, seed=0)


class InterruptAt:
    """A batcher that behaves like Ctrl-C pressed while batch ``step`` is built."""

    def __init__(self, inner, step: int):
        self.inner, self.step = inner, step

    def batch(self, step):
        if step == self.step:
            raise KeyboardInterrupt
        return self.inner.batch(step)

    def eval_batches(self):
        return self.inner.eval_batches()


def spy_on_update(trainer, callback):
    """Call ``callback()`` just before every optimizer update."""
    real_step = trainer.optimizer.step

    def step(*args, **kwargs):
        callback()
        return real_step(*args, **kwargs)

    trainer.optimizer.step = step


def grad_norm(model) -> float:
    return float(torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])))


# ------------------------------------------------------------------ learning
def test_loss_goes_down_on_the_embedded_corpus(make_model, corpus_vocab, windows, val_windows):
    model = make_model(len(corpus_vocab), "gru", hidden=64)
    before = evaluate(model, val_windows, max_batches=2).nats
    trainer = Trainer(model, corpus_vocab, windows, config=config(steps=40))
    history = trainer.fit(progress=False)
    after = evaluate(model, val_windows, max_batches=2).nats
    assert len(history.train_loss) == 40
    assert sum(history.train_loss[-5:]) / 5 < history.train_loss[0] - 1.0
    assert after < before - 1.0


def test_history_records_every_step(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows, config=config(steps=7))
    history = trainer.fit(progress=False)
    assert trainer.step == 7
    assert history.steps == list(range(1, 8))
    assert len(history.train_loss) == len(history.grad_norm) == 7
    assert all(math.isfinite(x) and x > 0 for x in history.train_loss + history.grad_norm)
    scored = sum(int((windows.batch(s)[1] != PAD_ID).sum()) for s in range(7))
    assert history.chars_trained == scored


def test_fit_again_continues_where_it_stopped(make_model, corpus_vocab, windows):
    one_go = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, config=config(steps=8))
    one_go.fit(progress=False)
    twice = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, config=config(steps=8))
    twice.fit(3, progress=False)
    assert twice.step == 3
    twice.fit(progress=False)
    assert twice.step == 8
    assert twice.history.train_loss == one_go.history.train_loss


def test_time_limit_ends_the_fit_with_the_step_that_reaches_the_limit(make_model, corpus_vocab, windows,
                                                                      val_windows):
    ticks = iter(range(0, 10_000, 10))  # a clock that moves 10 s per reading: 10 s per step
    limit = TimeLimit(1, clock=lambda: next(ticks))
    samples = SampleEvery(1000, show=False)
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows, val_windows,
                      config=config(steps=100, eval_batches=1))
    trainer.fit(progress=False, callbacks=[limit, samples])
    assert trainer.step == 6 and limit.stopped_early  # step 6 ends at 60 s, the limit
    assert trainer.history.val_steps == [6] and sorted(samples.samples) == [0, 6]  # as a 6-step run ends
    trainer.fit(8, progress=False)  # fit again goes on
    assert trainer.step == 8


def test_time_limit_refuses_a_limit_that_is_not_positive():
    with pytest.raises(ValueError, match="minutes must be positive"):
        TimeLimit(0)


def test_train_shortcut(make_model, corpus_vocab, windows):
    trainer = train(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows, progress=False,
                    steps=3, device="cpu")
    assert isinstance(trainer, Trainer) and trainer.step == 3


def test_trainer_rejects_a_vocabulary_that_does_not_fit(make_model, corpus_vocab, windows):
    # a setting that does not fit, not a damaged file: ConfigError, not CheckpointError
    with pytest.raises(ConfigError, match="vocabulary"):
        Trainer(make_model(len(corpus_vocab) + 1, "rnn"), corpus_vocab, windows, config=config())


@pytest.mark.parametrize("kwargs", [{"steps": -1}, {"lr": 0.0}, {"lr": float("nan")}, {"clip_norm": -1.0},
                                    {"schedule": "linear"}, {"eval_every": 0}, {"warmup_steps": -1},
                                    {"eval_batches": 0}, {"checkpoint_every": 0}])
def test_invalid_train_config_raises_config_error_naming_the_field(kwargs):
    field = next(iter(kwargs))
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**kwargs)


def test_clip_norm_zero_means_no_clipping():
    assert TrainConfig(clip_norm=0).clip_norm is None


# ------------------------------------------------------------------ clipping
def test_gradient_clipping_bounds_the_gradient_used_by_the_update(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "lstm"), corpus_vocab, windows,
                      config=config(steps=5, clip_norm=0.01))
    used = []
    spy_on_update(trainer, lambda: used.append(grad_norm(trainer.model)))
    history = trainer.fit(progress=False)
    assert len(used) == 5
    assert all(norm > 0.01 for norm in history.grad_norm)     # recorded before clipping
    for norm in used:                                           # applied after clipping
        assert norm == pytest.approx(0.01, rel=1e-3)


def test_no_clipping_when_clip_norm_is_none(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "lstm"), corpus_vocab, windows,
                      config=config(steps=5, clip_norm=None))
    used = []
    spy_on_update(trainer, lambda: used.append(grad_norm(trainer.model)))
    history = trainer.fit(progress=False)
    assert used == pytest.approx(history.grad_norm, rel=1e-5)


def test_clipping_leaves_small_gradients_alone(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "lstm"), corpus_vocab, windows,
                      config=config(steps=3, clip_norm=1e6))
    used = []
    spy_on_update(trainer, lambda: used.append(grad_norm(trainer.model)))
    history = trainer.fit(progress=False)
    assert used == pytest.approx(history.grad_norm, rel=1e-5)


# ------------------------------------------------ train_step, the reference step
def test_train_step_is_the_step_the_trainer_takes(make_model, corpus_vocab, windows):
    """The same losses, gradient norms and weights, bit for bit, as Trainer.train_step."""
    model, twin = make_model(len(corpus_vocab), "gru"), make_model(len(corpus_vocab), "gru")
    trainer = Trainer(twin, corpus_vocab, windows, config=config(clip_norm=0.5))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(3):
        inputs, targets = windows.batch(step)
        loss, norm, _ = train_step(model, optimizer, inputs, targets, 0.5)
        assert (loss, norm) == trainer.train_step(inputs, targets)
        assert isinstance(loss, float) and isinstance(norm, float)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_train_step_carries_a_detached_state(make_model, corpus_vocab, windows, cell):
    """The state comes back cut off from the graph, and a state given to it
    is used (not zeros) but no gradient flows back into it."""
    model = make_model(len(corpus_vocab), cell)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay, so the losses compare
    inputs, targets = windows.batch(0)
    from_zeros, _, state = train_step(model, optimizer, inputs, targets, 1.0)
    tensors = state if isinstance(state, tuple) else (state,)
    assert all(t.grad_fn is None and not t.requires_grad for t in tensors)
    assert tensors[0].shape == (1, inputs.shape[0], 32)  # (layers, batch, hidden)
    earlier = torch.zeros_like(tensors[0], requires_grad=True)
    attached = map_state(state, lambda t: t + earlier)  # in a graph, as if nobody had detached it
    from_state, _, _ = train_step(model, optimizer, inputs, targets, 1.0, attached)
    assert earlier.grad is None
    assert from_state != from_zeros


def test_train_step_clips_and_reports_the_norm_before(make_model, corpus_vocab, windows):
    model = make_model(len(corpus_vocab), "lstm")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the gradients stay to be looked at
    inputs, targets = windows.batch(0)
    _, norm, _ = train_step(model, optimizer, inputs, targets, 0.01)
    assert norm > 0.01
    assert grad_norm(model) == pytest.approx(0.01, rel=1e-3)
    _, unclipped, _ = train_step(model, optimizer, inputs, targets, None)
    assert grad_norm(model) == pytest.approx(unclipped, rel=1e-5) and unclipped == pytest.approx(norm, rel=1e-5)


# ------------------------------------------------------------------ schedule
def test_warmup_then_cosine_schedule(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
                      config=config(steps=12, lr=0.01, warmup_steps=4, schedule="cosine"))
    lrs = []
    spy_on_update(trainer, lambda: lrs.append(trainer.optimizer.param_groups[0]["lr"]))
    trainer.fit(progress=False)
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lrs[4] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))       # decays
    assert min(lrs[4:]) >= 0.001 - 1e-12 and lrs[-1] < 0.003   # towards lr/10


def test_constant_schedule_keeps_the_learning_rate(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
                      config=config(steps=4, lr=0.02))
    lrs = []
    spy_on_update(trainer, lambda: lrs.append(trainer.optimizer.param_groups[0]["lr"]))
    trainer.fit(progress=False)
    assert lrs == [0.02] * 4


# ---------------------------------------------------------------- validation
def test_validation_is_recorded_every_eval_every_steps_and_at_the_end(make_model, corpus_vocab, windows,
                                                                      val_windows):
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, val_windows,
                      config=config(steps=25, eval_every=10, eval_batches=2))
    history = trainer.fit(progress=False)
    assert history.val_steps == [10, 20, 25]
    assert len(history.val_loss) == 3
    # the value recorded at the end is the loss of the final model
    assert history.val_loss[-1] == pytest.approx(evaluate(trainer.model, val_windows, max_batches=2).nats)
    assert trainer.model.training


def test_no_validation_without_validation_data(make_model, corpus_vocab, windows):
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
                      config=config(steps=4, eval_every=2))
    history = trainer.fit(progress=False)
    assert history.val_steps == [] and history.val_loss == []


# ------------------------------------------------------------------- Ctrl-C
def test_keyboard_interrupt_stops_cleanly(make_model, corpus_vocab, windows, capsys):
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, InterruptAt(windows, 4),
                      config=config(steps=10))
    history = trainer.fit(progress=False)  # returns instead of raising
    assert trainer.interrupted
    assert trainer.step == 4
    assert len(history.train_loss) == 4 and history.steps == [1, 2, 3, 4]
    assert "Interrupted at step 4" in capsys.readouterr().out


def test_keyboard_interrupt_writes_a_checkpoint_that_resumes(make_model, corpus_vocab, windows, tmp_path):
    reference = Trainer(make_model(len(corpus_vocab), "lstm", layers=2, dropout=0.3), corpus_vocab,
                        windows, config=config(steps=10))
    reference.fit(progress=False)

    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "lstm", layers=2, dropout=0.3), corpus_vocab,
                      InterruptAt(windows, 4), config=config(steps=10), checkpoint_path=path)
    trainer.fit(progress=False)
    assert trainer.interrupted and path.is_file()
    assert load_checkpoint(path)["step"] == 4

    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = Trainer.from_checkpoint(path, windows)
    assert resumed.step == 4
    resumed.fit(progress=False)
    assert not resumed.interrupted and resumed.step == 10
    assert resumed.history.train_loss == reference.history.train_loss


def test_ctrl_c_during_the_update_keeps_step_count_and_weights_consistent(make_model, corpus_vocab,
                                                                          windows):
    # A real Ctrl-C can arrive at any moment, e.g. just after the optimizer
    # changed the weights. "Stops after the current step" then means the
    # step is counted: trainer.step must equal the number of updates applied,
    # or a resumed run would repeat a step on already-updated weights.
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, config=config(steps=10))
    real_step = trainer.optimizer.step
    updates = 0

    def step_then_ctrl_c(*args, **kwargs):
        nonlocal updates
        result = real_step(*args, **kwargs)
        updates += 1
        if updates == 3:
            signal.raise_signal(signal.SIGINT)
        return result

    trainer.optimizer.step = step_then_ctrl_c
    trainer.fit(progress=False)
    assert trainer.interrupted
    assert trainer.step == updates
    assert len(trainer.history.train_loss) == updates


# ------------------------------------------------------------------- resume
def batchers(kind, corpus):
    if kind == "windows":
        return WindowBatches(corpus, batch_size=8, seq_len=24, seed=5)
    return RecordBatches(corpus, batch_size=8, max_len=48, seed=5)  # 5 batches per epoch


@pytest.mark.parametrize("kind", ["windows", "records"])
@pytest.mark.parametrize("cell", ["lstm", "scratch"])
def test_resume_reproduces_the_uninterrupted_run(make_model, corpus_vocab, small_corpus, val_windows,
                                                  tmp_path, kind, cell):
    steps = 12
    # one go
    one_go = Trainer(make_model(len(corpus_vocab), cell, layers=2, dropout=0.3), corpus_vocab,
                     batchers(kind, small_corpus), val_windows,
                     config=config(steps=steps, eval_every=4, eval_batches=1))
    one_go.fit(progress=False)

    # half, save, resume with fresh batchers, second half
    path = tmp_path / "half.pt"
    first = Trainer(make_model(len(corpus_vocab), cell, layers=2, dropout=0.3), corpus_vocab,
                    batchers(kind, small_corpus), val_windows,
                    config=config(steps=steps, eval_every=4, eval_batches=1), checkpoint_path=path)
    first.fit(steps // 2, progress=False)
    assert load_checkpoint(path)["step"] == steps // 2
    del first
    torch.manual_seed(12345)
    resumed = Trainer.from_checkpoint(path, batchers(kind, small_corpus), val_windows)
    assert resumed.step == steps // 2 and resumed.config.steps == steps
    resumed.fit(progress=False)

    assert resumed.step == steps
    assert resumed.history.train_loss == one_go.history.train_loss
    assert resumed.history.grad_norm == one_go.history.grad_norm
    assert resumed.history.steps == one_go.history.steps
    for a, b in zip(resumed.model.state_dict().values(), one_go.model.state_dict().values()):
        assert torch.equal(a, b)


def test_from_checkpoint_accepts_config_overrides(make_model, corpus_vocab, windows, tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
                      config=config(steps=3), checkpoint_path=path)
    trainer.fit(progress=False)
    resumed = Trainer.from_checkpoint(path, windows, steps=5)
    assert resumed.config.steps == 5 and resumed.config.lr == 1e-2
    resumed.fit(progress=False)
    assert resumed.step == 5 and len(resumed.history.train_loss) == 5
    assert load_checkpoint(path)["step"] == 5  # keeps writing to the same checkpoint


def test_checkpoints_are_written_every_checkpoint_every_steps(make_model, corpus_vocab, windows, tmp_path,
                                                              monkeypatch):
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
                      config=config(steps=7, checkpoint_every=3), checkpoint_path=path)
    saved_at = []
    real_save = trainer.save
    monkeypatch.setattr(trainer, "save", lambda *a: (saved_at.append(trainer.step), real_save(*a))[1])
    trainer.fit(progress=False)
    assert saved_at == [3, 6, 7]
    assert load_checkpoint(path)["step"] == 7


def test_checkpoint_vocabulary_matches_the_trainer(make_model, windows, corpus_vocab, tmp_path):
    path = tmp_path / "run.pt"
    Trainer(make_model(len(corpus_vocab), "rnn"), corpus_vocab, windows,
            config=config(steps=1), checkpoint_path=path).fit(progress=False)
    assert CharVocab.from_dict(load_checkpoint(path)["vocab"]) == corpus_vocab
