"""RNN, GRU and LSTM on notebook 04's budget, over several seeds: the
numbers behind the notebook's section 5.

The notebook trains each cell once, with seed 0 (about 20 s for the three);
a sentence such as "the LSTM is ahead" needs more seeds than that, and five
seeds of all three cells would take the notebook two minutes. So this
script runs them, with the notebook's exact settings (its split and
vocabulary, embedding 32, hidden size 128, batches of 32 x 64 random
windows, Adam at 1e-2, clipping at 1.0, 400 steps, validation every 100
steps on the whole validation stream) on one torch thread, as the notebook
does. A seed sets both the initial weights (``torch.manual_seed``) and the
order of the batches (``WindowBatches(seed=...)``); seed 0 is the
notebook's own run.

    python benchmarks/cell_comparison.py              # seeds 0-4, about 2 minutes on one core
    python benchmarks/cell_comparison.py --seeds 0 1 --out /tmp/cells.csv

It writes one CSV row per (cell, seed, validation step) with the
validation loss in bits per character (four decimals), and prints the mean
and the range over seeds at the last step. The committed result,
``benchmarks/results/cell_comparison.csv``, is what notebook 04 quotes
(``tests/test_notebook_claims_04.py`` checks the two agree). On another
machine the second decimal can move by a few thousandths (notebooks/README.md,
"Printed numbers must be the same on every machine").
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
from pathlib import Path

import torch

import charrnn

CELLS = ("rnn", "gru", "lstm")
SIZES = {"embed_dim": 32, "hidden_size": 128}
RESULTS = Path(__file__).resolve().parent / "results" / "cell_comparison.csv"


def notebook_config(steps: int = 400) -> charrnn.TrainConfig:
    """Section 4's settings, as notebook 04 writes them."""
    return charrnn.TrainConfig(steps=steps, lr=1e-2, clip_norm=1.0, eval_every=100, eval_batches=None,
                               device="cpu")


def notebook_corpora() -> tuple[charrnn.CharVocab, charrnn.EncodedCorpus, charrnn.EncodedCorpus]:
    """Notebook 04's split of the embedded records: vocabulary from the
    training texts, each split one stream of ids."""
    train_records, val_records = charrnn.split_records(charrnn.load_records(), 0.1)
    train_texts = [charrnn.format_record(r) for r in train_records]
    val_texts = [charrnn.format_record(r) for r in val_records]
    vocab = charrnn.CharVocab.from_texts(train_texts)
    return (vocab, charrnn.EncodedCorpus.from_texts(train_texts, vocab),
            charrnn.EncodedCorpus.from_texts(val_texts, vocab))


def run(cell: str, seed: int, steps: int = 400) -> list[tuple[int, float]]:
    """Train one cell from one seed; ``(step, validation bits/char)`` at each validation."""
    vocab, train, val = notebook_corpora()
    torch.manual_seed(seed)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell=cell, **SIZES)
    history = charrnn.Trainer(model, vocab, charrnn.WindowBatches(train, batch_size=32, seq_len=64, seed=seed),
                              charrnn.WindowBatches(val, batch_size=64, seq_len=64),
                              notebook_config(steps)).fit(progress=False)
    return [(step, charrnn.bits_per_char(loss)) for step, loss in zip(history.val_steps, history.val_loss, strict=True)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(5)))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--out", type=Path, default=RESULTS, help="the CSV to write")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as the notebook: the same float sums, in the same order
    print(f"{platform.processor() or platform.machine()}, 1 torch thread, torch {torch.__version__}")
    rows = [(cell, seed, step, bits) for cell in CELLS for seed in args.seeds
            for step, bits in run(cell, seed, args.steps)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["cell", "seed", "step", "val_bits_per_char"])
        writer.writerows((cell, seed, step, f"{bits:.4f}") for cell, seed, step, bits in rows)
    print(f"validation bits/char after {args.steps} steps, seeds {args.seeds}:")
    for cell in CELLS:
        final = [bits for c, _, step, bits in rows if c == cell and step == args.steps]
        print(f"{cell:<5} mean {statistics.fmean(final):.3f}, range {min(final):.3f}-{max(final):.3f}: "
              + ", ".join(f"{b:.3f}" for b in final))
    print("written:", args.out)


if __name__ == "__main__":
    main()
