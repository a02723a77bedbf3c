"""Training throughput: characters per second for the origin notebook's
model and batch shape, three ways, measured side by side.

* bare step - forward, loss, backward, clip, Adam step on one batch built
  before timing: the upper limit for this model on this machine;
* charrnn Trainer - ``charrnn.Trainer(...).fit(progress=False)`` on
  ``WindowBatches(batch_size=64, seq_len=100)``, everything a user gets
  (batching, history, Ctrl-C guard, progress bookkeeping) included;
* origin loop - the origin notebook's loop: lines cut to 100 characters,
  64 random lines per step turned into a tensor from Python lists,
  ``loss.item()`` and a progress-bar update every step.

A character is a non-pad target token (every character and every ``<eos>``
the loss scores), so the three rates compare directly.

    python benchmarks/train_throughput.py [--steps 20] [--rounds 7] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import sys

import torch
from bench_common import (
    BATCH_SIZE,
    SEQ_LEN,
    Row,
    interleaved_rates,
    load_corpus,
    log,
    origin_sized_model,
    origin_to_tensor_pad,
    script_main,
    summarize,
)
from torch import nn
from tqdm.auto import tqdm

import charrnn
from charrnn.vocab import BOS_ID, EOS_ID, PAD_ID

LR = 1e-3
TRAINER_TARGET = 0.9  # the Trainer must reach 90% of the bare step's rate


class BareStep:
    """The upper limit: the optimisation step alone, on a batch built once."""

    def __init__(self, model: charrnn.CharRNN, batch: tuple[torch.Tensor, torch.Tensor]):
        self.model = model.train()
        self.inputs, self.targets = batch
        self.optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        self.chars_per_step = int((self.targets != PAD_ID).sum())

    def __call__(self, steps: int) -> int:
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            logits, _ = self.model(self.inputs)
            loss = charrnn.masked_cross_entropy(logits, self.targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
        return steps * self.chars_per_step


class TrainerRun:
    """The library as a user calls it: ``Trainer.fit`` on window batches."""

    def __init__(self, model: charrnn.CharRNN, vocab: charrnn.CharVocab, texts: list[str]):
        batches = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab),
                                        batch_size=BATCH_SIZE, seq_len=SEQ_LEN, seed=0)
        # device="cpu": all three variants run on the same device (and with
        # "auto" a CUDA machine would train this one alone on the GPU).
        config = charrnn.TrainConfig(lr=LR, clip_norm=1.0, device="cpu")
        self.trainer = charrnn.Trainer(model, vocab, batches, config=config)

    def __call__(self, steps: int) -> int:
        history = self.trainer.history
        before = history.chars_trained
        self.trainer.fit(steps=self.trainer.step + steps, progress=False)
        return history.chars_trained - before


class OriginLoop:
    """The origin notebook's training loop, re-implemented faithfully."""

    def __init__(self, model: charrnn.CharRNN, vocab: charrnn.CharVocab, texts: list[str], seed: int = 0):
        self.model = model.train()
        self.vocab_size = len(vocab)
        self.char2idx = vocab.stoi
        # The origin cut every record to 100 characters, so its inputs are
        # 64 x 101 (<bos> + 100 characters): one more column than the others,
        # which the per-character rate accounts for.
        self.lines = [line[:SEQ_LEN] for line in texts]
        self.criterion = nn.CrossEntropyLoss(ignore_index=PAD_ID)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        self.rng = random.Random(seed)
        self.history: list[float] = []

    def __call__(self, steps: int) -> int:
        chars = 0
        # Disabled like the Trainer's (progress=False): the update call is
        # made, nothing is drawn, so neither side pays for a terminal.
        bar = tqdm(total=steps, disable=True)
        for _ in range(steps):
            batch = self.rng.sample(self.lines, BATCH_SIZE)
            tensor = origin_to_tensor_pad(batch, self.char2idx, BOS_ID, EOS_ID, PAD_ID)
            inputs, targets = tensor[:, :-1], tensor[:, 1:]
            self.optimizer.zero_grad()
            logits, _ = self.model(inputs)
            loss = self.criterion(logits.reshape(-1, self.vocab_size), targets.reshape(-1))
            loss.backward()
            # The origin's threshold (1e5, which never clips); the norm is
            # computed and applied either way, so the work is the same as 1.0.
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1e5)
            self.optimizer.step()
            self.history.append(loss.item())
            bar.update(1)
            chars += sum(len(line) + 1 for line in batch)  # non-pad targets: characters + <eos>
        bar.close()
        return chars


def run(steps: int = 20, rounds: int = 7, warmup: int = 3, log=log) -> list[Row]:
    """Warm every variant up, then time ``rounds`` interleaved rounds of
    ``steps`` steps each (see :func:`bench_common.summarize`)."""
    texts, vocab = load_corpus()
    v = len(vocab)
    one_batch = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab),
                                      batch_size=BATCH_SIZE, seq_len=SEQ_LEN, seed=1).batch(0)
    variants = {
        "bare step": BareStep(origin_sized_model(v), one_batch),
        "charrnn Trainer": TrainerRun(origin_sized_model(v), vocab, texts),
        "origin loop": OriginLoop(origin_sized_model(v), vocab, texts),
    }
    for variant in variants.values():
        variant(warmup)
    rates = interleaved_rates({name: (lambda f=f: f(steps)) for name, f in variants.items()}, rounds)
    for name, values in rates.items():
        log(f"  {name:16s} chars/s per round: " + ", ".join(f"{x:,.0f}" for x in values))
    bench, bare = f"training {BATCH_SIZE}x{SEQ_LEN}", "bare step"
    bare_rate, _, bare_spread = summarize(rates, bare)
    rows = [Row(bench, bare, bare_rate, spread=bare_spread)]
    for name, target in (("charrnn Trainer", TRAINER_TARGET), ("origin loop", None)):
        rate, ratio, noise = summarize(rates, name, bare)
        rows.append(Row(bench, name, rate, ratio, bare, target, spread=noise))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=20, help="training steps per variant per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median counts")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")


def main(argv: list[str] | None = None) -> int:
    return script_main(__doc__.split("\n\n")[0], add_arguments, lambda a: run(a.steps, a.rounds, a.warmup), argv)


if __name__ == "__main__":
    sys.exit(main())
