"""What the benchmarks share: the corpus, the origin-sized model, the origin
notebook's tensor builder, the timing protocol, the machine description and
the markdown table."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils import benchmark

import charrnn

# The origin notebook's model and batch: Embedding(V, 128) -> nn.RNN(128, 128) -> Linear(128, V).
EMBED_DIM = 128
HIDDEN_SIZE = 128
BATCH_SIZE = 64
SEQ_LEN = 100


def set_threads(threads: int | None) -> int:
    """Fix torch's intra-op thread count (default: torch's own default) and return it."""
    torch.set_num_threads(threads or torch.get_num_threads())
    return torch.get_num_threads()


def load_corpus() -> tuple[list[str], charrnn.CharVocab]:
    """The embedded corpus, one "title ; abstract" line per record, and its vocabulary."""
    texts = charrnn.load_texts()
    return texts, charrnn.CharVocab.from_texts(texts)


def origin_sized_model(vocab_size: int, seed: int = 0) -> charrnn.CharRNN:
    """The origin's network as a charrnn model; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return charrnn.CharRNN(vocab_size=vocab_size, cell="rnn", embed_dim=EMBED_DIM,
                           hidden_size=HIDDEN_SIZE)


def origin_to_tensor_pad(lines: Sequence[str], char2idx: dict[str, int], bos: int, eos: int,
                         pad: int) -> torch.Tensor:
    """The origin notebook's batch builder, as it was: Python lists of ids,
    then a padded tensor filled row by row, on every call."""
    rows = [[bos] + [char2idx[c] for c in line] + [eos] for line in lines]
    max_len = max(len(row) for row in rows)
    tensor = torch.full([len(lines), max_len], pad, dtype=torch.long)
    for i, row in enumerate(rows):
        tensor[i, :len(row)] = torch.tensor(row)
    return tensor


