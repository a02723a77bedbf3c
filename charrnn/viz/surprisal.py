"""How surprised a model is by each character of a text.

The surprisal of character x_t is -log2 p(x_t | x_<t), in bits: 0 for a
character the model was sure of, 1 for a coin flip, about 7 for a character
it gave 1/138. Its mean over a text is the bits per character the model
needs for that text, the same cross-entropy as the training loss, divided by
ln 2. Colouring a text by it shows *where* the model's loss comes from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from ..metrics import surprisal_bits
from ..model import evaluating
from ..vocab import CharVocab
from .colortext import coloured_text_html, save_coloured_text_png

SURPRISAL_CMAP = "YlOrRd"
MAX_BITS = 8.0  # the colour scale saturates here: rarer characters are all "very surprising"


def char_surprisal(model: torch.nn.Module, vocab: CharVocab, text: str) -> np.ndarray:
    """``-log2 p(x_t | <bos>, x_1 .. x_t-1)`` for every character of ``text``:
    a float array of ``len(text)`` bits. Characters outside the vocabulary
    are scored as ``<unk>`` (``vocab.unknown_chars(text)`` names them)."""
    if not text:
        raise ValueError("the text is empty: there is no character to score")
    with evaluating(model) as device:
        ids = torch.tensor([vocab.encode(text, add_bos=True)], device=device)  # (1, 1 + len(text))
        logits, _ = model(ids[:, :-1])                  # (1, len(text), vocab)
        bits = surprisal_bits(logits[0], ids[0, 1:])    # the real next character's: (len(text),)
    return bits.cpu().numpy()


def surprisal_html(text: str, bits: Sequence[float], max_bits: float = MAX_BITS) -> str:
    """``text`` with each character's background coloured by its surprisal
    (pale yellow: expected, dark red: ``max_bits`` or more), the exact value
    in a tooltip, and a legend. Show it with ``IPython.display.HTML``."""
    legend = [b for b in (0, 1, 2, 4, 6, 8, 12, 16) if b <= max_bits]
    return coloured_text_html(text, bits, cmap=SURPRISAL_CMAP, vmin=0.0, vmax=max_bits, unit="bits",
                              legend_values=legend, caption="surprisal")


def save_surprisal_png(path: str | os.PathLike, text: str, bits: Sequence[float], max_bits: float = MAX_BITS,
                       width: int = 90, title: str = "") -> None:
    """The picture of :func:`surprisal_html` as a PNG file (for a README)."""
    save_coloured_text_png(path, text, bits, cmap=SURPRISAL_CMAP, vmin=0.0, vmax=max_bits,
                           label="surprisal, bits (-log2 p)", width=width, title=title)
