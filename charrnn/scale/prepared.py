"""A prepared dataset: the whole arXiv snapshot encoded once, on disk.

``prepare`` of a JSON-lines sample keeps everything in memory, which does
not scale to the 4 GB Kaggle snapshot. :func:`prepare_dataset` streams the
snapshot once and writes a directory that training opens with ``np.memmap``,
so neither step needs more memory for a larger file::

    out_dir/
      train.bin, val.bin                  token ids back to back, <bos> text <eos> per record
                                          (uint8 when the vocabulary fits, else uint16)
      train.offsets.npy, val.offsets.npy  int64, record i is ids[offsets[i]:offsets[i + 1]]
      vocab.json                          CharVocab.save's format
      meta.json                           counts, settings, source; written last

This is :class:`~charrnn.batches.EncodedCorpus`'s layout, so
:func:`open_prepared` hands back an ``EncodedCorpus`` that ``WindowBatches``
and ``RecordBatches`` use unchanged.

Why two passes over the ids but one over the JSON: the vocabulary (and so
every final id) is only known once every character has been counted, and
parsing the JSON is the slow part. So the one JSON pass writes *provisional*
ids (``uint16``, numbered as characters first appear) to temporary files
while counting characters; a chunked numpy pass then maps them to the final
ids (characters rarer than ``min_freq`` become ``<unk>``).

Everything is written into a ``.NAME.partial-*`` directory beside
``out_dir`` and renamed into place only when complete, ``meta.json`` last:
an interrupted run (Ctrl-C, a crash, a full disk) never leaves a directory
that looks prepared.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..batches import EncodedCorpus
from ..data import HashSplit, ReadStats, existing_source, format_record, iter_records
from ..errors import ConfigError, DataError
from ..vocab import BOS_ID, EOS_ID, SPECIAL_TOKENS, UNK_ID, CharVocab

FORMAT = "charrnn-prepared"
FORMAT_VERSION = 1
SPLITS = ("train", "val")
META = "meta.json"
VOCAB = "vocab.json"

# Provisional ids: 0-3 are the special tokens (the same as the final ids),
# characters are numbered from 4 as they first appear. The snapshot has a few
# thousand distinct characters; any beyond 65534 share the last id, which
# always becomes <unk> (such late newcomers are rare by construction).
_PROVISIONAL = np.uint16
_OVERFLOW = 65535
_BATCH_CHARS = 1 << 21      # characters of text encoded per numpy batch (~2 M)
_REMAP_CHUNK = 1 << 23      # ids per chunk of the remap pass (16 MB of uint16)
_HASH_SPAN = 1 << 20        # the source hash reads this much at each end


def _bin_name(split: str) -> str:
    return f"{split}.bin"


def _offsets_name(split: str) -> str:
    return f"{split}.offsets.npy"


# ------------------------------------------------------------------- source
def source_fingerprint(path: Path) -> dict:
    """Name, size and a sha256 of the size plus the first and last MiB.

    Not a hash of the whole file: reading 4 GB costs about as long as the
    prepare itself. Kaggle's snapshots differ at both ends (new papers are
    appended, the file grows), so this tells two downloads apart in
    practice; it does not prove that two files are identical.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode("ascii"))
    with open(path, "rb") as f:
        digest.update(f.read(_HASH_SPAN))
        if size > _HASH_SPAN:
            f.seek(max(size - _HASH_SPAN, _HASH_SPAN))
            digest.update(f.read(_HASH_SPAN))
    return {"name": path.name, "size": size, "sha256_head_tail": digest.hexdigest(),
            "hash_covers": "size + first MiB + last MiB (not the whole file)"}