def interleaved_rates(runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Characters per second of each run, ``rounds`` times, side by side.

    Each callable does its work once and returns the characters it
    processed. Every round runs all of them, starting each round with the
    next one (a rotation), so a burst of load elsewhere on the machine hits
    all variants alike instead of deciding the comparison.

    The clock is ``torch.utils.benchmark.timer``, which waits for the
    accelerator (CUDA, MPS) to finish before it reads the time: a bare
    ``time.perf_counter`` would time only the launching of GPU kernels.
    Why not ``torch.utils.benchmark.Timer`` itself: its ``timeit`` runs the
    statement twice more as a warm-up on every call, and ``blocked_autorange``
    repeats it until a minimum time has passed; both would multiply the cost
    of the slow variants (the origin's sampler) and break the one-run slots
    of the rotation, and neither hands back the characters a run produced.
    """
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            started = benchmark.timer()
            chars = runs[name]()
            rates[name].append(chars / (benchmark.timer() - started))
    return rates


# ------------------------------------------------------------------ reporting
# Rounds whose largest and smallest differ by more than this mark a result as noisy.
NOISY = 1.5


@dataclass
class Row:
    """One line of the report: a variant's speed and, unless it is the
    baseline, its ratio to another variant and an optional target ratio."""

    benchmark: str
    variant: str
    chars_per_s: float
    ratio: float | None = None      # chars_per_s / that of `versus`
    versus: str = ""
    target: float | None = None     # the ratio must be at least this
    note: str = ""
    spread: float = 1.0             # largest / smallest round of the ratio (or of the rate)

    @property
    def result(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        result = "PASS" if self.ratio >= self.target else "FAIL"
        return result + (" (noisy)" if self.spread > NOISY else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:
        return os.cpu_count() or 1


def machine_line() -> str:
    return (f"{datetime.date.today().isoformat()} | {cpu_model()} | {core_count()} cores | "
            f"torch {torch.__version__} | {torch.get_num_threads()} threads | "
            f"Python {platform.python_version()}")


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; without guest time


def load_warning(sample_s: float = 0.5) -> str | None:
    """A warning when other processes keep the CPU busy: with as many torch
    threads as cores, a thread that loses its core stalls the others, and
    timings can be off by a large factor. Measured over ``sample_s`` before
    the run (the load average would also count the work that just ended)."""
    before = _cpu_times()
    time.sleep(sample_s)
    after = _cpu_times()
    if before is None or after is None or after[1] == before[1]:
        return None
    busy = 1 - (after[0] - before[0]) / (after[1] - before[1])
    if busy < 0.25:
        return None
    return (f"The CPU was {busy:.0%} busy with other work before the run, so the numbers are "
            "noisy (--threads 1 or OMP_WAIT_POLICY=PASSIVE suffer less from this).")


def spread(values: Sequence[float]) -> float:
    """Largest / smallest: how much the rounds disagreed."""
    return max(values) / min(values)


def summarize(rates: dict[str, list[float]], name: str,
              versus: str | None = None) -> tuple[float, float | None, float]:
    """``(chars/s, ratio, spread)`` of variant ``name`` over its rounds.

    chars/s is the median round. The ratio to ``versus`` is the median of
    the ratios measured within each round, where the two ran back to back
    under the same conditions (if both ran in every round; otherwise the
    ratio of the medians). The spread is that of the ratios (or of the
    rates, for a baseline).
    """
    mine = rates[name]
    rate = statistics.median(mine)
    if versus is None:
        return rate, None, spread(mine)
    theirs = rates[versus]
    if len(mine) == len(theirs):
        ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
        return rate, statistics.median(ratios), spread(ratios)
    return rate, rate / statistics.median(theirs), max(spread(mine), spread(theirs))


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| benchmark | variant | chars/s | ratio | target | result |",
             "| --- | --- | ---: | --- | --- | --- |"]
    for row in rows:
        ratio = "baseline" if row.ratio is None else f"{row.ratio:.2f}x {row.versus}"
        target = "" if row.target is None else f">= {row.target:g}x"
        variant = row.variant + (f" ({row.note})" if row.note else "")
        lines.append(f"| {row.benchmark} | {variant} | {_rate(row.chars_per_s)} | {ratio} | "
                     f"{target} | {row.result} |")
    return "\n".join(lines)


def verdict(rows: Sequence[Row]) -> str:
    """One line: which targets were met, and whether the rounds were noisy."""
    checked = [r for r in rows if r.result]
    failed = [r for r in checked if r.result.startswith("FAIL")]
    if not failed:
        line = f"All {len(checked)} targets met."
    else:
        names = "; ".join(f"{r.benchmark} / {r.variant}: {r.ratio:.2f}x < {r.target:g}x" for r in failed)
        line = f"{len(failed)} of {len(checked)} targets MISSED: {names}."
    noisy = max(rows, key=lambda r: r.spread, default=None)
    if noisy is not None and noisy.spread > NOISY:
        line += (f" Noisy machine: the rounds of {noisy.benchmark} / {noisy.variant} differed "
                 f"by {noisy.spread:.1f}x.")
    return line


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def report(rows: Sequence[Row], notes: Sequence[str] = (), seconds: float | None = None) -> str:
    """The markdown report: the machine line, the table, notes, the verdict."""
    footer = verdict(rows) + ("" if seconds is None else f" Total time {seconds:.0f} s.")
    return "\n".join([machine_line(), "", markdown_table(rows), "", *notes, footer])


def script_main(description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                run_rows: Callable[[argparse.Namespace], list[Row]], argv: list[str] | None = None) -> int:
    """The ``main`` of one benchmark script: its options plus ``--threads``,
    then the report on stdout (always exit 0: a report, not a test)."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    warning = load_warning()
    started = time.perf_counter()
    rows = run_rows(args)
    print(report(rows, [warning] if warning else [], time.perf_counter() - started))
    return 0
