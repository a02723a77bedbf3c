"""Issue 14, the training half: nothing lost when a run is stopped (even
during validation), a diverging run stops with one line and keeps its last
good checkpoint, devices this machine lacks are one line, a stopped run
exits 130/143, and seeds are checked integers."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import run_cli as run

from charrnn import (
    CharVocab,
    ConfigError,
    DataConfig,
    EncodedCorpus,
    ModelError,
    TrainConfig,
    Trainer,
    WindowBatches,
    load_checkpoint,
    pick_device,
)
from charrnn.checkpoint import save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*not in the vocabulary:UserWarning")

TINY = ["--hidden-size", "8", "--embed-dim", "4", "--seq-len", "16", "--batch-size", "4",
        "--eval-batches", "2", "--no-progress", "--device", "cpu"]


def assert_one_line(rc, err, *fragments, status=2):
    assert rc == status, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("charrnn: warning:")]
    assert len(lines) == 1 and lines[0].startswith("charrnn: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.fixture
def windows(small_corpus):
    return WindowBatches(small_corpus, batch_size=8, seq_len=24, seed=0)


@pytest.fixture
def val_windows(corpus_texts, corpus_vocab):
    return WindowBatches(EncodedCorpus.from_texts(corpus_texts[140:], corpus_vocab), 8, 64, seed=0)


def config(**kwargs) -> TrainConfig:
    return TrainConfig(**{"device": "cpu", "steps": 8, "eval_every": 2, "eval_batches": 3,
                          "lr": 1e-2, **kwargs})


def histories_equal(a, b) -> None:
    assert a.steps == b.steps and a.train_loss == b.train_loss and a.grad_norm == b.grad_norm
    assert a.val_steps == b.val_steps and a.val_loss == b.val_loss


class StopDuringValidation:
    """Validation data whose ``check``-th pass is stopped after its first
    batch: by the signals in ``signals`` (a real SIGINT/SIGTERM), or by a
    ``KeyboardInterrupt`` raised in the middle of the pass."""

    def __init__(self, inner, check: int, signals=(), raise_interrupt=False):
        self.inner, self.check, self.signals, self.raise_interrupt = inner, check, signals, raise_interrupt
        self.passes = 0

    def eval_batches(self):
        self.passes += 1
        for i, batch in enumerate(self.inner.eval_batches()):
            if self.passes == self.check and i == 1:
                for signum in self.signals:
                    signal.raise_signal(signum)
                if self.raise_interrupt:
                    raise KeyboardInterrupt
            yield batch


def reference_run(make_model, corpus_vocab, windows, val_windows):
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, val_windows, config())
    trainer.fit(progress=False)
    return trainer.history


# ----------------------------------------------- 6: a stop during validation
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_validation_finishes_the_pass_then_stops(make_model, corpus_vocab, windows,
                                                                  val_windows, tmp_path, signum):
    reference = reference_run(make_model, corpus_vocab, windows, val_windows)
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows,
                      StopDuringValidation(val_windows, 2, [signum]), config(), checkpoint_path=path)
    trainer.fit(progress=False)
    assert trainer.interrupted and trainer.step == 4
    assert trainer.stop_signal == signum
    assert trainer.history.val_steps == [2, 4]  # the pass was finished, not thrown away
    assert load_checkpoint(path)["history"]["val_steps"] == [2, 4]
    resumed = Trainer.from_checkpoint(path, windows, val_windows)
    resumed.fit(progress=False)
    histories_equal(resumed.history, reference)


def test_a_second_signal_during_validation_stops_at_once_and_resume_redoes_it(
        make_model, corpus_vocab, windows, val_windows, tmp_path):
    reference = reference_run(make_model, corpus_vocab, windows, val_windows)
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows,
                      StopDuringValidation(val_windows, 2, [signal.SIGINT, signal.SIGINT]), config(),
                      checkpoint_path=path)
    trainer.fit(progress=False)
    assert trainer.interrupted and trainer.step == 4 and trainer.history.val_steps == [2]
    resumed = Trainer.from_checkpoint(path, windows, val_windows)
    resumed.fit(progress=False)
    histories_equal(resumed.history, reference)


@pytest.mark.parametrize("check", [2, 4])  # 4: the validation at the last step
def test_keyboard_interrupt_inside_validation_is_redone_on_resume(make_model, corpus_vocab, windows,
                                                                   val_windows, tmp_path, check):
    reference = reference_run(make_model, corpus_vocab, windows, val_windows)
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows,
                      StopDuringValidation(val_windows, check, raise_interrupt=True), config(),
                      checkpoint_path=path)
    trainer.fit(progress=False)
    assert trainer.interrupted and trainer.step == 2 * check
    resumed = Trainer.from_checkpoint(path, windows, val_windows)
    resumed.fit(progress=False)
    histories_equal(resumed.history, reference)


def test_fit_again_in_the_same_process_redoes_a_cut_validation(make_model, corpus_vocab, windows,
                                                                val_windows):
    reference = reference_run(make_model, corpus_vocab, windows, val_windows)
    val = StopDuringValidation(val_windows, 2, raise_interrupt=True)
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, val, config())
    trainer.fit(progress=False)
    assert trainer.interrupted
    trainer.fit(progress=False)
    histories_equal(trainer.history, reference)


def test_a_callback_interrupting_after_validation_keeps_the_result(make_model, corpus_vocab, windows,
                                                                    val_windows, tmp_path):
    reference = reference_run(make_model, corpus_vocab, windows, val_windows)

    class CtrlCAfterValidation:
        def on_validation_end(self, trainer):
            if trainer.step == 4:
                raise KeyboardInterrupt

    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, val_windows, config(),
                      checkpoint_path=path)
    trainer.fit(progress=False, callbacks=[CtrlCAfterValidation()])
    assert trainer.interrupted and load_checkpoint(path)["history"]["val_steps"] == [2, 4]
    resumed = Trainer.from_checkpoint(path, windows, val_windows)
    resumed.fit(progress=False)
    histories_equal(resumed.history, reference)


# ------------------------------------------------------- 11: a run diverges
class PoisonWeightsAt:
    """A callback that makes the weights nan after step ``step``, as a
    learning rate far too high does."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(math.nan)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(make_model, corpus_vocab, windows,
                                                                      tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows,
                      config=config(eval_every=1000, checkpoint_every=2), checkpoint_path=path)
    with pytest.raises(ModelError, match=r"the loss became nan at step 4.*lower the learning rate"):
        trainer.fit(progress=False, callbacks=[PoisonWeightsAt(3)])
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model_state"].values())
    assert trainer.history.steps == [1, 2, 3]  # the nan step is not recorded


