"""Reading records, arXiv papers or your own text, and turning them into training text.

Two kinds of file hold records:

* arXiv metadata as JSON lines. The Kaggle snapshot
  (``arxiv-metadata-oai-snapshot.json``) is one paper per line, about 4 GB.
  The origin notebook read it whole with ``pandas.read_json``; here records
  are streamed one line at a time from a ``.json``/``.jsonl`` file, a
  ``.gz`` of one, or the Kaggle ``.zip``, so memory stays flat whatever the
  file size. A damaged line is skipped and counted rather than ending the
  run. A paper's text is ``"title ; abstract"`` (:func:`format_record`).
* plain UTF-8 text (``.txt``/``.md``, or a ``.gz`` of one): Shakespeare,
  poems, your thesis, as char-rnn's ``input.txt``. A record is a paragraph
  (with ``text_records="lines"``, a line) and its text is the paragraph
  itself, line breaks kept (:func:`iter_text_records`). It is streamed the
  same way.

Either way a record becomes one text that the vocabulary encodes as
``<bos>`` text ``<eos>``.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import os
import random
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from .config import check_fraction, check_positive, check_text_records
from .errors import DataError
from .files import atomic_write, writing

try:  # optional: pip install "charrnn-course[fast]"; see _loads
    from orjson import loads as _fast_loads
except ImportError:
    _fast_loads = None

SEPARATOR = " ; "  # between title and abstract, as in the origin notebook


def default_corpus_path() -> Path:
    """The small corpus shipped with the package (written for this project in
    the style of arXiv titles + abstracts; not real papers)."""
    return Path(str(resources.files("charrnn") / "assets" / "corpus.jsonl"))


@dataclass
class ReadStats:
    """What happened while reading a file: how many lines, how many usable."""

    path: str = ""
    text_records: str | None = None  # "paragraphs"/"lines" for a plain-text file, None for JSON
    lines: int = 0           # non-blank lines seen
    records: int = 0         # usable records that passed the filter
    malformed: int = 0       # lines that are not a JSON object with text fields
    first_bad_line: int | None = None
    filtered_out: int = 0    # usable records rejected by the category filter
    too_long: int = 0        # lines over MAX_LINE_BYTES, skipped unread
    first_long_line: int | None = None
    bytes_read: int = 0      # of the (uncompressed) lines: what a progress bar shows

    def note_bad(self, line_number: int) -> None:
        """Count a damaged line, remembering the first."""
        self.malformed += 1
        if self.first_bad_line is None:
            self.first_bad_line = line_number

    def count(self, record: dict | None, line_number: int, categories: Sequence[str] | None) -> bool:
        """Count one parsed line; True if the record is to be used."""
        self.lines += 1
        if record is None:
            self.note_bad(line_number)
            return False
        if not matches_categories(record, categories):
            self.filtered_out += 1
            return False
        self.records += 1
        return True

    def note_long(self, line_number: int) -> None:
        """Count a line over :data:`MAX_LINE_BYTES`, skipped without parsing."""
        self.lines += 1
        self.too_long += 1
        if self.first_long_line is None:
            self.first_long_line = line_number

    def long_lines_text(self) -> str:
        """``"N line(s) over 1 MB skipped (first at line L)"``, or ``""``."""
        if not self.too_long:
            return ""
        return (f"{self.too_long} line(s) over {_megabytes(MAX_LINE_BYTES)} skipped "
                f"(first at line {self.first_long_line})")

    def nothing_usable(self, categories: Sequence[str] | None) -> DataError:
        """The error for a source that gave no usable record, saying why."""
        if self.text_records is not None:
            why = self.long_lines_text() or "the file is empty or holds only blank lines"
            return DataError(f"{self.path}: no text to read ({why})")
        plain = ("; is it plain text? name it .txt to read it as text"
                 if self.malformed and self.malformed == self.lines else "")
        reasons = [f"{self.malformed} malformed line(s){plain}" if self.malformed else "", self.long_lines_text(),
                   f"none of {self.filtered_out} records is in categories {list(categories or [])}"
                   if self.filtered_out else ""]
        why = "; ".join(r for r in reasons if r)
        return DataError(f"{self.path}: no usable record with a title and an abstract" + (f" ({why})" if why else ""))

    def summary(self) -> str:
        """One line: records, lines, filtered and malformed counts."""
        kind = f" ({self.text_records})" if self.text_records else ""
        text = f"{self.path}: {self.records} records{kind} from {self.lines} lines"
        if self.filtered_out:
            text += f", {self.filtered_out} outside the category filter"
        if self.malformed:
            text += (f", {self.malformed} malformed line(s) skipped "
                     f"(first at line {self.first_bad_line})")
        if self.too_long:
            text += f", {self.long_lines_text()}"
        return text


# ---------------------------------------------------------------------- reading
MAX_LINE_BYTES = 1 << 20        # a longer line is skipped unread (and counted), never held whole
ENDLESS_LINE_BYTES = 1 << 30    # a "line" this long is no JSON-lines file (/dev/zero, a disk image)
_READ_CHUNK = 1 << 14           # bytes per read: as fast as larger reads, and a small peak on small files
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_FILE_KINDS = "a .json, .jsonl, .gz or .zip file of arXiv records, or a .txt or .md text"


def _megabytes(n: int) -> str:
    return f"{n / (1 << 20):g} MB"


@contextmanager
def _open_source(path: Path) -> Iterator[BinaryIO]:
    """Open a JSON-lines source as a binary stream, looking inside ``.zip``
    archives (Kaggle's download) and ``.gz`` files. What stops it from being
    opened at all (permissions, an unreadable zip member) is one
    :class:`DataError` that says so, not a read error "after line 0"."""
    try:
        if path.suffix.lower() == ".zip":
            with _open_zip_member(path) as f:
                yield f
        elif path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as f:
                yield f
        else:
            with open(path, "rb") as f:
                yield f
    except PermissionError:
        raise DataError(f"{path}: cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected {_FILE_KINDS}") from None


def largest_json_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    """The member of ``archive`` that holds the records: its largest
    ``.json``/``.jsonl`` file (Kaggle's zip holds one; a README or a small
    index beside it must not be mistaken for the data), or None."""
    members = [m for m in archive.infolist()
               if m.filename.lower().endswith((".json", ".jsonl")) and not m.is_dir()]
    return max(members, key=lambda m: m.file_size, default=None)


@contextmanager
def _open_zip_member(path: Path) -> Iterator[BinaryIO]:
    """The largest ``.json``/``.jsonl`` member of a zip archive, opened."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a valid zip archive") from None
    with archive:
        member = largest_json_member(archive)
        if member is None:
            raise DataError(f"{path}: the archive holds no .json or .jsonl file")
        why = ("it is encrypted" if member.flag_bits & 0x1 else
               f"it uses compression method {member.compress_type}, which Python's zipfile cannot "
               "read (deflate64 is 9)" if member.compress_type not in _ZIP_METHODS else None)
        try:
            if why is not None:
                raise NotImplementedError(why)
            f = archive.open(member)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: cannot read {member.filename} in the archive: {why or e}; "
                            "unzip it with another tool and prepare the .json file") from None
        with f:
            yield f


