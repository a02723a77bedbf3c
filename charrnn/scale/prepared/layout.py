"""The names a prepared dataset uses on disk, inside its directory and beside it.

Writing, reading and the crash-safe transaction all need them, so they live
here, once, and none of those three modules has to import another for a
file name.
"""

from __future__ import annotations

from pathlib import Path

FORMAT = "charrnn-prepared"
FORMAT_VERSION = 1
SPLITS = ("train", "val")
META = "meta.json"
VOCAB = "vocab.json"

OLD = "old-"  # partials named .NAME.partial-old-*: a dataset moved aside by an overwrite


def bin_name(split: str) -> str:
    """The file of a split's token ids."""
    return f"{split}.bin"


def offsets_name(split: str) -> str:
    """The file of a split's record offsets."""
    return f"{split}.offsets.npy"


def partial_prefix(out_dir: Path) -> str:
    """How the work directories of a prepare into ``out_dir`` start
    (``.NAME.partial-``): hidden, beside ``out_dir``, easy to recognise."""
    return f".{out_dir.name}.partial-"


def lock_path(out_dir: Path) -> Path:
    """The lock file that keeps two prepares off one ``out_dir`` (``.NAME.lock``)."""
    return out_dir.parent / f".{out_dir.name}.lock"