def test_non_finite_weights_are_never_written(make_model, corpus_vocab, windows, tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows,
                      config=config(eval_every=1000, checkpoint_every=2), checkpoint_path=path)
    trainer.fit(2, progress=False)
    before = path.read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = math.inf
    with pytest.raises(ModelError, match="not finite"):
        trainer.save()
    assert path.read_bytes() == before


def test_a_nan_validation_loss_stops_training(make_model, corpus_vocab, windows, val_windows, tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, val_windows,
                      config=config(eval_every=2), checkpoint_path=path)
    trainer.fit(2, progress=False)
    trainer.context.evaluate = lambda *a: type("R", (), {"nats": math.nan})()
    with pytest.raises(ModelError, match="validation loss became nan at step 4"):
        trainer.fit(progress=False)
    assert load_checkpoint(path)["step"] == 2


@pytest.mark.parametrize("lr", [math.inf, math.nan])
def test_a_non_finite_learning_rate_is_a_config_error(lr):
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=lr)


def test_train_lr_inf_is_one_line(tmp_path):
    rc, out, err = run(["train", *TINY, "--steps", "4", "--lr", "inf", "--out", tmp_path / "x.pt"])
    assert_one_line(rc, err, "--lr", "lr must be")
    assert not (tmp_path / "x.pt").exists()