def bounded_lines(stream: BinaryIO, name: str, max_bytes: int = MAX_LINE_BYTES,
                  chunk: int | None = None, stats: ReadStats | None = None,
                  first: bytes = b"") -> Iterator[bytes | None]:
    """The lines of a binary stream (without their ``\\n``), read ``chunk``
    bytes at a time so that memory stays bounded whatever the input: a line
    longer than ``max_bytes`` is skipped without being held whole and comes
    out as ``None``; one that runs past :data:`ENDLESS_LINE_BYTES` without a
    break (``/dev/zero``) is a :class:`DataError`. ``first`` is data already
    read from the stream; ``stats.bytes_read`` counts the bytes of the lines
    handed out (line breaks included, skipped lines not), so that after the
    first N records it says how much of the file they took;
    ``chunk`` defaults to :data:`_READ_CHUNK`.

    Blocks are split in C (``bytes.split``), so the cost per line is that of
    iterating a file; only the first line of a block, the one that carries
    on from the block before, can be longer than a block."""
    chunk = min(chunk or _READ_CHUNK, max_bytes)  # so no line inside one block can pass the cap
    carry, skipped, number = bytearray(), None, 0  # skipped: bytes of the over-long line so far
    block = first or stream.read(chunk)
    while block:
        end = block.find(b"\n")
        if end < 0 or skipped is not None:
            skipped, carry, block = _carry_on(block, end, carry, skipped, max_bytes)
            if skipped is not None and skipped > ENDLESS_LINE_BYTES:
                raise DataError(f"{name}: line {number + 1} has no line break in its first "
                                f"{_megabytes(ENDLESS_LINE_BYTES)}: not a JSON-lines or text file")
            if skipped is None and end >= 0:
                number += 1
                yield None
            if not block:
                block = stream.read(chunk)
                continue
        lines = block.split(b"\n")
        if carry:
            lines[0] = None if len(carry) + len(lines[0]) > max_bytes else bytes(carry) + lines[0]
        carry = bytearray(lines.pop())
        number += len(lines)
        for line in lines:
            if stats is not None and line is not None:
                stats.bytes_read += len(line) + 1
            yield line
        block = stream.read(chunk)
    if skipped is not None:
        yield None
    elif carry:
        if stats is not None:
            stats.bytes_read += len(carry)
        yield bytes(carry)


