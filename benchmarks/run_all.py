"""Run every benchmark and print one markdown report: the machine, one
table with each variant's characters per second and ratios, PASS/FAIL for
each target. The exit status is 0 whether or not a target is met (it is a
report); the last line says which were missed.

    python benchmarks/run_all.py [--out FILE] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import evaluate_speed
import generation_speed
import train_throughput
from bench_common import load_warning, log, report, set_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's default, printed in the report)")
    train_throughput.add_arguments(parser)
    generation_speed.add_arguments(parser)
    evaluate_speed.add_arguments(parser)
    args = parser.parse_args(argv)

    set_threads(args.threads)
    warning = load_warning()
    started = time.perf_counter()
    log("training throughput ...")
    rows = train_throughput.run(args.steps, args.rounds, args.warmup)
    log("generation speed ...")
    rows += generation_speed.run(args.lengths, args.gen_rounds, args.origin_limit)
    log("pretrained model: evaluation and int8 ...")
    rows += evaluate_speed.run(args.eval_records, args.eval_rounds, args.int8_chars)
    notes = [
        f"Medians of {args.rounds} interleaved rounds of {args.steps} steps (training) and of "
        f"{args.gen_rounds} rounds (generation; the origin runs once from "
        f"{generation_speed.ORIGIN_ONCE_FROM} characters on); a ratio is the median of the "
        "ratios within each round. A character is a scored (non-pad) target in training and a "
        "generated token in generation; batched counts the 64 samples together. The pretrained "
        f"model's rows: {args.eval_rounds} rounds over the first {args.eval_records} records of the "
        "embedded corpus (a character is a scored target; the bare forward counts every window "
        "position) and of single-stream generation.",
        "",
    ]
    if warning:
        notes[-1:-1] = [warning]
    text = report(rows, notes, time.perf_counter() - started)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
        log(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
