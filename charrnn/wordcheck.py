"""Does the model write words? The eye test, as a number.

The share of the words in generated text that also occur in the training
text. Real English scores close to 1; random letters close to 0. It rewards
spelling, not sense: "the of the of" scores 1, which is why it sits beside
the loss, not in place of it.

A word is a run of letters of any script, so the measure works as well for
a Russian novel or Greek poems as for arXiv abstracts. (Scripts written
without spaces, such as Chinese, make whole phrases one "word": there the
share says little.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import DataError

_WORD = re.compile(r"[^\W\d_]+")  # letters: word characters that are neither digits nor "_"


def words(text: str) -> list[str]:
    """Runs of letters, lower-cased (LaTeX commands like ``\\alpha`` count
    as the word ``alpha``; ``Schrödinger`` is one word, ``Ландау`` another)."""
    return [w.lower() for w in _WORD.findall(text)]


def word_list(texts: Iterable[str]) -> set[str]:
    """Every word that occurs in ``texts``."""
    known: set[str] = set()
    for text in texts:
        known.update(words(text))
    return known


def known_word_share(samples: Iterable[str], known: set[str]) -> float:
    """Share of the words in ``samples`` that are in ``known``."""
    found = total = 0
    for sample in samples:
        for w in words(sample):
            total += 1
            found += w in known
    if total == 0:
        raise DataError("the samples contain no words")
    return found / total