def _carry_on(block: bytes, end: int, carry: bytearray, skipped: int | None, max_bytes: int):
    """A block without a line end, or the rest of a line being skipped:
    ``(skipped, carry, what of the block is left to split)``. The carry
    grows in place (a ``bytearray``), so a long line costs no quadratic copying."""
    if skipped is not None:
        if end < 0:
            return skipped + len(block), carry, b""
        return None, carry, block[end + 1:]
    if len(carry) + len(block) > max_bytes:
        skipped = len(carry) + len(block)
        carry.clear()
        return skipped, carry, b""
    carry += block
    return None, carry, b""


def parse_record(line: bytes) -> dict | None:
    """One JSON line -> a record, or None when the line is damaged."""
    try:
        return _as_record(_loads(line))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return None


def _loads(line: bytes) -> object:
    """``json.loads(line)``, through orjson when it is installed (the
    ``fast`` extra). Parsing is the largest single cost of reading the
    snapshot, and orjson parses about twice as fast, which makes a whole
    ``prepare`` about 15% faster (benchmarks/prepare_speed.py --floors).
    orjson is stricter than json (it refuses NaN, a byte-order mark, lone
    surrogate escapes), so a line it refuses goes to json, whose verdict
    stands. Two things no arXiv record holds still read differently: an
    integer past 64 bits comes back as a float, and a line nested between
    about 1000 and 1024 levels deep parses where json gives up."""
    if _fast_loads is not None:
        try:
            return _fast_loads(line)
        except ValueError:  # orjson.JSONDecodeError: json decides
            pass
    return json.loads(line)


def _as_record(item: object) -> dict | None:
    """The item if it is an object with string ``title`` and ``abstract``."""
    if not isinstance(item, dict):
        return None
    title, abstract = item.get("title"), item.get("abstract")
    if not isinstance(title, str) or not isinstance(abstract, str):
        return None
    if not (title + abstract).isascii():
        try:  # a "\ud83d" escape is valid JSON but no character of any text
            (title + abstract).encode("utf-8")
        except UnicodeEncodeError:
            return None
    return item


