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
that looks prepared. An overwrite renames the old dataset aside
(``.NAME.partial-old-*``) and the new one in: a run killed between the two
leaves both whole, and the next run (:func:`_recover`) moves the finished
one into place; it deletes only partials that are unfinished or replaced.
``.NAME.lock`` beside ``out_dir`` (``flock``, dropped by the operating
system when a run ends however it ends) keeps a second run from working on
the same ``out_dir`` at the same time.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import shutil
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import numpy as np
import torch
from tqdm.auto import tqdm

from ..batches import EncodedCorpus
from ..data import MAX_LINE_BYTES, HashSplit, ReadStats, existing_source, format_record, iter_records, writing
from ..errors import CharRNNError, ConfigError, DataError
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
        self.file = _create(path)
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
        with writing(self.path):
            self.file.write(out)
        self.lengths.append(lengths)
        self.texts, self.chars = [], 0

    def close(self) -> np.ndarray:
        """Flush, close, and return the record offsets (length records + 1)."""
        self.flush()
        with writing(self.path):
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
    with open(source, "rb") as f, writing(target), _create(target) as out:
        for start, stop in ranges:
            f.seek(start * np.dtype(_PROVISIONAL).itemsize)
            left = stop - start
            while left:
                chunk = np.fromfile(f, dtype=_PROVISIONAL, count=min(_REMAP_CHUNK, left))
                if not len(chunk):
                    raise DataError(f"{source}: temporary file ended early (disk full?)")
                out.write(table[chunk])
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
def _check_target(out_dir: Path, source: Path) -> None:
    """What rules ``out_dir`` out whatever a killed run left: it holds the
    input (replacing it would delete it), or it is a file (the input itself?)."""
    if _holds(out_dir, source):
        raise DataError(f"{out_dir}: holds the input {source}, which replacing it would delete; "
                        "choose another --out, or move the input out first")
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a directory")


def _check_out_dir(out_dir: Path, source: Path, overwrite: bool) -> None:
    _check_target(out_dir, source)
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not (out_dir / META).exists():
        raise DataError(f"{out_dir}: exists and is not a prepared dataset (no {META}); "
                        "choose another --out, or remove it yourself")
    if not overwrite:
        raise DataError(f"{out_dir}: a prepared dataset is already there; "
                        "pass overwrite=True (--overwrite) to replace it")


def _holds(folder: Path, path: Path) -> bool:
    """True when ``path`` (after links are resolved) lies inside ``folder``."""
    try:
        return folder.resolve() in path.resolve().parents
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): let opening it report that
        return False


def _partial_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.partial-"


_OLD = "old-"  # partials named .NAME.partial-old-*: a dataset moved aside by an overwrite


def _new_partial(out_dir: Path, kind: str = "") -> Path:
    """A fresh, not yet existing ``.NAME.partial-[kind]XXXXXXXX`` path beside ``out_dir``."""
    while True:
        path = out_dir.parent / f"{_partial_prefix(out_dir)}{kind}{secrets.token_hex(4)}"
        if not path.exists():
            return path