def _stream_size(path: Path) -> int | None:
    """Uncompressed bytes the line reader will yield, when known without
    reading the file: its size, or the zip member's; None for gzip."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return None
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                sizes = [m.file_size for m in archive.infolist()
                         if m.filename.lower().endswith((".json", ".jsonl")) and not m.is_dir()]
        except zipfile.BadZipFile:
            return None  # the reader reports it
        return max(sizes, default=None)
    return path.stat().st_size


# -------------------------------------------------------------- first pass
class _SplitWriter:
    """Provisional ids of one split: batches of formatted texts go to a
    temporary file as ``<bos>`` text ``<eos>``; record lengths are kept."""

    def __init__(self, path: Path, encoder: _Encoder):
        self.path, self.encoder = path, encoder
        self.file = open(path, "wb")
        self.texts: list[str] = []
        self.chars = 0
        self.lengths: list[np.ndarray] = []
        self.records = 0

    def add(self, text: str) -> None:
        self.texts.append(text)
        self.chars += len(text)
        self.records += 1
        if self.chars >= _BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.texts:
            return
        lengths = np.fromiter(map(len, self.texts), dtype=np.int64, count=len(self.texts)) + 2
        ids = self.encoder.encode("".join(self.texts))
        out = np.empty(int(lengths.sum()), dtype=_PROVISIONAL)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        text_slots = np.ones(len(out), dtype=bool)
        text_slots[starts] = False
        text_slots[ends - 1] = False
        out[text_slots] = ids
        out[starts] = BOS_ID
        out[ends - 1] = EOS_ID
        out.tofile(self.file)
        self.lengths.append(lengths)
        self.texts, self.chars = [], 0

    def close(self) -> np.ndarray:
        """Flush, close, and return the record offsets (length records + 1)."""
        self.flush()
        self.file.close()
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


class _Encoder:
    """Text -> provisional ids, counting every character on the way.

    A table indexed by code point (2.2 MB) gives each character's
    provisional id, 0 (<pad>, never a character) for one not seen yet; new
    characters of a batch are numbered in one go."""

    def __init__(self):
        self.table = np.zeros(0x110000, dtype=_PROVISIONAL)
        self.codepoints: list[int] = [-1] * len(SPECIAL_TOKENS)  # provisional id -> code point
        self.counts = np.zeros(_OVERFLOW + 1, dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = self.table[points]
        if not ids.all():
            seen = np.zeros(len(self.table), dtype=bool)  # faster than np.unique here
            seen[points[ids == 0]] = True
            new = np.flatnonzero(seen)
            first = len(self.codepoints)
            self.table[new] = np.minimum(np.arange(first, first + len(new)), _OVERFLOW)
            self.codepoints.extend(int(p) for p in new[:max(_OVERFLOW - first, 0)])
            ids = self.table[points]
        self.counts += np.bincount(ids, minlength=len(self.counts))
        return ids


def _read_pass(path: Path, work: Path, categories, limit, val_fraction, stats: ReadStats,
               progress: bool):
    """The one pass over the JSON: parse, filter, format, split, encode."""
    encoder = _Encoder()
    writers = {split: _SplitWriter(work / f"{split}.provisional", encoder) for split in SPLITS}
    split = HashSplit(val_fraction)
    bar = tqdm(total=_stream_size(path), unit="B", unit_scale=True, unit_divisor=1024,
               disable=not progress, desc=f"prepare {path.name}")
    try:
        for record in iter_records(path, categories, stats, allow_array=False):
            writers[split.assign(record)].add(format_record(record))
            if stats.bytes_read - bar.n >= 1 << 22:
                bar.update(stats.bytes_read - bar.n)
            if limit is not None and stats.records >= limit:
                break
        bar.update(stats.bytes_read - bar.n)
    finally:
        bar.close()
        offsets = {name: w.close() for name, w in writers.items()}
    return encoder, offsets, split.moved_to_validation()


# ------------------------------------------------------------- second pass
def _remap(source: Path, ranges: Sequence[tuple[int, int]], table: np.ndarray, target: Path) -> None:
    """Provisional ids of ``ranges`` of ``source`` -> final ids in ``target``,
    a chunk at a time (read with ``fromfile``, not mapped: mapped pages would
    count against the process's resident memory)."""
    with open(source, "rb") as f, open(target, "wb") as out:
        for start, stop in ranges:
            f.seek(start * np.dtype(_PROVISIONAL).itemsize)
            left = stop - start
            while left:
                chunk = np.fromfile(f, dtype=_PROVISIONAL, count=min(_REMAP_CHUNK, left))
                if not len(chunk):
                    raise DataError(f"{source}: temporary file ended early (disk full?)")
                table[chunk].tofile(out)
                left -= len(chunk)


def _final_table(encoder: _Encoder, min_freq: int) -> tuple[CharVocab, np.ndarray, int, int]:
    """The vocabulary and the provisional -> final id table; also the count
    of characters that become <unk> and of distinct characters cut."""
    n = len(encoder.codepoints)
    counts = encoder.counts
    keep = [i for i in range(len(SPECIAL_TOKENS), n) if counts[i] >= min_freq]
    vocab = CharVocab(chr(encoder.codepoints[i]) for i in keep)
    dtype = np.uint8 if len(vocab) <= 256 else np.uint16
    table = np.full(_OVERFLOW + 1, UNK_ID, dtype=dtype)
    table[:len(SPECIAL_TOKENS)] = np.arange(len(SPECIAL_TOKENS))
    for i in keep:
        table[i] = vocab.stoi[chr(encoder.codepoints[i])]
    kept = np.zeros(len(counts), dtype=bool)
    kept[:len(SPECIAL_TOKENS)] = True
    kept[keep] = True
    unknown = int(counts[~kept].sum())
    cut = (n - len(SPECIAL_TOKENS)) - len(keep)
    return vocab, table, unknown, cut


# ------------------------------------------------------------------ writing
def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a directory")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / META).exists():
        raise DataError(f"{out_dir}: exists and is not a prepared dataset (no {META}); "
                        "choose another --out, or remove it yourself")
    if not overwrite:
        raise DataError(f"{out_dir}: a prepared dataset is already there; "
                        "pass overwrite=True (--overwrite) to replace it")


def _partial_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.partial-"


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary directories of earlier runs that were killed outright
    (SIGKILL, power loss: no chance to clean up) are removed."""
    for stale in out_dir.parent.glob(_partial_prefix(out_dir) + "*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _write_json(path: Path, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def prepare_dataset(source: str | os.PathLike, out_dir: str | os.PathLike,
                    categories: Sequence[str] | None = None, limit: int | None = None,
                    val_fraction: float = 0.01, min_freq: int = 1, progress: bool = True,
                    overwrite: bool = False) -> dict:
    """Stream an arXiv JSON-lines file (the Kaggle snapshot, its ``.zip``, a
    ``.jsonl`` or ``.gz``) into a prepared directory; returns its meta dict.

    Records are filtered (``categories``, as in :func:`~charrnn.load_records`),
    cut at ``limit`` usable records, formatted with
    :func:`~charrnn.format_record` and split by the hashed id exactly as
    :func:`~charrnn.split_records` splits them, so a record's split never
    depends on file order. Damaged lines are skipped and counted in the meta.
    Characters seen fewer than ``min_freq`` times become ``<unk>``; raise it
    (e.g. to 100 on the full snapshot) to drop stray symbols, which can keep
    the vocabulary within 256 entries and the ids one byte each.

    Memory stays flat (a few tens of MB) whatever the file size; disk needs
    about 3 bytes per character of text while it runs (provisional + final
    ids), 1-2 bytes per character after. ``out_dir`` is replaced only with
    ``overwrite=True``, and only if it holds a prepared dataset.
    """
    source, out_dir = Path(source), Path(out_dir)
    _check_prepare_args(source, val_fraction, min_freq, limit)
    wanted = [c.strip() for c in categories or [] if c.strip()]
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)

    work = Path(tempfile.mkdtemp(prefix=_partial_prefix(out_dir), dir=out_dir.parent))
    try:
        stats = ReadStats()
        encoder, offsets, move = _read_pass(source, work, wanted, limit, val_fraction, stats, progress)
        if stats.records == 0:
            raise stats.nothing_usable(wanted)
        vocab, table, unknown, cut = _final_table(encoder, min_freq)
        offsets = _write_final_splits(work, offsets, move, table)
        vocab.save(work / VOCAB)
        meta = {
            **_meta_header(source),
            "settings": {"categories": wanted or None, "limit": limit, "val_fraction": val_fraction,
                         "min_freq": min_freq},
            "lines": stats.lines, "malformed_lines": stats.malformed,
            "first_malformed_line": stats.first_bad_line, "filtered_out": stats.filtered_out,
            "records": stats.records,
            "splits": {split: {"records": len(offsets[split]) - 1, "tokens": int(offsets[split][-1]),
                               "ids": _bin_name(split), "offsets": _offsets_name(split)}
                       for split in SPLITS},
            "vocab_size": len(vocab), "dtype": np.dtype(table.dtype).name,
            "unknown_chars": unknown, "rare_chars_cut": cut,
            "distinct_chars": len(encoder.codepoints) - len(SPECIAL_TOKENS),
        }
        _write_json(work / META, meta)
        _move_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return meta


def _check_prepare_args(source: Path, val_fraction: float, min_freq: int, limit: int | None) -> None:
    existing_source(source)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if min_freq < 1:
        raise ConfigError(f"min_freq must be at least 1, got {min_freq}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of records, got {limit}")


def _meta_header(source: Path) -> dict:
    """What identifies a prepared directory: format, versions, when, from what."""
    from .. import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "charrnn_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": source_fingerprint(source)}


def _write_final_splits(work: Path, offsets: dict, move: int | None, table: np.ndarray) -> dict:
    """Final ids and offsets of both splits into ``work``; returns the offsets.
    With ``move`` (see :class:`~charrnn.data.HashSplit`) that training
    record becomes the only validation record."""
    ranges = {split: [(0, int(offsets[split][-1]))] for split in SPLITS}
    sources = {split: work / f"{split}.provisional" for split in SPLITS}
    if move is not None:
        a, b = int(offsets["train"][move]), int(offsets["train"][move + 1])
        ranges = {"train": [(0, a), (b, int(offsets["train"][-1]))], "val": [(a, b)]}
        sources["val"] = sources["train"]
        offsets = {"train": np.concatenate([offsets["train"][:move + 1],
                                            offsets["train"][move + 2:] - (b - a)]),
                   "val": np.array([0, b - a], dtype=np.int64)}
    for split in SPLITS:
        _remap(sources[split], ranges[split], table, work / _bin_name(split))
        np.save(work / _offsets_name(split), offsets[split])
    for split in SPLITS:
        sources[split].unlink(missing_ok=True)
    return offsets


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Rename the finished directory to ``out_dir``; a dataset already there
    is first renamed aside, then deleted, so there is never a moment with a
    half-written ``out_dir``."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=_partial_prefix(out_dir) + "old-", dir=out_dir.parent))
        os.replace(out_dir, old / "dataset")
    os.replace(work, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ reading
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


def open_prepared(directory: str | os.PathLike, split: str = "train"
                  ) -> tuple[EncodedCorpus, CharVocab, dict]:
    """Open one split of a prepared directory without reading it into memory:
    an :class:`EncodedCorpus` whose ids and offsets are memory-mapped, the
    vocabulary, and the meta dict."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    directory = Path(directory)
    meta = read_meta(directory)
    info = meta["splits"][split]
    if info["records"] < 1:
        raise DataError(f"{directory}: the {split} split holds no records "
                        f"(val_fraction was {meta['settings']['val_fraction']})")
    vocab = CharVocab.load(directory / VOCAB)
    try:
        offsets = np.load(directory / info["offsets"], mmap_mode="r")
        ids = np.memmap(directory / info["ids"], dtype=np.dtype(meta["dtype"]), mode="r")
    except (OSError, ValueError) as e:
        raise DataError(f"{directory}: cannot open the {split} split ({e})") from None
    if len(offsets) != info["records"] + 1 or len(ids) != info["tokens"] or offsets[-1] != len(ids):
        raise DataError(f"{directory}: the {split} files do not match {META} (damaged or "
                        "changed after prepare; run prepare again)")
    return EncodedCorpus(MappedIds(ids), MappedIds(offsets)), vocab, meta