def matches_categories(record: dict, categories: Sequence[str] | None) -> bool:
    """True when one of the record's categories equals a wanted code, or lies
    inside a wanted archive or group (``"cs"`` matches ``cs.LG``, ``"hep"``
    matches ``hep-th`` and ``hep-ph``)."""
    if not categories:
        return True
    own = str(record.get("categories", "")).split()
    return any(c == want or c.startswith((want + ".", want + "-")) for c in own for want in categories)


def iter_records(path: str | os.PathLike | None = None,
                 categories: Sequence[str] | None = None,
                 stats: ReadStats | None = None, allow_array: bool = True,
                 text_records: str = "paragraphs") -> Iterator[dict]:
    """Stream records from a JSON-lines file (default: the embedded corpus)
    or, for a ``.txt``/``.md`` file (:func:`is_plain_text`), the
    ``{"text": ...}`` records of :func:`iter_text_records` (``text_records``
    says what one is; a text has no categories to filter by).

    Damaged lines are skipped and counted in ``stats``; pass a
    :class:`ReadStats` to see the counts (and ``bytes_read`` for progress).
    A file that is a single JSON array (not JSON lines) is accepted when
    ``allow_array``, though it has to be read whole; otherwise it is a
    :class:`DataError`.
    """
    path = existing_source(path if path is not None else default_corpus_path())
    stats = stats if stats is not None else ReadStats()
    stats.path = str(path)
    categories = [c.strip() for c in categories or [] if c.strip()]
    if is_plain_text(path):
        check_no_categories(path, categories)
        yield from iter_text_records(path, text_records, stats)
        return
    for number, line in numbered_lines(path, stats, allow_array):
        if line is None:
            stats.note_long(number)
            continue
        if not line or line.isspace():
            continue
        if number == 1 and line.lstrip().startswith(b"["):  # the whole file, read by numbered_lines
            stats.bytes_read += len(line)
            yield from _iter_json_array(line, categories, stats)
            return
        record = parse_record(line)
        if stats.count(record, number, categories):
            yield record


def existing_source(path: str | os.PathLike) -> Path:
    """``path`` as a Path, once it is known to be a file (not missing, not a folder)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected {_FILE_KINDS}")
    return path


def numbered_lines(path: Path, stats: ReadStats | None = None, allow_array: bool = True,
                   plain_text: bool = False) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` pairs of a source, ``None`` for a line over
    :data:`MAX_LINE_BYTES` (see :func:`bounded_lines`). A JSON file that
    starts with ``[`` is one JSON array: it comes whole as line 1 when
    ``allow_array``, else it is a :class:`DataError` before it is read
    (``plain_text``: no such check, a text may start with ``[``). A
    damaged archive or compressed stream (truncated download, not really
    gzip) becomes a :class:`DataError`, and so does a read error."""
    number = 0
    try:
        with _open_source(path) as stream:
            first = stream.read(_READ_CHUNK)
            if not plain_text and first.lstrip()[:1] == b"[":
                if not allow_array:
                    raise DataError(f"{path}: is one JSON array, not JSON lines, and cannot be streamed "
                                    f"(convert it first: python -m charrnn prepare {path.name} "
                                    "--out sample.jsonl)")
                yield 1, first + stream.read()
                return
            for number, line in enumerate(bounded_lines(stream, str(path), stats=stats, first=first),
                                          start=1):
                yield number, line
    except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as e:
        where = f"after line {number}" if number else "from its start"
        raise DataError(f"{path}: the file is damaged or truncated {where} ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read after line {number} ({e.strerror or e})") from None


# ------------------------------------------------------------------- plain text
TEXT_SUFFIXES = (".txt", ".md")  # read as plain UTF-8 text, also with ".gz" after them
TEXT_RECORD_CHARS = 1 << 16      # a text record longer than this is cut into pieces (at line breaks)
_BOM = b"\xef\xbb\xbf"           # the UTF-8 byte-order mark some editors put first