def _make_partial(out_dir: Path) -> Path:
    """The work directory of a run, made with ``os.mkdir`` so that it gets
    the umask's permissions like any other output (``tempfile.mkdtemp``
    makes it 0700, and the renamed dataset would keep that)."""
    while True:
        path = _new_partial(out_dir)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _rename(source: Path, target: Path) -> None:
    """``os.replace``: one place to make the renames of an overwrite fail in tests."""
    os.replace(source, target)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _create(path: Path):
    """A file of the dataset, opened for writing (one place, so tests can
    hand in ``/dev/full``)."""
    return open(path, "wb")


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``out_dir`` (``flock``) for a whole
    prepare: a second run on the same ``out_dir`` stops at once, naming the
    first, instead of deleting its work directory. The operating system
    drops the lock when the process ends, however it ends, so a killed run
    leaves no stale lock; the small file itself stays (deleting it would
    let two runs lock two different files)."""
    if fcntl is None:  # Windows: no flock
        yield
        return
    path = out_dir.parent / f".{out_dir.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 200, 0).decode("ascii", "replace").strip() or "unknown"
            raise DataError(f"{out_dir}: another prepare is writing it (process {other}, lock "
                            f"{path}); wait for it to end or stop it, then run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _is_complete(directory: Path) -> bool:
    """True when ``directory`` holds a whole prepared dataset: its meta is
    valid and every file it names is there, of the size it says (a
    directory being deleted, or written without its ``meta.json``, is not)."""
    try:
        meta = read_meta(directory)
        _check_meta(directory / META, meta)
        itemsize = np.dtype(meta["dtype"]).itemsize
        return all((directory / info["ids"]).stat().st_size == info["tokens"] * itemsize
                   and (directory / info["offsets"]).is_file() and (directory / VOCAB).is_file()
                   for info in meta["splits"].values())
    except (DataError, OSError):
        return False


def _recover(out_dir: Path) -> None:
    """Finish or undo what a killed run left beside ``out_dir`` (called
    with the lock held, so no live run owns any of it). A finished dataset
    (complete, ``meta.json`` written) is moved into place, as the run that
    made it was about to; a dataset an overwrite had moved aside comes back
    when nothing else is at ``out_dir``; only then are the rest deleted:
    unfinished work, and old copies that a newer dataset has replaced."""
    partials = sorted((p for p in out_dir.parent.glob(_partial_prefix(out_dir) + "*") if p.is_dir()),
                      key=lambda p: p.stat().st_mtime)
    old = [p for p in partials if p.name.startswith(_partial_prefix(out_dir) + _OLD)]
    for work in (p for p in partials if p not in old and _is_complete(p)):
        if out_dir.exists() and not _replaceable(out_dir):
            warnings.warn(f"{work} holds a finished dataset, but {out_dir} is not a prepared dataset; "
                          "left both as they are", stacklevel=3)
            continue
        _move_into_place(work, out_dir)
        warnings.warn(f"{out_dir}: moved into place the dataset of an interrupted prepare", stacklevel=3)
    for aside in reversed(old):  # the newest first
        if not out_dir.exists() and _is_complete(aside):
            _rename(aside, out_dir)
            warnings.warn(f"{out_dir}: restored the dataset an interrupted prepare had moved aside",
                          stacklevel=3)
    for stale in out_dir.parent.glob(_partial_prefix(out_dir) + "*"):
        if stale.is_dir() and _is_leftover(stale, out_dir):
            _remove_tree(stale)


def _is_leftover(partial: Path, out_dir: Path) -> bool:
    """Whether a partial of a dead run may be deleted: unfinished work, or
    an old copy whose place a prepared dataset has taken; never a finished
    dataset that is nowhere else."""
    if not _is_complete(partial):
        return True
    return partial.name.startswith(_partial_prefix(out_dir) + _OLD) and (out_dir / META).exists()


def _replaceable(out_dir: Path) -> bool:
    """``out_dir`` is an empty directory or a prepared dataset."""
    return out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / META).exists())


def _write_json(path: Path, obj: dict) -> None:
    with writing(path), open(path, "w", encoding="utf-8") as f:
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
    depends on file order. Damaged lines, and lines over
    :data:`~charrnn.data.MAX_LINE_BYTES`, are skipped and counted in the meta.
    Characters seen fewer than ``min_freq`` times become ``<unk>``; raise it
    (e.g. to 100 on the full snapshot) to drop stray symbols, which can keep
    the vocabulary within 256 entries and the ids one byte each.

    Memory stays flat (a few tens of MB) whatever the file size; disk needs
    about 3 bytes per character of text while it runs (provisional + final
    ids), 1-2 bytes per character after. ``out_dir`` is replaced only with
    ``overwrite=True``, only if it holds a prepared dataset, and never if it
    holds ``source``. One run at a time per ``out_dir`` (a lock file beside
    it); a run killed at any point leaves the old or the new dataset, or one
    that the next run moves back into place.
    """
    source, out_dir = Path(source), Path(out_dir)
    _check_prepare_args(source, val_fraction, min_freq, limit)
    wanted = [c.strip() for c in categories or [] if c.strip()]
    _check_target(out_dir, source)  # before anything is written, even the lock
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        _recover(out_dir)
        _check_out_dir(out_dir, source, overwrite)  # again: recovery may have changed it
        work = _make_partial(out_dir)
        try:
            meta = _build(source, work, wanted, limit, val_fraction, min_freq, progress)
            _move_into_place(work, out_dir)
        except Exception:
            _remove_tree(work)
            raise
        except BaseException:  # Ctrl-C: a finished dataset is kept for the next run
            if not (work / META).exists():
                _remove_tree(work)
            raise
    return meta


