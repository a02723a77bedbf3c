"""What notebook 09's homework reaches on a laptop: bits per character after
5 and after 20 minutes of training on a 20,000-record sample of arXiv, with
the yardsticks (unigram, bigram, xz) on the same held-out records.

The numbers quoted in notebook 09 and the README come from this script. It
is one run, timed by the wall clock (validation and samples included), so
it answers the student's question "what do I get in 20 minutes?", not a
throughput question; run it on an otherwise idle machine.

    python benchmarks/capstone_run.py --data data/oai-sample.jsonl \\
        [--records 20000] [--minutes 5 20] [--threads N] [--out capstone.pt]

Any file ``charrnn train --data`` reads works: JSON lines from
``charrnn download --source oai`` or a ``.txt`` of your own.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import charrnn
from charrnn.corpus import load_split_texts


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="JSON lines or .txt that `charrnn train --data` reads")
    p.add_argument("--records", type=int, default=20_000, help="a seeded sample of this many records")
    p.add_argument("--minutes", type=float, nargs="+", default=[5, 20],
                   help="report the validation loss at these wall-clock times (the last ends the run)")
    p.add_argument("--cell", default="lstm", choices=charrnn.config.CELLS)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, the number of cores)")
    p.add_argument("--out", default="capstone.pt", help="the checkpoint at the end")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = charrnn.DataConfig(data=args.data, sample=args.records, val_fraction=0.05, batch_size=args.batch_size,
                              seq_len=args.seq_len, seed=0)
    corpora = charrnn.load_corpora(data)
    train_texts, val_texts, _ = load_split_texts(data)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    print(corpora.summary)
    V = len(corpora.vocab)
    print(f"vocabulary {V}, training characters {corpora.train.num_tokens:,}, "
          f"validation characters {corpora.val.num_tokens:,}")
    yardsticks = {"unigram": charrnn.ngram_bits_per_char(corpora.train, corpora.val, V, order=1),
                  "bigram": charrnn.ngram_bits_per_char(corpora.train, corpora.val, V, order=2),
                  **charrnn.compressor_bits_per_char(val_texts)}
    print("yardsticks on the validation records:",
          ", ".join(f"{name} {bits:.2f}" for name, bits in yardsticks.items()))

    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=V, cell=args.cell, embed_dim=args.embed, hidden_size=args.hidden)
    config = charrnn.TrainConfig(steps=10**9, lr=args.lr, eval_every=10**9, eval_batches=None, device="cpu")
    trainer = charrnn.Trainer(model, corpora.vocab, charrnn.WindowBatches(corpora.train, batch_size=args.batch_size,
                                                                          seq_len=args.seq_len, seed=0),
                              charrnn.WindowBatches(corpora.val, batch_size=64, seq_len=args.seq_len), config)
    print(f"{args.cell}, hidden {args.hidden}, embedding {args.embed}: {model.num_parameters:,} parameters; "
          f"lr {args.lr:g}, batches of {args.batch_size} x {args.seq_len}")
    started, done = time.perf_counter(), 0.0
    print("| minutes | steps | characters trained | validation bits/char |\n| --- | --- | --- | --- |")
    for minutes in args.minutes:
        trainer.fit(progress=False, callbacks=[charrnn.TimeLimit(minutes - done)])
        done = (time.perf_counter() - started) / 60
        print(f"| {done:.1f} | {trainer.step:,} | {trainer.history.chars_trained:,} | "
              f"{charrnn.bits_per_char(trainer.history.val_loss[-1]):.2f} |", flush=True)
    trainer.save(args.out)
    for seed in range(3):
        print(f"\nsample {seed} (temperature 0.8):",
              charrnn.generate(model, corpora.vocab, "", 400, temperature=0.8, seed=seed))
    known = charrnn.word_list(train_texts)
    samples = [charrnn.generate(model, corpora.vocab, "", 300, temperature=0.8, seed=s) for s in range(8)]
    print(f"\nknown words in 8 samples of 300 characters: {charrnn.known_word_share(samples, known):.0%}")


if __name__ == "__main__":
    main()