def nan_checkpoint(tmp_path, corpus_vocab, make_model, windows) -> Path:
    """A resumable checkpoint (optimizer state and all) whose weights are nan."""
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, windows, config=config(steps=6))
    trainer.fit(1, progress=False)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(math.nan)
    path = tmp_path / "nan.pt"
    save_checkpoint(path, trainer.model, corpus_vocab, optimizer=trainer.optimizer, step=1,
                    train_config=trainer.config.to_dict())
    return path


def test_resuming_a_nan_checkpoint_is_a_model_error(tmp_path, corpus_vocab, make_model, windows):
    path = nan_checkpoint(tmp_path, corpus_vocab, make_model, windows)
    with pytest.raises(ModelError, match="nan.pt.*not finite"):
        Trainer.from_checkpoint(path, windows)


def test_train_resume_of_a_nan_checkpoint_is_one_line_and_writes_nothing(tmp_path, corpus_vocab,
                                                                        make_model, windows):
    path = nan_checkpoint(tmp_path, corpus_vocab, make_model, windows)
    before = path.read_bytes()
    rc, out, err = run(["train", "--resume", path, "--no-progress"])
    assert_one_line(rc, err, "not finite")
    assert path.read_bytes() == before


# --------------------------------------------------------- 12: the device
@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("name, fragment", [
    ("cuda", "cuda is not available on this machine; available: cpu"),
    ("cuda:1", "cuda:1 is not available on this machine; available: cpu"),
    ("mps", "mps is not available on this machine; available: cpu"),
    ("warp-drive", "unknown device 'warp-drive'"),
])
def test_pick_device_names_what_is_available(no_gpu, name, fragment):
    with pytest.raises(ConfigError) as info:
        pick_device(name)
    assert fragment in str(info.value) and "available: cpu" in str(info.value)


def test_pick_device_with_one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match="cuda:1 is not available on this machine; available: cpu, cuda:0"):
        pick_device("cuda:1")


def test_the_trainer_refuses_a_device_this_machine_lacks(no_gpu, make_model, corpus_vocab, windows):
    with pytest.raises(ConfigError, match="cuda is not available"):
        Trainer(make_model(len(corpus_vocab)), corpus_vocab, windows, config=config(device="cuda"))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("device") / "x.pt"
    rc, out, err = run(["train", *TINY, "--steps", "2", "--out", path])
    assert rc == 0, err
    return path


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps", "warp-drive"])
@pytest.mark.parametrize("command", ["train", "demo", "sample", "evaluate"])
def test_every_command_with_device_says_what_is_available(no_gpu, tiny_checkpoint, tmp_path, command, device):
    if command in ("train", "demo"):
        argv = [command, *TINY, "--steps", "2", "--out", tmp_path / "x.pt", "--device", device]
    else:
        argv = [command, "--checkpoint", tiny_checkpoint, "--device", device]
    rc, out, err = run(argv)
    assert_one_line(rc, err, "charrnn: error:", "available: cpu")
    assert not out and not (tmp_path / "x.pt").exists()


def cuda_checkpoint(tiny_checkpoint, tmp_path) -> Path:
    """The tiny checkpoint as if trained with --device cuda (for 4 steps)."""
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["train_config"].update(device="cuda", steps=4)
    path = tmp_path / "cuda.pt"
    torch.save(ckpt, path)
    return path


def test_device_typed_on_resume_is_honoured(no_gpu, tiny_checkpoint, tmp_path):
    path = cuda_checkpoint(tiny_checkpoint, tmp_path)
    rc, out, err = run(["train", "--resume", path, "--no-progress", "--device", "cpu"])
    assert rc == 0, err
    assert "device cpu" in out
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4 and ckpt["train_config"]["device"] == "cpu"


def test_a_cuda_checkpoint_resumes_on_a_machine_without_cuda(no_gpu, tiny_checkpoint, tmp_path):
    path = cuda_checkpoint(tiny_checkpoint, tmp_path)
    with pytest.warns(UserWarning, match="trained with device cuda, but cuda is not available.*--device"):
        rc, out, err = run(["train", "--resume", path, "--no-progress"])
    assert rc == 0, err
    assert "device cpu" in out
    assert load_checkpoint(path)["step"] == 4


