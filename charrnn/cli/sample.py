"""``sample``: generate text from a checkpoint.

The sampling flags (``--temperature``, ``--top-k``, ...) are made from the
fields of :class:`charrnn.sample.SamplingRule`, and the size limits are the
library's (:func:`charrnn.sample.check_sample_size`): a new sampling rule or
limit needs no change here."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch

from ..checkpoint import load_model
from ..config import check_seed
from ..devices import pick_device
from ..errors import ConfigError
from ..pretrained import quantize_int8
from ..sample import MAX_GENERATED_CHARS, MAX_NEW_CHARS, MAX_SAMPLES, SamplingRule, check_sample_size, stream_batch
from .flags import add_config_flags, config_from_args, device_name, non_negative_int, with_default

# sample writes a little safer than the model as trained (SamplingRule's 1.0).
SAMPLE_RULE_DEFAULTS = {"temperature": 0.8}


def add_sample_parser(sub) -> None:
    """The ``sample`` command and its flags."""
    text = "generate text from a checkpoint"
    p = sub.add_parser("sample", help=text, description=text + (
        "; several samples are generated as one batch, and --seed makes them reproducible"))
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint to sample from")
    p.add_argument("--prefix", default="", help="text to continue (default: none, start a new record)")
    p.add_argument("-n", type=int, default=1, help=with_default(
        f"number of samples, at most {MAX_SAMPLES:,} (and n x length at most {MAX_GENERATED_CHARS:,})", 1))
    p.add_argument("--length", type=non_negative_int, default=300,
                   help=with_default(f"most new characters per sample, at most {MAX_NEW_CHARS:,}", 300))
    add_config_flags(p, SamplingRule, base=SAMPLE_RULE_DEFAULTS)  # --temperature, --top-k, ...
    p.add_argument("--seed", type=int, help="seed for reproducible samples (default: none, new each run)")
    p.add_argument("--device", type=device_name, default="cpu",
                   help=with_default("auto, cpu, cuda, cuda:1 or mps", "cpu"))
    p.add_argument("--int8", action="store_true",
                   help="CPU only: the LSTM/GRU and output weights in 8 bits (dynamic quantization), which "
                        "wrote about 3x faster with the pretrained LSTM for +0.006 bits/char (default: float32)")
    p.set_defaults(func=cmd_sample, config_base=SAMPLE_RULE_DEFAULTS)


def cmd_sample(args) -> None:
    """``sample``: generate text from a checkpoint, seeded for reproducible
    output. The first sample is printed as it is written (the others follow
    at the end, since they grow together): a long run shows progress, and an
    interrupted one keeps the first sample's text so far."""
    check_sample_size(args.n, args.length)
    rule = config_from_args(SamplingRule, args)
    if args.seed is not None:
        check_seed(args.seed)
    device = pick_device(args.device)
    if args.int8 and device.type != "cpu":
        raise ConfigError(f"--int8 is for generating on the CPU; on {device} leave it out")
    model, vocab = load_model(args.checkpoint, device)
    if args.int8:
        model = quantize_int8(model)
    blocks = stream_batch(model, vocab, args.prefix, args.n, args.length, seed=args.seed, **rule.to_dict())
    others: list[list[str]] = [[] for _ in range(args.n - 1)]
    with _one_thread_for_one_stream(device, args.n):
        for pieces in blocks:
            sys.stdout.write(pieces[0])
            sys.stdout.flush()
            for text, piece in zip(others, pieces[1:], strict=True):
                text.append(piece)
    print("".join("\n\n" + "".join(text) for text in others))  # the samples, blank lines between


@contextlib.contextmanager
def _one_thread_for_one_stream(device: torch.device, n: int):
    """One torch thread while a single sample is written on the CPU. Each
    step is a few small products that threads must meet after; when another
    program holds a core, a thread left waiting for it stalls every step. On
    2 cores with one kept busy the pretrained LSTM wrote 94 chars/s on 2
    threads and 293 on one; idle, one thread was as fast to within 10%
    (benchmarks/README.md). Batches keep torch's threads: they have real
    work to share."""
    if device.type != "cpu" or n != 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
