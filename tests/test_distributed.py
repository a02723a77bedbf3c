"""Distributed training on the CPU: two gloo processes, through the library
(torch.multiprocessing) and through ``torchrun -m charrnn train``; the
sharding rule; the single-process context doing nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import charrnn
from charrnn import EncodedCorpus, RecordBatches, TrainConfig, Trainer, WindowBatches, load_checkpoint
from charrnn.batches import _generator, shift_targets
from charrnn.scale.distributed import DistributedContext, init_distributed
from charrnn.vocab import PAD_ID

try:
    import torch.distributed as dist
    HAVE_GLOO = dist.is_available() and dist.is_gloo_available()
except ImportError:
    HAVE_GLOO = False

needs_gloo = pytest.mark.skipif(not HAVE_GLOO, reason="torch.distributed with gloo is not available")
TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ sharding
def old_window_batch(batches: WindowBatches, step: int):
    """The single-process formula from before sharding existed."""
    high = batches.corpus.num_tokens - batches.seq_len
    starts = torch.randint(high, (batches.batch_size,), generator=_generator(batches.seed, step))
    return shift_targets(batches.corpus.ids[starts[:, None] + torch.arange(batches.seq_len + 1)].long())


def test_single_process_window_batches_are_unchanged(small_corpus):
    batches = WindowBatches(small_corpus, batch_size=4, seq_len=16, seed=3)
    for step in (0, 1, 57):
        for new, old in zip(batches.batch(step), old_window_batch(batches, step)):
            assert torch.equal(new, old)
    # Recorded with the formula before sharding: notebooks rely on these.
    starts = torch.randint(small_corpus.num_tokens - 16, (4,), generator=_generator(3, 0))
    assert torch.equal(batches.batch(0)[0][:, 0], small_corpus.ids[starts].long())


def test_ranks_draw_different_windows_and_rank_0_the_single_process_ones(small_corpus):
    single = WindowBatches(small_corpus, batch_size=4, seq_len=16, seed=3)
    rank0 = WindowBatches(small_corpus, batch_size=4, seq_len=16, seed=3, rank=0, world_size=2)
    rank1 = WindowBatches(small_corpus, batch_size=4, seq_len=16, seed=3, rank=1, world_size=2)
    for step in range(3):
        assert torch.equal(rank0.batch(step)[0], single.batch(step)[0])
        assert not torch.equal(rank1.batch(step)[0], rank0.batch(step)[0])
        assert torch.equal(rank1.batch(step)[0], rank1.batch(step)[0])  # still a pure function


def test_record_batches_split_each_epoch_between_ranks(small_corpus, corpus_vocab):
    corpus = EncodedCorpus.from_texts([f"paper {i}" for i in range(12)], corpus_vocab)
    single = RecordBatches(corpus, batch_size=3, seed=1)
    ranks = [RecordBatches(corpus, batch_size=3, seed=1, rank=r, world_size=2) for r in (0, 1)]
    # step s of rank r is batch 2s + r of the single-process sequence
    for step in range(4):
        for r in (0, 1):
            assert torch.equal(ranks[r].batch(step)[0], single.batch(2 * step + r)[0])
    # together, the two ranks' first two steps are one epoch: every record once
    rows = [tuple(row.tolist()) for s in range(2) for r in (0, 1) for row in ranks[r].batch(s)[0]]
    assert len(rows) == 12 and len(set(rows)) == 12


@pytest.mark.parametrize("kwargs", [dict(rank=2, world_size=2), dict(rank=-1, world_size=2),
                                    dict(rank=0, world_size=0)])
def test_batches_reject_an_impossible_shard(small_corpus, kwargs):
    with pytest.raises(ValueError, match="rank"):
        WindowBatches(small_corpus, 4, 16, **kwargs)


# ------------------------------------------------------------ single process
def test_without_torchrun_the_context_is_a_no_op(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed()
    assert ctx == DistributedContext() and ctx.is_main and not ctx.is_distributed
    assert ctx.all_reduce_sum([1.5, 2]) == [1.5, 2.0] and ctx.all_reduce_mean([3.0]) == [3.0]
    model = torch.nn.Linear(2, 2)
    assert ctx.wrap(model, torch.device("cpu")) is model
    ctx.barrier()
    ctx.cleanup()
    assert ctx.device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_distributed() == DistributedContext()


def test_world_size_without_the_rest_of_torchrun_env_is_a_clear_error(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(charrnn.CharRNNError, match="torchrun"):
        init_distributed()


def test_a_distributed_trainer_needs_sharded_batches(make_model, corpus_vocab, small_corpus):
    ctx = DistributedContext(rank=1, world_size=2, backend="gloo")  # not joined: fails before any collective
    with pytest.raises(ValueError, match="rank=context.rank"):
        Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, WindowBatches(small_corpus, 4, 16),
                config=TrainConfig(device="cpu"), context=ctx)


def test_single_process_checkpoints_record_world_size_1(make_model, corpus_vocab, small_corpus, tmp_path):
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, WindowBatches(small_corpus, 4, 16),
                      config=TrainConfig(device="cpu", steps=2), checkpoint_path=tmp_path / "a.pt")
    trainer.fit(progress=False)
    assert load_checkpoint(tmp_path / "a.pt")["data_config"]["world_size"] == 1
    resumed = Trainer.from_checkpoint(tmp_path / "a.pt", WindowBatches(small_corpus, 4, 16))
    assert "world_size" not in resumed.data_config


def test_sigterm_stops_after_the_step_like_ctrl_c(make_model, corpus_vocab, small_corpus, tmp_path):
    # torchrun and batch schedulers stop workers with SIGTERM: a checkpoint, no lost step
    import signal

    path = tmp_path / "run.pt"
    trainer = Trainer(make_model(len(corpus_vocab), "gru"), corpus_vocab, WindowBatches(small_corpus, 4, 16),
                      config=TrainConfig(device="cpu", steps=10, eval_every=1000), checkpoint_path=path)
    real_step, updates = trainer.optimizer.step, []

    def step_then_sigterm(*args, **kwargs):
        result = real_step(*args, **kwargs)
        updates.append(1)
        if len(updates) == 3:
            signal.raise_signal(signal.SIGTERM)
        return result

    trainer.optimizer.step = step_then_sigterm
    before = signal.getsignal(signal.SIGTERM)
    trainer.fit(progress=False)
    assert trainer.interrupted and trainer.step == 3 and load_checkpoint(path)["step"] == 3
    assert signal.getsignal(signal.SIGTERM) == before  # handler put back


# ---------------------------------------------------------- two processes
def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One rank: train, then half a run + resume, and write what it saw."""
    os.environ.update(WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = init_distributed(backend="gloo", device="cpu")
    try:
        texts = charrnn.load_texts()[:60]
        vocab = charrnn.CharVocab.from_texts(texts)
        corpus = EncodedCorpus.from_texts(texts, vocab)

        def batches():
            return WindowBatches(corpus, 8, 32, seed=0, rank=ctx.rank, world_size=ctx.world_size)

        val = WindowBatches(corpus, 8, 32, seed=0)

        def fresh_model():
            torch.manual_seed(100 + rank)  # different on each rank: DDP must make them equal
            return charrnn.CharRNN(vocab_size=len(vocab), cell="lstm", hidden_size=48, embed_dim=16)

        config = TrainConfig(steps=24, lr=1e-2, eval_every=12, eval_batches=3, device="cpu")
        trainer = Trainer(fresh_model(), vocab, batches(), val, config, context=ctx)
        trainer.fit(progress=False)

        path = Path(out) / "half.pt"
        first = Trainer(fresh_model(), vocab, batches(), val, config, checkpoint_path=path, context=ctx)
        first.fit(12, progress=False)
        resumed = Trainer.from_checkpoint(path, batches(), val, context=ctx)
        resumed.fit(progress=False)

        params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        torch.save({"params": params, "history": trainer.history.__dict__,
                    "resumed_loss": resumed.history.train_loss,
                    "resumed_params": torch.cat([p.detach().flatten() for p in resumed.model.parameters()]),
                    "batch0": trainer.train_data.batch(0)[0],
                    "chars": sum(int((trainer.train_data.batch(s)[1] != PAD_ID).sum()) for s in range(24))},
                   Path(out) / f"rank{rank}.pt")
    finally:
        ctx.cleanup()


@needs_gloo
def test_two_gloo_processes_train_one_model(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert torch.equal(r0["params"], r1["params"])  # gradients were averaged: same updates
    assert not torch.equal(r0["batch0"], r1["batch0"])  # each rank its own data
    h = r0["history"]
    h.pop("seconds"), r1["history"].pop("seconds")  # wall time is each rank's own
    assert h == r1["history"]  # mean loss, validation and character counts agree
    assert len(h["train_loss"]) == 24 and h["val_steps"] == [12, 24]
    assert sum(h["train_loss"][-4:]) / 4 < sum(h["train_loss"][:4]) / 4 - 0.3
    assert h["chars_trained"] == r0["chars"] + r1["chars"]  # both ranks counted: global throughput
    # same world size: a resumed run continues exactly
    assert r0["resumed_loss"] == h["train_loss"]
    assert torch.equal(r0["resumed_params"], r0["params"])
    ckpt = load_checkpoint(tmp_path / "half.pt")
    assert ckpt["step"] == 24 and ckpt["data_config"]["world_size"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model_state"])


# ------------------------------------------------------------------ torchrun
def torchrun() -> list[str] | None:
    exe = Path(sys.executable).with_name("torchrun")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("torchrun")
    return [found] if found else None


@needs_gloo
@pytest.mark.skipif(torchrun() is None, reason="torchrun is not installed")
@pytest.mark.filterwarnings("ignore:.*not in the vocabulary:UserWarning")
def test_torchrun_train_then_resume_in_one_process(tmp_path, capsys):
    out = tmp_path / "ddp.pt"
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run(
        [*torchrun(), "--standalone", "--nproc_per_node=2", "-m", "charrnn", "train",
         "--steps", "6", "--hidden", "24", "--embed", "8", "--seq-len", "24", "--batch-size", "4",
         "--eval-every", "3", "--device", "cpu", "--no-progress", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("finished at step 6") == 1  # rank 0 alone reports
    assert "x 2 processes (gloo)" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt"]  # one checkpoint, no leftovers
    model, vocab = charrnn.load_model(out)
    assert model.config.hidden_size == 24
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 6 and ckpt["data_config"]["world_size"] == 2

    from charrnn.cli import main
    with pytest.warns(UserWarning, match="trained on 2 process"):
        rc = main(["train", "--resume", str(out), "--steps", "9", "--no-progress", "--device", "cpu"])
    assert rc == 0
    assert "resuming" in capsys.readouterr().out
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 9 and len(ckpt["history"]["train_loss"]) == 9
    assert ckpt["data_config"]["world_size"] == 1
