"""Looking for hidden units that track something about the text.

A recurrent model must remember, in its hidden state, whatever it needs for
the next character: whether it is inside a ``$...$`` formula (so ``\\alpha``
is likely), whether a parenthesis is open (so ``)`` will come), whether it is
still in the title. Sometimes one unit carries such a fact on its own. The
simple test used here: the Pearson correlation, over the positions of a
text, between each unit's activation and a 0/1 feature of the position,
compared with the correlations the same units reach with the feature
shuffled (chance).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..model import evaluating
from ..vocab import CharVocab
from .colortext import coloured_text_html, save_coloured_text_png

ACTIVATION_CMAP = "RdBu_r"  # blue below zero, white at zero, red above
TITLE_SEPARATOR = " ; "     # format_record joins title and abstract with it


def hidden_states(model: torch.nn.Module, vocab: CharVocab, text: str) -> np.ndarray:
    """The top recurrent layer's output after reading each character of
    ``text`` (after ``<bos>``): a ``(len(text), hidden_size)`` float array.
    For an LSTM this is h_t = o_t * tanh(c_t), so every unit lies in [-1, 1]."""
    if not text:
        raise ValueError("the text is empty: there are no hidden states to show")
    with evaluating(model) as device:
        ids = torch.tensor([vocab.encode(text, add_bos=True)], device=device)  # (1, 1 + len(text))
        outputs, _ = model.rnn(model.embedding(ids))               # (1, 1 + len(text), hidden)
    return outputs[0, 1:].float().cpu().numpy()                    # after each character: (len(text), hidden)


def text_features(text: str) -> dict[str, np.ndarray]:
    """Simple facts about every position of ``text``, as float arrays of
    ``len(text)``:

    - ``math``: inside ``$...$`` (the opening ``$`` counts as inside, the
      closing one as outside);
    - ``parens``: at least one ``(`` open;
    - ``title``: before the ``" ; "`` that separates title and abstract;
    - ``line_position``: how far along its line the character is, 0 to 1.
    """
    in_math, depth = False, 0
    math, parens = np.zeros(len(text)), np.zeros(len(text))
    for i, ch in enumerate(text):
        if ch == "$":
            in_math = not in_math
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        math[i], parens[i] = in_math, depth > 0
    title = np.zeros(len(text))
    if TITLE_SEPARATOR in text:
        title[:text.index(TITLE_SEPARATOR)] = 1.0
    line_position = np.zeros(len(text))
    start = 0
    for line in text.split("\n"):
        if len(line) > 1:
            line_position[start:start + len(line)] = np.arange(len(line)) / (len(line) - 1)
        start += len(line) + 1
    return {"math": math, "parens": parens, "title": title, "line_position": line_position}


def unit_correlations(states: np.ndarray, feature: Sequence[float]) -> np.ndarray:
    """Pearson correlation of every unit (column of ``states``, shape
    ``(positions, units)``) with ``feature``; 0 where either is constant."""
    states = np.asarray(states, dtype=float)
    feature = np.asarray(feature, dtype=float)
    if states.ndim != 2 or states.shape[0] != feature.shape[0]:
        raise ValueError(f"expected states of shape (positions, units) and one feature value per position, "
                         f"got {states.shape} and {feature.shape}")
    centred = states - states.mean(0)
    f = feature - feature.mean()
    denominator = np.sqrt((centred ** 2).sum(0) * (f ** 2).sum())
    out = np.zeros(states.shape[1])
    ok = denominator > 1e-12
    out[ok] = (centred[:, ok] * f[:, None]).sum(0) / denominator[ok]
    return out


@dataclass(frozen=True)
class UnitMatch:
    """A unit that tracks a feature: its correlation, and the best |correlation|
    any unit reaches with the feature shuffled (the mean over a few shuffles)."""

    feature: str
    unit: int
    correlation: float
    chance: float


def top_units(states: np.ndarray, features: dict[str, np.ndarray], k: int = 3, min_std: float = 0.05,
              shuffles: int = 5, seed: int = 0) -> list[UnitMatch]:
    """For each feature, the ``k`` units most correlated with it (by
    |correlation|), among units whose activation varies (std > ``min_std``)
    on this text. Chance is measured by shuffling the feature's positions;
    features that are constant on the text are left out."""
    varying = np.asarray(states).std(0) > min_std
    rng = np.random.default_rng(seed)
    matches = []
    for name, feature in features.items():
        feature = np.asarray(feature, dtype=float)
        if feature.std() == 0:
            continue
        r = np.where(varying, unit_correlations(states, feature), 0.0)
        chance = float(np.mean([np.abs(np.where(varying, unit_correlations(states, rng.permutation(feature)),
                                                0.0)).max() for _ in range(shuffles)])) if shuffles else 0.0
        for unit in np.argsort(-np.abs(r), kind="stable")[:k]:
            matches.append(UnitMatch(name, int(unit), float(r[unit]), chance))
    return matches


def activation_html(text: str, activations: Sequence[float], unit: int | None = None) -> str:
    """``text`` coloured by one unit's activation (blue -1, white 0, red +1)."""
    caption = f"unit {unit}" if unit is not None else "activation"
    return coloured_text_html(text, activations, cmap=ACTIVATION_CMAP, vmin=-1.0, vmax=1.0, unit="",
                              legend_values=(-1, -0.5, 0, 0.5, 1), caption=caption)


def save_activation_png(path: str | os.PathLike, text: str, activations: Sequence[float],
                        unit: int | None = None, width: int = 90, title: str = "") -> None:
    """The picture of :func:`activation_html` as a PNG file."""
    label = f"activation of unit {unit}" if unit is not None else "activation"
    save_coloured_text_png(path, text, activations, cmap=ACTIVATION_CMAP, vmin=-1.0, vmax=1.0, label=label,
                           width=width, title=title)
