"""What general-purpose compressors make of the same text.

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

from .errors import DataError

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