def _build(source: Path, work: Path, wanted: list[str], limit, val_fraction, min_freq, progress) -> dict:
    """Every file of the dataset into ``work``, ``meta.json`` last; returns the meta."""
    stats = ReadStats()
    encoder, offsets, move = _read_pass(source, work, wanted, limit, val_fraction, stats, progress)
    if stats.records == 0:
        raise stats.nothing_usable(wanted)
    vocab, table, unknown, cut = _final_table(encoder, min_freq)
    offsets = _write_final_splits(work, offsets, move, table)
    with writing(work / VOCAB):
        vocab.save(work / VOCAB)
    meta = {
        **_meta_header(source),
        "settings": {"categories": wanted or None, "limit": limit, "val_fraction": val_fraction,
                     "min_freq": min_freq},
        "lines": stats.lines, "malformed_lines": stats.malformed,
        "first_malformed_line": stats.first_bad_line, "filtered_out": stats.filtered_out,
        "long_lines": stats.too_long, "max_line_bytes": MAX_LINE_BYTES,
        "records": stats.records,
        "splits": {split: {"records": len(offsets[split]) - 1, "tokens": int(offsets[split][-1]),
                           "ids": _bin_name(split), "offsets": _offsets_name(split)}
                   for split in SPLITS},
        "vocab_size": len(vocab), "dtype": np.dtype(table.dtype).name,
        "unknown_chars": unknown, "rare_chars_cut": cut,
        "distinct_chars": len(encoder.codepoints) - len(SPECIAL_TOKENS),
    }
    _write_json(work / META, meta)
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
        with writing(work / _offsets_name(split)), _create(work / _offsets_name(split)) as f:
            np.save(f, offsets[split])
    for split in SPLITS:
        sources[split].unlink(missing_ok=True)
    return offsets


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Rename the finished directory to ``out_dir``. A dataset already there
    is first renamed aside (``.NAME.partial-old-*``), then deleted, so there
    is never a half-written ``out_dir``; a run killed between the two
    renames leaves both datasets whole, and the next run's :func:`_recover`
    moves the new one into place. A rename that fails puts the old one back."""
    old = None
    if out_dir.exists():
        old = _new_partial(out_dir, _OLD)
        _rename(out_dir, old)
    try:
        _rename(work, out_dir)
    except Exception:
        if old is not None:
            _rename(old, out_dir)
        raise
    if old is not None:
        _remove_tree(old)


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
        if any((p / META).is_file() for p in directory.parent.glob(_partial_prefix(directory) + "*")):
            raise DataError(f"{directory}: missing, but an interrupted prepare left a dataset beside it "
                            f"({_partial_prefix(directory)}*); run the same prepare again to put it back")
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


def _check_meta(path: Path, meta: dict) -> None:
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
    for start in range(0, len(offsets) - 1, _REMAP_CHUNK):
        steps = np.diff(np.asarray(offsets[start:start + _REMAP_CHUNK + 1], dtype=np.int64))
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
            while len(chunk := np.fromfile(f, dtype=ids.dtype, count=_REMAP_CHUNK)):
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
    _check_meta(directory / META, meta)
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