def test_from_checkpoint_falls_back_from_a_missing_device(no_gpu, tiny_checkpoint, tmp_path, small_corpus):
    path = cuda_checkpoint(tiny_checkpoint, tmp_path)
    vocab_size = load_checkpoint(path)["model_config"]["vocab_size"]
    vocab = CharVocab.from_dict(load_checkpoint(path)["vocab"])
    corpus = EncodedCorpus.from_texts(["an abstract about things"] * 20, vocab)
    with pytest.warns(UserWarning, match="cuda is not available"):
        trainer = Trainer.from_checkpoint(path, WindowBatches(corpus, 4, 8))
    assert trainer.device == torch.device("cpu") and len(vocab) == vocab_size


# ---------------------------------------------------- 20: seeds in range
@pytest.mark.parametrize("seed", [-1, 2**63, "1e23", 1.5, True])
def test_seed_must_be_a_whole_number_in_range(seed):
    with pytest.raises(ConfigError, match="seed must be a whole number from 0 to"):
        DataConfig(seed=seed)


def test_largest_seed_works():
    assert DataConfig(seed=2**63 - 1).seed == 2**63 - 1


@pytest.mark.parametrize("seed", ["1e23", "100000000000000000000000", "-1", "x"])
@pytest.mark.parametrize("command", ["train", "demo"])
def test_a_bad_seed_is_one_line(tmp_path, command, seed):
    rc, out, err = run([command, *TINY, "--steps", "2", "--out", tmp_path / "x.pt", "--seed", seed])
    assert_one_line(rc, err, "--seed", "0 to 9223372036854775807")
    assert not out


def test_prepare_seed_is_checked_too(tmp_path, tiny_jsonl):
    rc, out, err = run(["prepare", tiny_jsonl, "--out", tmp_path / "s.jsonl", "--sample", "3",
                        "--seed", "1e23"])
    assert_one_line(rc, err, "--seed", "0 to 9223372036854775807")


# --------------------------------------------- 16: a stopped run's exit status
SUBPROCESS_TRAIN = ["--steps", "120", "--hidden-size", "8", "--embed-dim", "4", "--seq-len", "8",
                    "--batch-size", "2", "--eval-every", "40", "--eval-batches", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = tmp_path_factory.mktemp("signal") / "one-go.pt"
    rc, out, err = run(["train", *SUBPROCESS_TRAIN, "--no-progress", "--out", path])
    assert rc == 0, err
    return load_checkpoint(path)["history"]


def start_and_stop(path: Path, signum: int) -> subprocess.CompletedProcess:
    """``python -m charrnn train`` stopped by ``signum`` once its progress bar shows a step."""
    log = path.with_suffix(".log")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "0"}
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "charrnn", "train", *SUBPROCESS_TRAIN,
                                    "--out", str(path)], stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, env=env)
        deadline = time.monotonic() + 120
        while not re.search(r"\| *[1-9]\d*/120", log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, log.read_text())


@pytest.mark.parametrize("signum, status, name", [(signal.SIGINT, 130, "SIGINT"),
                                                  (signal.SIGTERM, 143, "SIGTERM")])
def test_a_stopped_run_exits_128_plus_the_signal_and_resumes_exactly(uninterrupted, tmp_path, signum,
                                                                     status, name):
    path = tmp_path / "run.pt"
    result = start_and_stop(path, signum)
    assert result.returncode == status, result.stderr
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.startswith("charrnn:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"stopped by {name} at step" in lines[0] and str(path) in lines[0]
    assert f"python -m charrnn train --resume {path}" in lines[0]
    step = load_checkpoint(path)["step"]
    assert 0 < step < 120
    rc, out, err = run(["train", "--resume", path, "--no-progress"])
    assert rc == 0, err
    history = load_checkpoint(path)["history"]
    assert history["train_loss"] == uninterrupted["train_loss"]
    assert history["val_steps"] == uninterrupted["val_steps"]
    assert history["val_loss"] == uninterrupted["val_loss"]