def is_plain_text(path: str | os.PathLike) -> bool:
    """True for a file read as plain text: its name ends in ``.txt`` or
    ``.md`` (any case), or in one of those followed by ``.gz``. Everything
    else is read as arXiv JSON lines (a ``.zip`` always is)."""
    name = Path(path).name.lower()
    return name.removesuffix(".gz").endswith(TEXT_SUFFIXES)


def check_no_categories(path: str | os.PathLike, categories: Sequence[str] | None) -> None:
    """A category filter on a plain-text file is a :class:`DataError`: a
    text has no categories, and filtering everything out would be a
    puzzle."""
    if categories and is_plain_text(path):
        raise DataError(f"{path}: is plain text, which has no categories to filter by "
                        f"(got {', '.join(categories)}); leave out --categories")


def iter_text_records(path: str | os.PathLike, text_records: str = "paragraphs",
                      stats: ReadStats | None = None) -> Iterator[dict]:
    """Stream the records of a plain UTF-8 text file as ``{"text": ...}`` dicts.

    With ``text_records="paragraphs"`` (the default) a record is a
    paragraph: the lines up to a blank line (one of only spaces counts as
    blank). Its line breaks are kept: a poem's lines, a play's speeches,
    a list are the shape of the text, and a model that never sees ``"\n"``
    cannot write a stanza; a text wrapped at 70 columns only teaches the
    model to wrap too. With ``"lines"``, each non-blank line is a record
    (a list of names, proverbs, one sentence per line).

    Each line loses its trailing spaces and its line ending (``\r\n`` or
    ``\n``) and keeps its indentation; a UTF-8 byte-order mark at the start
    is dropped. A record is never longer than :data:`TEXT_RECORD_CHARS`
    characters: a longer paragraph (a text without blank lines) is cut at
    line breaks into records of at most that size, and a line longer than
    that alone into pieces of exactly that size. Memory so stays bounded
    whatever the file; a line over :data:`MAX_LINE_BYTES` is skipped and
    counted as in JSON lines (it also ends its paragraph).

    The file must be UTF-8: a byte that is not is a :class:`DataError`
    naming the line and the byte, rather than a model trained on
    replacement characters. (A text that is not UTF-8 is almost always in
    another encoding throughout, such as cp1251 or Latin-1, so its first
    bad byte is the place to stop and convert.)
    """
    check_text_records(text_records)
    path = existing_source(path)
    stats = stats if stats is not None else ReadStats()
    stats.path, stats.text_records = str(path), text_records
    yield from _cut_into_records(path, text_records == "lines", stats)


def _cut_into_records(path: Path, one_per_line: bool, stats: ReadStats) -> Iterator[dict]:
    """The loop of :func:`iter_text_records`: lines in, records out."""
    paragraph: list[str] = []   # the lines of the record being read
    size = 0                    # its characters, line breaks included

    def finish() -> Iterator[dict]:
        nonlocal size
        if paragraph:
            stats.records += 1
            yield {"text": "\n".join(paragraph)}
            paragraph.clear()
            size = 0

    for number, raw in numbered_lines(path, stats, plain_text=True):
        if raw is None:  # over MAX_LINE_BYTES: skipped unread
            stats.note_long(number)
            yield from finish()
            continue
        line = _decode_text_line(raw, path, number).rstrip()
        if not line:
            yield from finish()
            continue
        stats.lines += 1
        while len(line) > TEXT_RECORD_CHARS:  # no line break for 64 K characters: cut anyway
            yield from finish()
            paragraph.append(line[:TEXT_RECORD_CHARS])
            yield from finish()
            line = line[TEXT_RECORD_CHARS:]
        if paragraph and size + 1 + len(line) > TEXT_RECORD_CHARS:
            yield from finish()
        size += len(line) + (1 if paragraph else 0)
        paragraph.append(line)
        if one_per_line:
            yield from finish()
    yield from finish()


