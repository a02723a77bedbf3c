"""From a data setting to the corpora a run trains and validates on.

:class:`~charrnn.config.DataConfig` names a file of records (arXiv JSON
lines, the embedded corpus by default, or a plain-text ``.txt``/``.md`` file
whose paragraphs or lines are the records), a category filter, a limit, a
sample and the share held out. :func:`load_corpora` does what the ``train``
command does with it, so a notebook gets the same records, split and
vocabulary::

    config = DataConfig(data="data/arxiv-small.jsonl", limit=5000)
    corpora = load_corpora(config)
    batches = make_batches(corpora.train, config)

    poems = load_corpora(DataConfig(data="poems.txt"))           # a record per stanza
    names = load_corpora(DataConfig(data="names.txt", text_records="lines"))

A directory written by ``charrnn prepare --out DIR`` is already encoded and
split: :func:`charrnn.scale.prepared.prepared_corpora` gives the same
:class:`Corpora` for it.
"""

from __future__ import annotations

from typing import NamedTuple

from .batches import EncodedCorpus, capped_validation
from .config import DataConfig
from .data import ReadStats, format_record, load_records, split_records
from .vocab import CharVocab


class Corpora(NamedTuple):
    """What a run reads: the training and validation corpora (``val`` is
    None with ``val_fraction=0``), their vocabulary, and a summary to print."""

    train: EncodedCorpus
    val: EncodedCorpus | None
    vocab: CharVocab
    summary: str


def load_split_texts(config: DataConfig) -> tuple[list[str], list[str], ReadStats]:
    """The records ``config`` selects, split into training and validation by
    hashed id (by hashed text for a plain-text file) and formatted as texts,
    with the reading statistics."""
    stats = ReadStats()
    records = load_records(config.data, categories=config.category_list, limit=config.limit,
                           sample=config.sample, seed=config.seed, stats=stats,
                           text_records=config.text_records)
    train, val = split_records(records, config.val_fraction)
    return [format_record(r) for r in train], [format_record(r) for r in val], stats


def load_corpora(config: DataConfig, vocab: CharVocab | None = None) -> Corpora:
    """Read, split and encode the records ``config`` selects. The vocabulary
    is built from the training texts (``config.min_freq``) unless ``vocab``
    is given: a resumed run keeps its own, whatever the data holds now.
    Validation is capped (:func:`~charrnn.batches.capped_validation`) and
    the summary says so."""
    train_texts, val_texts, stats = load_split_texts(config)
    vocab = vocab or CharVocab.from_texts(train_texts, min_freq=config.min_freq)
    val, capped = capped_validation(EncodedCorpus.from_texts(val_texts, vocab) if val_texts else None)
    summary = f"{stats.summary()}\n{len(train_texts)} training / {len(val_texts)} validation records"
    return Corpora(EncodedCorpus.from_texts(train_texts, vocab), val, vocab,
                   summary + (f"; {capped}" if capped else ""))
