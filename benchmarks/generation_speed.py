"""Generation speed: characters per second at several lengths, three ways,
measured side by side with the origin notebook's model size (untrained:
the speed does not depend on the weights).

* origin - the origin notebook's sampler: at every step the whole text so
  far is turned into a tensor and run through the model again, only the
  last position's logits are used: O(n^2) in the generated length;
* charrnn incremental - ``charrnn.generate``: the prefix is read once, then
  each step feeds one character and carries the recurrent state: O(n);
* charrnn batched x64 - ``charrnn.generate_batch(n=64)``: 64 samples in one
  batch; its rate is the total, 64 x length / time.

Every run produces exactly the requested number of tokens
(``stop_at_eos=False``; the origin re-implementation never stops either).

    python benchmarks/generation_speed.py [--lengths 100 500 2000] [--gen-rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch
from bench_common import (
    Row,
    interleaved_rates,
    load_corpus,
    log,
    origin_sized_model,
    origin_to_tensor_pad,
    script_main,
    summarize,
)

import charrnn
from charrnn.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

PREFIX = "We propose"
BATCH = 64
LENGTHS = (100, 500, 2000)
INCREMENTAL_TARGET = (500, 20.0)  # at length 500, incremental >= 20x the origin
BATCHED_TARGET = 20.0             # at every length, batched x64 >= 20x incremental (total chars/s)
# Lengths from which the origin is run once, not every round (it is slow).
ORIGIN_ONCE_FROM = 1000
_NOT_TEXT = [PAD_ID, BOS_ID, EOS_ID, UNK_ID]


def origin_generate(model: torch.nn.Module, vocab: charrnn.CharVocab, prefix: str, length: int,
                    generator: torch.Generator, deadline: float = float("inf")) -> tuple[str, int]:
    """The origin notebook's sampler without its prints: re-run the whole
    text (``<bos>`` text ``<eos>``, as its ``to_tensor_pad`` built it) at
    every step and sample from the last position.

    The origin stopped at ``<eos>``; here, as for charrnn with
    ``stop_at_eos=False``, it never stops early, so the special tokens get
    probability 0 and every step appends exactly one character (one
    indexing op per step, next to a forward pass over the whole text).
    Returns the text and the number of characters generated, which is
    less than ``length`` only if ``deadline`` (a ``perf_counter`` time)
    passed first.
    """
    model.eval()
    char2idx, idx2char = vocab.stoi, vocab.itos
    done = 0
    with torch.no_grad():  # generous to the origin: no autograd graph is built
        while done < length and time.perf_counter() < deadline:
            logits, _ = model(origin_to_tensor_pad([prefix], char2idx, BOS_ID, EOS_ID, PAD_ID))
            probs = torch.softmax(logits[0, -1], dim=-1)
            probs[_NOT_TEXT] = 0.0
            next_id = torch.multinomial(probs, 1, generator=generator).item()
            prefix += idx2char[next_id]
            done += 1
    return prefix, done


def run(lengths=LENGTHS, rounds: int = 5, origin_limit_s: float = 60.0, log=log) -> list[Row]:
    """For each length: warm up, time ``rounds`` interleaved rounds of the
    three samplers (the origin only once from ``ORIGIN_ONCE_FROM`` on; see
    :func:`bench_common.summarize`)."""
    _, vocab = load_corpus()
    model = origin_sized_model(len(vocab)).eval()
    generator = torch.Generator().manual_seed(0)
    seeds = iter(range(10 ** 9))
    origin_done: dict[int, int] = {}  # length -> characters the last origin run produced

    def origin(length: int, limit_s: float = float("inf")) -> Callable[[], int]:
        def go() -> int:
            _, done = origin_generate(model, vocab, PREFIX, length, generator,
                                      deadline=time.perf_counter() + limit_s)
            origin_done[length] = done
            return done
        return go

    def incremental(length: int) -> Callable[[], int]:
        def go() -> int:
            charrnn.generate(model, vocab, PREFIX, max_new_chars=length, seed=next(seeds),
                             stop_at_eos=False)
            return length
        return go

    def batched(length: int) -> Callable[[], int]:
        def go() -> int:
            charrnn.generate_batch(model, vocab, PREFIX, n=BATCH, max_new_chars=length,
                                   seed=next(seeds), stop_at_eos=False)
            return BATCH * length
        return go

    inc_name, bat_name = "charrnn incremental", f"charrnn batched x{BATCH}"
    rows: list[Row] = []
    for length in lengths:
        for warm_up in (origin(min(length, 50)), incremental(length), batched(length)):
            warm_up()
        runs = {inc_name: incremental(length), bat_name: batched(length)}
        if length < ORIGIN_ONCE_FROM:
            rates = interleaved_rates({"origin": origin(length, origin_limit_s), **runs}, rounds)
        else:
            rates = interleaved_rates(runs, rounds)
            rates.update(interleaved_rates({"origin": origin(length, origin_limit_s)}, 1))
        for name in ("origin", inc_name, bat_name):
            log(f"  {length:5d} chars {name:20s} chars/s per round: "
                + ", ".join(f"{x:,.0f}" for x in rates[name]))
        note = ""
        if origin_done[length] < length:  # cut short: only the early, cheaper steps were timed
            note = (f"stopped at {origin_done[length]} chars by the {origin_limit_s:g} s limit, "
                    "rate overstated")
        bench = f"generation {length} chars"
        inc_target = INCREMENTAL_TARGET[1] if length == INCREMENTAL_TARGET[0] else None
        ori_rate, _, ori_spread = summarize(rates, "origin")
        inc_rate, inc_ratio, inc_spread = summarize(rates, inc_name, "origin")
        bat_rate, bat_ratio, bat_spread = summarize(rates, bat_name, inc_name)
        rows += [
            Row(bench, "origin (re-run whole text)", ori_rate, note=note, spread=ori_spread),
            Row(bench, inc_name, inc_rate, inc_ratio, "origin", inc_target, spread=inc_spread),
            Row(bench, f"{bat_name} (total)", bat_rate, bat_ratio, "incremental", BATCHED_TARGET,
                spread=bat_spread),
        ]
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS),
                        help="generated characters per sample")
    parser.add_argument("--gen-rounds", type=int, default=5, help="interleaved rounds; the median counts")
    parser.add_argument("--origin-limit", type=float, default=60.0,
                        help="seconds after which one origin run is cut short (and flagged)")


def main(argv: list[str] | None = None) -> int:
    return script_main(__doc__.split("\n\n")[0], add_arguments,
                       lambda a: run(a.lengths, a.gen_rounds, a.origin_limit), argv)


if __name__ == "__main__":
    sys.exit(main())
