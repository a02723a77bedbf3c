"""Reading a prepared dataset: open it memory-mapped, and check it first.

Everything :func:`open_prepared` hands to training is checked before it is
used (meta keys and types, offsets ascending within the ids, ids within the
vocabulary), so a damaged or hand-edited directory is one
:class:`~charrnn.errors.DataError` naming the file, not an IndexError in the
middle of training. :func:`is_complete` asks the same questions without
raising, for the transaction that decides what an interrupted run left.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ...batches import EncodedCorpus
from ...errors import CharRNNError, ConfigError, DataError
from ...vocab import CharVocab
from .layout import FORMAT, FORMAT_VERSION, META, SPLITS, VOCAB, partial_prefix

_CHECK_CHUNK = 1 << 23  # ids or offsets per chunk of a check (16 MB of uint16)


class MappedIds:
    """A read-only memory-mapped numpy array that answers indexing the way
    :class:`~charrnn.batches.EncodedCorpus` users expect of its ``ids``
    tensor: ``ids[tensor_of_positions]`` and ``ids[a:b]`` give fresh
    ``int64`` tensors (only the rows asked for are read from disk).

    Why not ``torch.from_numpy(memmap)``: the map is read-only (torch warns
    that writing through it is undefined), and ``uint16`` tensors lack the
    indexing kernels the batchers use."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    @property
    def shape(self) -> tuple[int, ...]:
        """The mapped array's shape."""
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype on disk (the ids come out as int64 tensors)."""
        return self.array.dtype

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, torch.Tensor):
            key = key.numpy()
        return torch.from_numpy(np.array(self.array[key], dtype=np.int64))

    def __repr__(self) -> str:
        return f"MappedIds({len(self.array):,} x {self.array.dtype})"


def read_meta(directory: str | os.PathLike) -> dict:
    """``meta.json`` of a prepared directory, checked for format and version."""
    directory = Path(directory)
    if not directory.is_dir():
        if any((p / META).is_file() for p in directory.parent.glob(partial_prefix(directory) + "*")):
            raise DataError(f"{directory}: missing, but an interrupted prepare left a dataset beside it "
                            f"({partial_prefix(directory)}*); run the same prepare again to put it back")
        raise DataError(f"{directory}: no such prepared dataset directory "
                        "(make one with: python -m charrnn prepare SNAPSHOT --out DIR)")
    path = directory / META
    if not path.exists():
        raise DataError(f"{directory}: not a complete prepared dataset ({META} is missing; an "
                        "interrupted prepare? run it again)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: not a charrnn prepared dataset (missing 'format': '{FORMAT}')")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: prepared with format version {meta.get('format_version')}; this "
                        f"charrnn reads version {FORMAT_VERSION} (prepare the data again)")
    return meta


_ID_DTYPES = ("uint8", "uint16")
_META_FIELDS = {"splits": dict, "settings": dict, "dtype": str, "vocab_size": int}
_SPLIT_FIELDS = {"records": int, "tokens": int, "ids": str, "offsets": str}


def _has_type(value, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def check_meta(path: Path, meta: dict) -> None:
    """Every key that opening reads, of its type, before any is used: a
    damaged or hand-edited ``meta.json`` is one :class:`DataError` naming
    the key, not a KeyError, and a file name cannot point outside."""
    def bad(what: str) -> DataError:
        return DataError(f"{path}: {what} (damaged or edited? run prepare again)")

    for key, kind in _META_FIELDS.items():
        if not _has_type(meta.get(key), kind):
            raise bad(f"'{key}' is missing or not a {kind.__name__}")
    if meta["dtype"] not in _ID_DTYPES:
        raise bad(f"'dtype' is {meta['dtype']!r}, not one of {', '.join(_ID_DTYPES)}")
    for split in SPLITS:
        info = meta["splits"].get(split)
        if not isinstance(info, dict):
            raise bad(f"'splits' has no '{split}' entry")
        for key, kind in _SPLIT_FIELDS.items():
            if not _has_type(info.get(key), kind):
                raise bad(f"'splits.{split}.{key}' is missing or not a {kind.__name__}")
            if kind is int and info[key] < 0:
                raise bad(f"'splits.{split}.{key}' is negative")
            if kind is str and (Path(info[key]).name != info[key] or info[key] in ("", ".", "..")):
                raise bad(f"'splits.{split}.{key}' is {info[key]!r}, not a file of the directory")


def _open_offsets(path: Path, records: int, tokens: int) -> np.ndarray:
    """The memory-mapped offsets of a split, checked: integers, one more
    than the records, from 0 up to the ids' length, strictly ascending
    (read in chunks, so a damaged file cannot make a record of -6 GB)."""
    try:
        offsets = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot be read as a .npy array ({e})") from None
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu":
        raise DataError(f"{path}: is not a 1-d array of integers ({offsets.dtype}, {offsets.ndim}-d)")
    if len(offsets) != records + 1 or offsets[0] != 0 or offsets[-1] != tokens:
        raise DataError(f"{path}: does not match {META} ({len(offsets)} offsets from {offsets[0]} to "
                        f"{offsets[-1]}; expected {records + 1} from 0 to {tokens}; damaged or "
                        "changed after prepare? run prepare again)")
    for start in range(0, len(offsets) - 1, _CHECK_CHUNK):
        steps = np.diff(np.asarray(offsets[start:start + _CHECK_CHUNK + 1], dtype=np.int64))
        if (steps < 1).any():
            raise DataError(f"{path}: the offsets are not ascending (at record "
                            f"{start + int(np.argmax(steps < 1))}); damaged? run prepare again")
    return offsets


def _open_ids(path: Path, dtype: str, tokens: int, vocab_size: int) -> np.ndarray:
    """The memory-mapped ids of a split, checked: as many as the meta says,
    and every one inside the vocabulary (a chunked max, read with
    ``fromfile`` so the pages do not stay mapped)."""
    try:
        ids = np.memmap(path, dtype=np.dtype(dtype), mode="r") if tokens else np.zeros(0, dtype)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot be opened ({e})") from None
    if len(ids) != tokens:
        raise DataError(f"{path}: holds {len(ids)} ids but {META} says {tokens}: the files do not "
                        f"match {META} (damaged or changed after prepare? run prepare again)")
    if np.iinfo(ids.dtype).max >= vocab_size:
        with open(path, "rb") as f:
            while len(chunk := np.fromfile(f, dtype=ids.dtype, count=_CHECK_CHUNK)):
                if (top := int(chunk.max())) >= vocab_size:
                    raise DataError(f"{path}: holds id {top}, outside the vocabulary of {vocab_size} "
                                    "tokens (damaged? run prepare again)")
    return ids


def open_prepared(directory: str | os.PathLike, split: str = "train"
                  ) -> tuple[EncodedCorpus, CharVocab, dict]:
    """Open one split of a prepared directory without reading it into memory:
    an :class:`EncodedCorpus` whose ids and offsets are memory-mapped, the
    vocabulary, and the meta dict. Everything is checked first (meta keys
    and types, offsets ascending within the ids, ids within the
    vocabulary), so a damaged directory is one :class:`DataError` naming
    the file, not an IndexError in the middle of training."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    directory = Path(directory)
    meta = read_meta(directory)
    check_meta(directory / META, meta)
    info = meta["splits"][split]
    if info["records"] < 1:
        raise DataError(f"{directory}: the {split} split holds no records "
                        f"(val_fraction was {meta['settings'].get('val_fraction')})")
    try:
        vocab = CharVocab.load(directory / VOCAB)
    except (CharRNNError, OSError) as e:
        raise DataError(f"{directory / VOCAB}: cannot be read ({e})") from None
    if len(vocab) != meta["vocab_size"]:
        raise DataError(f"{directory / VOCAB}: holds {len(vocab)} tokens, {META} says "
                        f"{meta['vocab_size']} (damaged or changed after prepare? run prepare again)")
    offsets = _open_offsets(directory / info["offsets"], info["records"], info["tokens"])
    ids = _open_ids(directory / info["ids"], meta["dtype"], info["tokens"], len(vocab))
    return EncodedCorpus(MappedIds(ids), MappedIds(offsets)), vocab, meta


def is_complete(directory: Path) -> bool:
    """True when ``directory`` holds a whole prepared dataset: its meta is
    valid and every file it names is there, of the size it says (a
    directory being deleted, or written without its ``meta.json``, is not)."""
    try:
        meta = read_meta(directory)
        check_meta(directory / META, meta)
        itemsize = np.dtype(meta["dtype"]).itemsize
        return all((directory / info["ids"]).stat().st_size == info["tokens"] * itemsize
                   and (directory / info["offsets"]).is_file() and (directory / VOCAB).is_file()
                   for info in meta["splits"].values())
    except (DataError, OSError):
        return False
