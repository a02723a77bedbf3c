"""A prepared dataset: the whole arXiv snapshot (or a large text) encoded once, on disk.

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

One module per job, so each can be read on its own:

* :mod:`.layout`: the names of the files, inside ``out_dir`` and beside it;
* :mod:`.write`: encoding the snapshot into a directory (two passes);
* :mod:`.read`: opening a prepared directory, and checking it first;
* :mod:`.transaction`: the lock, the work directory and the renames that
  make a prepare all or nothing, even when it is killed.

This module ties them together (:func:`prepare_dataset`) and keeps every
name importable from ``charrnn.scale.prepared``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ...batches import capped_validation
from ...config import check_fraction, check_positive, check_text_records
from ...corpus import Corpora
from ...data import check_no_categories, existing_source
from ...errors import CharRNNError
from ...vocab import CharVocab
from .layout import FORMAT, FORMAT_VERSION, META, SPLITS, VOCAB
from .read import MappedIds, open_prepared, read_meta
from .transaction import replacing
from .write import build, source_fingerprint

__all__ = ["FORMAT", "FORMAT_VERSION", "META", "SPLITS", "VOCAB", "MappedIds", "open_prepared",
           "prepare_dataset", "prepared_corpora", "read_meta", "source_fingerprint"]


def prepare_dataset(source: str | os.PathLike, out_dir: str | os.PathLike,
                    categories: Sequence[str] | None = None, limit: int | None = None,
                    val_fraction: float = 0.01, min_freq: int = 1, progress: bool = True,
                    overwrite: bool = False, text_records: str = "paragraphs") -> dict:
    """Stream an arXiv JSON-lines file (the Kaggle snapshot, its ``.zip``, a
    ``.jsonl`` or ``.gz``) or a plain-text file (``.txt``/``.md``, or a
    ``.gz`` of one; its paragraphs or lines are the records, as
    ``text_records`` says: :func:`~charrnn.data.iter_text_records`) into a
    prepared directory; returns its meta dict.

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
    wanted = [c.strip() for c in categories or [] if c.strip()]
    _check_prepare_args(source, val_fraction, min_freq, limit, wanted, text_records)
    with replacing(out_dir, source, overwrite) as work:
        meta = build(source, work, wanted, limit, val_fraction, min_freq, progress, text_records)
    return meta


def _check_prepare_args(source: Path, val_fraction: float, min_freq: int, limit: int | None,
                        categories: list[str], text_records: str) -> None:
    """Every argument, before the lock is taken or anything is written."""
    existing_source(source)
    check_no_categories(source, categories)
    check_text_records(text_records)
    check_fraction("val_fraction", val_fraction)
    check_positive("min_freq", min_freq)
    check_positive("limit", limit, none_allowed=True)


def prepared_corpora(directory: str | os.PathLike, vocab: CharVocab | None = None) -> Corpora:
    """What :func:`charrnn.corpus.load_corpora` gives for a file of records, for a
    directory written by ``prepare``: its training and validation splits
    (memory-mapped, no validation split when it was prepared with
    ``val_fraction=0``), its vocabulary, and a summary. ``vocab`` is a
    resumed run's own: a directory with another vocabulary is refused."""
    train, own_vocab, meta = open_prepared(directory, "train")
    val = open_prepared(directory, "val")[0] if meta["splits"]["val"]["records"] else None
    if vocab is not None and vocab.to_dict() != own_vocab.to_dict():
        raise CharRNNError(f"{directory}: its vocabulary differs from the checkpoint's; resume on "
                           "the prepared data the run started with")
    summary = f"{directory}: {len(train):,} training / {len(val) if val else 0:,} validation records"
    val, capped = capped_validation(val)
    return Corpora(train, val, own_vocab, summary + (f"; {capped}" if capped else ""))
