"""Writing a prepared dataset: one pass over the JSON (or text), one over the ids.

Why two passes over the ids but one over the JSON: the vocabulary (and so
every final id) is only known once every character has been counted, and
parsing the JSON is the slow part. So the one JSON pass writes *provisional*
ids (``uint16``, numbered as characters first appear) to temporary files
while counting characters; a chunked numpy pass then maps them to the final
ids (characters rarer than ``min_freq`` become ``<unk>``).

:func:`build` writes every file into a work directory it is given,
``meta.json`` last; where that directory lives and how it replaces the old
dataset is :mod:`.transaction`'s job.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ...data import MAX_LINE_BYTES, HashSplit, ReadStats, format_record, iter_records, largest_json_member
from ...errors import DataError
from ...files import atomic_write, writing
from ...vocab import BOS_ID, EOS_ID, SPECIAL_TOKENS, UNK_ID, CharVocab
from .layout import FORMAT, FORMAT_VERSION, META, SPLITS, VOCAB, bin_name, offsets_name

# Provisional ids: 0-3 are the special tokens (the same as the final ids),
# characters are numbered from 4 as they first appear. The snapshot has a few
# thousand distinct characters; any beyond 65534 share the last id, which
# always becomes <unk> (such late newcomers are rare by construction).
_PROVISIONAL = np.uint16
_OVERFLOW = 65535
_BATCH_CHARS = 1 << 21      # characters of text encoded per numpy batch (~2 M)
_REMAP_CHUNK = 1 << 23      # ids per chunk of the remap pass (16 MB of uint16)
_HASH_SPAN = 1 << 20        # the source hash reads this much at each end


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
                member = largest_json_member(archive)  # the one the reader reads
        except zipfile.BadZipFile:
            return None  # the reader reports it
        return member.file_size if member is not None else None
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
               progress: bool, text_records: str = "paragraphs"):
    """The one pass over the source: parse (JSON lines, or paragraphs or
    lines of a text), filter, format, split, encode."""
    encoder = _Encoder()
    writers = {split: _SplitWriter(work / f"{split}.provisional", encoder) for split in SPLITS}
    split = HashSplit(val_fraction)
    bar = tqdm(total=_stream_size(path), unit="B", unit_scale=True, unit_divisor=1024,
               disable=not progress, desc=f"prepare {path.name}")
    try:
        for record in iter_records(path, categories, stats, allow_array=False, text_records=text_records):
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


# ------------------------------------------------------------------ files
def _create(path: Path):
    """A file of the dataset, opened for writing (one place, so tests can
    hand in ``/dev/full``)."""
    return open(path, "wb")


def _write_json(path: Path, obj: dict) -> None:
    """``obj`` as JSON, whole or not at all: ``meta.json`` is what marks a
    dataset finished, so even a crash inside its own write must not leave
    half of one (:func:`~charrnn.files.atomic_write`)."""
    with writing(path), atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def build(source: Path, work: Path, wanted: list[str], limit, val_fraction, min_freq, progress,
          text_records: str = "paragraphs") -> dict:
    """Every file of the dataset into the empty directory ``work``,
    ``meta.json`` last; returns the meta. Arguments as for
    :func:`~charrnn.scale.prepared.prepare_dataset`, already checked."""
    stats = ReadStats()
    encoder, offsets, move = _read_pass(source, work, wanted, limit, val_fraction, stats, progress,
                                        text_records)
    if stats.records == 0:
        raise stats.nothing_usable(wanted)
    vocab, table, unknown, cut = _final_table(encoder, min_freq)
    offsets = _write_final_splits(work, offsets, move, table)
    with writing(work / VOCAB):
        vocab.save(work / VOCAB)
    meta = {
        **_meta_header(source),
        "settings": {"categories": wanted or None, "limit": limit, "val_fraction": val_fraction,
                     "min_freq": min_freq, "text_records": stats.text_records},
        "lines": stats.lines, "malformed_lines": stats.malformed,
        "first_malformed_line": stats.first_bad_line, "filtered_out": stats.filtered_out,
        "long_lines": stats.too_long, "max_line_bytes": MAX_LINE_BYTES,
        "records": stats.records,
        "splits": {split: {"records": len(offsets[split]) - 1, "tokens": int(offsets[split][-1]),
                           "ids": bin_name(split), "offsets": offsets_name(split)}
                   for split in SPLITS},
        "vocab_size": len(vocab), "dtype": np.dtype(table.dtype).name,
        "unknown_chars": unknown, "rare_chars_cut": cut,
        "distinct_chars": len(encoder.codepoints) - len(SPECIAL_TOKENS),
    }
    _write_json(work / META, meta)
    return meta


def _meta_header(source: Path) -> dict:
    """What identifies a prepared directory: format, versions, when, from what."""
    from ... import __version__

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
        _remap(sources[split], ranges[split], table, work / bin_name(split))
        with writing(work / offsets_name(split)), _create(work / offsets_name(split)) as f:
            np.save(f, offsets[split])
    for split in SPLITS:
        sources[split].unlink(missing_ok=True)
    return offsets