def _decode_text_line(raw: bytes, path: Path, number: int) -> str:
    """One line of a text file as a string, without a leading byte-order
    mark on line 1; bytes that are not UTF-8 are a :class:`DataError`
    naming the line, the byte and how to convert the file."""
    skip = len(_BOM) if number == 1 and raw.startswith(_BOM) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[skip + e.start:skip + e.end]
        raise DataError(f"{path}: line {number} is not UTF-8 (byte {skip + e.start + 1} of the line is "
                        f"{bad.hex(' ')}); save the file as UTF-8, e.g. iconv -f cp1251 -t utf-8 "
                        "in.txt > out.txt for a Windows Cyrillic text") from None


def _iter_json_array(blob: bytes, categories, stats: ReadStats) -> Iterator[dict]:
    try:
        items = json.loads(blob)
    except RecursionError:
        raise DataError(f"{stats.path}: starts like a JSON array but is nested too deeply to read") from None
    except ValueError as e:
        raise DataError(f"{stats.path}: starts like a JSON array but does not parse ({e})") from None
    for number, item in enumerate(items, start=1):
        record = _as_record(item)
        if stats.count(record, number, categories):
            yield record


def load_records(path: str | os.PathLike | None = None, *,
                 categories: Sequence[str] | None = None,
                 limit: int | None = None,
                 sample: int | None = None,
                 seed: int = 0,
                 stats: ReadStats | None = None,
                 text_records: str = "paragraphs") -> list[dict]:
    """Read records into a list (default file: the embedded corpus; a
    ``.txt``/``.md`` file gives ``{"text": ...}`` records, see
    :func:`iter_text_records`).

    ``limit`` stops after that many usable records; ``sample`` then keeps a
    seeded uniform random sample of that many (reservoir sampling, so the
    file is still streamed once), in file order. Damaged lines are skipped
    with one warning that names the first; a file with no usable record
    raises :class:`DataError`.
    """
    check_positive("limit", limit, none_allowed=True)
    check_positive("sample", sample, none_allowed=True)
    stats = stats if stats is not None else ReadStats()
    stream = iter_records(path, categories, stats, text_records=text_records)
    if limit is not None:
        stream = islice(stream, limit)
    if sample is None:
        records = list(stream)
    else:
        records = _reservoir_sample(stream, sample, seed)
    if stats.malformed:
        warnings.warn(f"{stats.path}: skipped {stats.malformed} malformed line(s); "
                      f"the first is line {stats.first_bad_line}", stacklevel=2)
    if stats.too_long:
        warnings.warn(f"{stats.path}: {stats.long_lines_text()}", stacklevel=2)
    if not records:
        raise stats.nothing_usable(categories)
    return records


def _reservoir_sample(stream: Iterable[dict], k: int, seed: int) -> list[dict]:
    """Uniform sample of k items from a stream of unknown length, kept in
    stream order: each item gets a seeded random key, the k smallest win."""
    rng = random.Random(seed)
    heap: list[tuple[float, int, dict]] = []  # max-heap on key via negation
    for index, item in enumerate(stream):
        key = rng.random()
        if len(heap) < k:
            heapq.heappush(heap, (-key, index, item))
        elif key < -heap[0][0]:
            heapq.heapreplace(heap, (-key, index, item))
    return [item for _, _, item in sorted(heap, key=lambda t: t[1])]


