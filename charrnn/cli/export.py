"""``export``: a smaller checkpoint, for sampling only."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from ..data import same_file
from ..errors import CheckpointError
from .flags import check_out


def add_export_parser(sub) -> None:
    """The ``export`` command and its flags."""
    text = "a smaller checkpoint for sampling only: no optimizer state, optionally float16 weights"
    p = sub.add_parser("export", help=text, description=text + (
        "; it samples and evaluates like the original but cannot be resumed"))
    p.add_argument("checkpoint", type=Path, help="checkpoint to read")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never the input)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> None:
    """``export``: a smaller checkpoint for sampling only (no optimizer
    state, optionally float16 weights), e.g. to ship with the package."""
    if same_file(args.out, args.checkpoint):
        raise CheckpointError(f"{args.out}: is the checkpoint it reads ({args.checkpoint}); an export drops "
                              "the optimizer state it needs to resume, so write the export to another --out")
    check_out(args.out, args.overwrite)
    ckpt = load_checkpoint(args.checkpoint)
    model, vocab = model_from_checkpoint(ckpt)
    save_checkpoint(args.out, model, vocab, step=ckpt.get("step", 0), history=ckpt.get("history"),
                    train_config=ckpt.get("train_config"), data_config=ckpt.get("data_config"),
                    weights_dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {args.out}: {model.num_parameters:,} parameters, "
          f"{Path(args.out).stat().st_size / 1e6:.1f} MB, no optimizer state")
