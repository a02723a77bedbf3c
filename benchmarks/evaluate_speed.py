"""Scoring and generating with the pretrained 8M-parameter LSTM on the CPU
(issue 15), measured side by side on the same model and the same records of
the embedded corpus.

Evaluation, characters per second (a character is a scored target):

* bare forward 64x256 - the model alone on full 64 x 256 windows cut from
  the same records laid end to end, no padding, no loss: the upper limit;
* evaluate before - what ``charrnn evaluate`` did before: records sorted by
  length, 64 at a time, each batch padded and read in one call;
* evaluate by length in chunks - ``charrnn.evaluate(model,
  LengthBatches(corpus, 64))``: batches of similar lengths, read in chunks
  of ``EVAL_CHUNK`` steps with the state carried, rows dropped once scored.

Int8, single-stream generation with ``charrnn.generate`` of the float32
model and of ``charrnn.load_pretrained(int8=True)`` (PyTorch's dynamic int8
quantization of the LSTM and the output layer); the note gives the int8
model's bits/char minus the float32 model's on the records above.

    python benchmarks/evaluate_speed.py [--eval-records 96] [--eval-rounds 3] [--int8-chars 200] [--threads N]

``--busy-core`` runs everything beside one other process that keeps a core
busy, the laptop of a student with a browser open: it shows how torch's
threads behave when one of them loses its core (compare ``--threads 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys

import torch
from bench_common import Row, interleaved_rates, log, script_main, summarize

import charrnn
from charrnn.batches import EncodedCorpus, LengthBatches, RecordBatches, WindowBatches
from charrnn.pretrained import quantize_int8

BATCH, WINDOW = 64, 256
EVAL_TARGET = 0.8     # evaluate >= 0.8x the bare forward
INT8_TARGET = 1.5     # int8 generation >= 1.5x float32 (and bits/char worse by <= 0.01)
INT8_MAX_BITS = 0.01
GEN_CHARS = 200


def _evaluation_runs(model, corpus: EncodedCorpus, windows: torch.Tensor) -> dict:
    """The three evaluation variants, each a callable returning its characters."""
    def bare() -> int:
        with torch.no_grad():
            for i in range(0, len(windows), BATCH):
                model(windows[i:i + BATCH])
        return windows.numel()

    def before() -> int:
        return charrnn.evaluate(model, RecordBatches(corpus, BATCH, shuffle=False), chunk_len=None).tokens

    def chunked() -> int:
        return charrnn.evaluate(model, LengthBatches(corpus, BATCH)).tokens

    return {"bare forward 64x256": bare, "evaluate before": before, "evaluate by length in chunks": chunked}


def run(records: int = 96, rounds: int = 3, gen_chars: int = GEN_CHARS, log=log) -> list[Row]:
    """Warm up, then ``rounds`` interleaved rounds of each comparison."""
    model, vocab = charrnn.load_pretrained()
    texts = sorted(charrnn.load_texts()[:records], key=len)  # the old CLI sorted by length
    corpus = EncodedCorpus.from_texts(texts, vocab)
    stream = next(iter(WindowBatches(corpus, 10 ** 9, WINDOW).eval_batches()))[0]
    windows = stream[:(corpus.num_tokens - 1) // WINDOW]  # full windows only: (n, 256)
    runs = _evaluation_runs(model, corpus, windows)
    runs["bare forward 64x256"]()  # warm-up: first calls set up oneDNN
    rates = interleaved_rates(runs, rounds)
    bench = f"evaluate pretrained ({records} records)"
    rate, _, spread = summarize(rates, "bare forward 64x256")
    rows = [Row(bench, "bare forward 64x256", rate, spread=spread)]
    for name, target in (("evaluate before", None), ("evaluate by length in chunks", EVAL_TARGET)):
        rate, ratio, spread = summarize(rates, name, "bare forward 64x256")
        rows.append(Row(bench, name, rate, ratio, "bare forward", target, spread=spread))

    int8 = quantize_int8(model)  # what load_pretrained(int8=True) returns
    delta = (charrnn.evaluate(int8, LengthBatches(corpus, BATCH)).bits_per_char
             - charrnn.evaluate(model, LengthBatches(corpus, BATCH)).bits_per_char)
    gen = {name: (lambda m=m: len(charrnn.generate(m, vocab, "", max_new_chars=gen_chars, seed=0,
                                                   stop_at_eos=False)))
           for name, m in (("float32", model), ("int8", int8))}
    for go in gen.values():
        go()
    rates = interleaved_rates(gen, rounds)
    bench = f"generation 1 stream pretrained ({gen_chars} chars)"
    note = f"bits/char {delta:+.4f}, bar <= +{INT8_MAX_BITS:g}"
    rate, ratio, spread = summarize(rates, "int8", "float32")
    base_rate, _, base_spread = summarize(rates, "float32")
    rows += [Row(bench, "float32", base_rate, spread=base_spread),
             Row(bench, "int8 dynamic quantization", rate, ratio, "float32", INT8_TARGET, note, spread)]
    for name in ("float32", "int8"):
        log(f"  generation {name:8s} chars/s per round: " + ", ".join(f"{x:,.0f}" for x in rates[name]))
    return rows


@contextlib.contextmanager
def busy_core(enabled: bool):
    """A child process spinning on one core for the duration of the block."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eval-records", type=int, default=96,
                        help="records of the embedded corpus scored by the evaluation benchmark")
    parser.add_argument("--eval-rounds", type=int, default=3, help="interleaved rounds; the median counts")
    parser.add_argument("--int8-chars", type=int, default=GEN_CHARS,
                        help="characters generated per run in the int8 comparison")
    parser.add_argument("--busy-core", action="store_true",
                        help="measure beside another process that keeps one core busy")


def main(argv: list[str] | None = None) -> int:
    return script_main(__doc__.split("\n\n")[0], add_arguments,
                       _run_from_args, argv)


def _run_from_args(args: argparse.Namespace) -> list[Row]:
    with busy_core(args.busy_core):
        if args.busy_core:
            log("one core kept busy by another process")
        return run(args.eval_records, args.eval_rounds, args.int8_chars)


if __name__ == "__main__":
    sys.exit(main())