# ------------------------------------------------------------------- formatting
def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace (the snapshot's hard line breaks and
    indentation inside titles and abstracts) to single spaces.

    ``str.split()`` splits on exactly the characters the regex ``\\s+``
    matches (``str.isspace``; tests/test_prepared.py checks every code
    point) and is about four times faster, which counts on the 4 GB
    snapshot."""
    return " ".join(text.split())


def format_record(record: dict) -> str:
    """The text one record contributes to the corpus: for an arXiv paper
    ``"title ; abstract"`` with whitespace normalised, as in the origin
    notebook; for a record of a plain-text file (``{"text": ...}``, no
    title) its text as read, line breaks and all."""
    if "title" not in record and "text" in record:
        return record["text"]
    return normalize_whitespace(record["title"]) + SEPARATOR + normalize_whitespace(record["abstract"])


def load_texts(path: str | os.PathLike | None = None, **kwargs) -> list[str]:
    """Formatted texts of :func:`load_records` (same arguments)."""
    return [format_record(r) for r in load_records(path, **kwargs)]


# --------------------------------------------------------------------- splitting
def split_key(record: dict) -> str:
    """What decides a record's split: its arXiv id, or its text when it has
    none (every record of a plain-text file: a paragraph that occurs twice,
    a refrain, lands in the same split both times)."""
    return str(record.get("id") or format_record(record))


def _split_digest(record: dict) -> bytes:
    return hashlib.sha1(split_key(record).encode("utf-8")).digest()


def is_validation(record: dict, val_fraction: float) -> bool:
    """Stable membership of the validation split: the sha1 of the record id
    (or of its text when it has none, as in a plain-text file) decides, so the split does not depend on
    file order, sampling, or how many records were read."""
    return int.from_bytes(_split_digest(record)[:8], "big") / 2 ** 64 < val_fraction


class HashSplit:
    """The train/validation split of a stream of records, one at a time.

    :meth:`assign` says where each record goes (:func:`is_validation`);
    :meth:`moved_to_validation` then names the one training record (by its
    position among the training records) that moves to validation when the
    hash put none there, so that validation is never empty with
    ``val_fraction > 0`` and at least two records. :func:`split_records` and
    the prepared-data pipeline both split with it.
    """

    def __init__(self, val_fraction: float):
        check_fraction("val_fraction", val_fraction)
        self.val_fraction = val_fraction
        self.train_count = self.val_count = 0
        self._smallest: tuple[bytes, int] | None = None  # (digest, training position)

    def assign(self, record: dict) -> str:
        """``"val"`` or ``"train"`` for ``record``."""
        digest = _split_digest(record)
        if int.from_bytes(digest[:8], "big") / 2 ** 64 < self.val_fraction:
            self.val_count += 1
            return "val"
        if self._smallest is None or digest < self._smallest[0]:
            self._smallest = (digest, self.train_count)
        self.train_count += 1
        return "train"

    def moved_to_validation(self) -> int | None:
        """Position of the training record to move, or None."""
        if self.val_fraction > 0 and self.val_count == 0 and self.train_count >= 2:
            return self._smallest[1]
        return None


def split_records(records: Sequence[dict], val_fraction: float = 0.1) -> tuple[list[dict], list[dict]]:
    """Deterministic train/validation split by hashed record id (see
    :class:`HashSplit`: validation is never empty when it can be helped)."""
    split = HashSplit(val_fraction)
    parts: dict[str, list[dict]] = {"train": [], "val": []}
    for record in records:
        parts[split.assign(record)].append(record)
    move = split.moved_to_validation()
    if move is not None:
        parts["val"].append(parts["train"].pop(move))
    return parts["train"], parts["val"]


def write_records(records: Iterable[dict], path: str | os.PathLike,
                  fields: Sequence[str] = ("id", "title", "abstract", "categories")) -> int:
    """Write records as JSON lines, atomically (a temporary file of its own,
    so two runs cannot mix their lines, renamed into place), keeping only
    ``fields``. Returns the number written. The file gets the usual
    permissions (the umask's); a full disk is one :class:`DataError`."""
    count = 0
    with writing(path), atomic_write(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps({k: record[k] for k in fields if k in record}, ensure_ascii=False))
            f.write("\n")
            count += 1
    return count


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file (through links too), so an
    output that is its own input can be refused before the input is read."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        pass
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): opening it will say so
        return False
