"""Yardsticks for a language model: what simpler predictors score.

Two kinds. *Count models* predict the next character from counts in the
training text: a unigram model from how often each character occurs, a
bigram model from how often it follows the previous character. A neural
model that does not beat the bigram table has learned little more than
which letter tends to follow which. *Compressors* (gzip, bz2, xz) need no
training text at all.

A language model that assigns the text p(x) could be turned into a compressor
that needs -log2 p(x) bits (arithmetic coding), so its bits per character and
a compressor's are the same kind of number. gzip, bz2 and xz from Python's
standard library are the yardstick: a model that does not beat them has not
learned much. They start from nothing, while the model learned from its
training set; the comparison says how much that learning is worth.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Sequence

import numpy as np

from .batches import EncodedCorpus
from .errors import ConfigError, DataError
from .vocab import BOS_ID, PAD_ID

COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
    "bz2": lambda data: bz2.compress(data, compresslevel=9),
    "xz": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
}


def compressor_bits_per_char(texts: Sequence[str]) -> dict[str, float]:
    """Bits per character each compressor needs for ``texts``, joined one per
    line. The newline after each text stands for the model's ``<eos>``, so
    the character count matches what :func:`charrnn.evaluate` scores."""
    if not texts:
        raise DataError("no texts to compress")
    joined = "".join(t + "\n" for t in texts)
    data = joined.encode("utf-8")
    return {name: 8 * len(compress(data)) / len(joined) for name, compress in COMPRESSORS.items()}


def _pairs(corpus: EncodedCorpus) -> tuple[np.ndarray, np.ndarray]:
    """``(previous, next)`` ids of every scored position: each character and
    each ``<eos>``, as the model's loss scores them (a ``<bos>`` is never a
    target: it always follows ``<eos>``)."""
    ids = np.asarray(corpus.ids[0:corpus.num_tokens], dtype=np.int64)
    previous, following = ids[:-1], ids[1:]
    scored = following != BOS_ID
    return previous[scored], following[scored]


def ngram_bits_per_char(train: EncodedCorpus, val: EncodedCorpus, vocab_size: int, order: int = 2,
                        alpha: float = 0.1) -> float:
    """Bits per character on ``val`` of a count model fitted on ``train``.

    ``order=1``: a unigram model, ``p(c) ~ count(c) + alpha``; ``order=2``: a
    bigram model, ``p(c | b) ~ count(b, c) + alpha``. ``alpha`` (add-alpha
    smoothing) gives every possible next token some probability, so a pair
    never seen in training costs many bits instead of infinitely many. The
    possible next tokens are every token but ``<pad>`` and ``<bos>``, as for
    the model, so the two numbers can be compared."""
    if order not in (1, 2):
        raise ConfigError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    if not alpha > 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    train_prev, train_next = _pairs(train)
    val_prev, val_next = _pairs(val)
    if order == 1:
        train_prev, val_prev = np.zeros_like(train_prev), np.zeros_like(val_prev)
    counts = np.zeros((vocab_size, vocab_size))             # counts[previous, next]
    np.add.at(counts, (train_prev, train_next), 1.0)
    possible = np.ones(vocab_size, dtype=bool)
    possible[[PAD_ID, BOS_ID]] = False
    smoothed = (counts + alpha) * possible                  # impossible tokens keep probability 0
    probs = smoothed / smoothed.sum(axis=1, keepdims=True)
    return float(-np.log2(probs[val_prev, val_next]).mean())
