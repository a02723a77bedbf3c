"""Notebook 06's exercise: ``most_surprising``, the characters of a text that
a model found most surprising, with their positions and their surprisal in
bits. The student decides which row of logits scores which character, the
units, and what counts as a character of the text; the reference scores each
character with :func:`charrnn.metrics.surprisal_bits`, the function behind
the coloured texts of :mod:`charrnn.viz.surprisal`.

The cases use two small models whose answers are known here: an untrained
GRU made confident (so that the surprisals spread over several bits), and a
table model whose logits depend only on the token just read, so that a pair
of characters that occurs twice is exactly as surprising both times (ties).
A wrong answer is compared with what each usual mistake would have returned
(the bits of a neighbour, the row after the character, no ``<bos>``, nats,
``<eos>`` counted, the order) and named only when it matches one."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ...metrics import surprisal_bits as _library_surprisal_bits
from ...model import CharRNN
from ...vocab import CharVocab
from .common import ExerciseError, _call, _keeps_random_state

__all__ = ["check_most_surprising"]

_GRU_TEXT = "Spectral gaps of random graphs ; We bound the gap."
_TIE_TEXT = "banana bandana ; a nan"  # "an", "na" and "a " come back: the table model scores them the same each time
# (model, text, k): a record whose <eos> would rank first, ties, fewer characters than k, one character
_CASES = (("gru", _GRU_TEXT, 5), ("table", _TIE_TEXT, 6), ("gru", "Hi", 4), ("gru", "Q", 1))
_NAMES = {"gru": "a small GRU", "table": "a table model"}
_TOL = 1e-3  # bits: float32 and log2-of-softmax answers stay far inside it


class _NextTokenTable(torch.nn.Module):
    """``(x, state) -> (logits, state)`` like :class:`CharRNN`, with logits
    that depend only on the token just read: row ``x`` of a fixed table."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor, state=None):
        if x.ndim != 2:
            raise ValueError(f"expected token ids of shape (batch, time), got {tuple(x.shape)}")
        return self.table[x], torch.zeros(1) if state is None else state


def _models() -> tuple[dict[str, torch.nn.Module], CharVocab]:
    """The two models of the cases, over one vocabulary of their texts."""
    vocab = CharVocab.from_texts([text for _, text, _ in _CASES])
    torch.manual_seed(0)
    gru = CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=8, hidden_size=16).eval()
    with torch.no_grad():
        gru.head.weight.mul_(6)  # confident, often wrong: surprisals from near 0 to 8 bits
    generator = torch.Generator().manual_seed(2)
    table = torch.randn(len(vocab), len(vocab), generator=generator) * 2
    table[:, vocab.eos_id] = -8.0  # the end of a record is very surprising here
    return {"gru": gru, "table": _NextTokenTable(table).eval()}, vocab


@dataclass
class _Scores:
    """What the check knows about one case: every character's surprisal in
    bits (``bits[t]`` for ``text[t]``), the ``<eos>``'s, the bits of every
    token under every row of logits of ``<bos>`` text ``<eos>`` (``table``),
    and each character's bits when the model never read ``<bos>``
    (``no_bos[t]``, NaN for the first character)."""

    text: str
    ids: list[int]
    bits: list[float]
    eos_bits: float
    table: torch.Tensor
    no_bos: list[float]

    def expected(self, k: int) -> list[tuple[int, str, float]]:
        order = sorted(range(len(self.text)), key=lambda t: (-self.bits[t], t))
        return [(t, self.text[t], self.bits[t]) for t in order[:k]]


@torch.no_grad()
def _scores(model: torch.nn.Module, vocab: CharVocab, text: str) -> _Scores:
    ids = vocab.encode(text, add_bos=True, add_eos=True)  # <bos>, the n characters, <eos>
    n = len(text)
    logits = model(torch.tensor([ids]))[0][0]              # (n + 2, V): row r has read ids[:r + 1]
    bits = _library_surprisal_bits(logits[:n + 1], torch.tensor(ids[1:]))  # the characters, then <eos>
    table = -torch.log_softmax(logits.double(), dim=-1) / math.log(2)
    without = model(torch.tensor([ids[1:n + 1]]))[0][0]   # the text alone: row r has read text[:r + 1]
    no_bos = [math.nan] + _library_surprisal_bits(without[:n - 1], torch.tensor(ids[2:n + 1])).tolist()
    return _Scores(text, ids, bits[:n].tolist(), float(bits[n]), table, no_bos)


# ------------------------------------------------------------ the answer's form
def _as_position(value) -> int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return None


def _as_bits(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (numbers.Real, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    return None


def _entries(call: str, got) -> list[tuple[int, str, float]]:
    """The student's answer as ``(position, character, bits)`` tuples, or an
    error that says which part of which entry has the wrong type."""
    form = "a list of (position, character, bits) tuples: an int, a one-character string and a float"
    if not isinstance(got, (list, tuple)):
        raise ExerciseError(f"{call} returned {type(got).__name__}; expected {form}.")
    entries = []
    for entry in got:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ExerciseError(f"{call} returned an entry {entry!r}; expected {form}.")
        position, char, bits = _as_position(entry[0]), entry[1], _as_bits(entry[2])
        if position is None or not isinstance(char, str) or bits is None:
            raise ExerciseError(f"{call} returned the entry {entry!r}; expected {form}.")
        entries.append((position, char, bits))
    return entries


def _shown(entries) -> str:
    return "[" + ", ".join(f"({p}, {c!r}, {b:.3f})" for p, c, b in entries) + "]"


# ------------------------------------------------------------ naming the mistake
def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _TOL  # False when b is NaN (no such score)


def _mistakes(s: _Scores) -> list[tuple[Callable[[int, str, float], bool], str]]:
    """``(does this entry fit the mistake, hint)`` for each usual mistake, in
    the order they are tried. An entry fits when its bits are what that
    mistake computes for the character it names (or, for ``<bos>`` counted,
    for the character before)."""
    n, text = len(s.text), s.text

    def named(p: int, c: str) -> bool:
        return 0 <= p < n and c == text[p]

    def after_reading(p: int) -> float:
        return float(s.table[p + 1, s.ids[p + 1]])  # the row that has already read text[p], scoring text[p]

    return [
        (lambda p, c, b: b < -_TOL,
         "a surprisal is never negative: minus the log of a probability (at most 1) is >= 0."),
        (lambda p, c, b: named(p, c) and _close(b, s.bits[p] * math.log(2)),
         "these are ln 2 = 0.693 times the surprisal in bits: nats, the natural log's unit. How do the two "
         "units relate?"),
        (lambda p, c, b: 1 <= p <= n and c == text[p - 1] and _close(b, s.bits[p - 1]),
         "each character and its bits are right, but every position is one more than the character's index in "
         "text (text[position] must be the character). Were the positions counted with <bos>, or from 1?"),
        (lambda p, c, b: named(p, c) and p >= 1 and _close(b, s.bits[p - 1]),
         "each surprisal is pinned on the character AFTER the one the model was surprised by. The row of "
         "logits the model gives after reading a token is its guess about which character?"),
        (lambda p, c, b: named(p, c) and p + 1 < n and _close(b, s.bits[p + 1]),
         "each surprisal is pinned on the character BEFORE the one the model was surprised by. The row of "
         "logits the model gives after reading a token is its guess about which character?"),
        (lambda p, c, b: named(p, c) and _close(b, after_reading(p)),
         "each character was scored by the logits the model gave after it had already read that character. "
         "Its surprisal is about the guess made before the model saw it: which row holds that guess?"),
        (lambda p, c, b: named(p, c) and (_close(b, s.no_bos[p]) or (p + 1 < n and _close(b, s.no_bos[p + 1]))),
         "these are the bits of a model that never read <bos>. Read the text as in training, <bos> first: "
         "then the first character gets its surprisal too."),
    ]


def _eos_counted(s: _Scores, p: int, c: str, b: float) -> bool:
    named = 0 <= p < len(s.text) and c == s.text[p]
    return _close(b, s.eos_bits) and not (named and _close(b, s.bits[p]))


def _order_hint(got: list, expected: list, s: _Scores, k: int) -> str:
    """The hint when every entry is a character of the text with its right
    bits, but the list is not the expected one."""
    positions, wanted = [p for p, _, _ in got], [p for p, _, _ in expected]
    if len(set(positions)) < len(positions):
        return "a position appears twice: each character of the text is listed at most once."
    if 0 not in positions and 0 in wanted:
        return ("the first character of the text is missing. It has a surprisal too: before it, the model has "
                "read <bos>.")
    if len(got) != len(expected):
        return (f"the list holds {len(got)} characters. With k = {k} and a text of {len(s.text)} characters it "
                "holds the k most surprising, or every character when the text has fewer than k.")
    if positions == wanted[::-1]:
        return "the right characters, smallest surprisal first: the list starts with the largest."
    least = sorted(range(len(s.text)), key=lambda t: (s.bits[t], t))[:len(got)]
    if set(positions) == set(least):
        return "these are the LEAST surprising characters of the text; the question asks for the most surprising."
    if [s.bits[p] for p in positions] == [s.bits[p] for p in wanted]:
        at = next(i for i, (p, q) in enumerate(zip(positions, wanted, strict=True)) if p != q)
        return (f"positions {min(positions[at], wanted[at])} and {max(positions[at], wanted[at])} are equally "
                f"surprising ({s.bits[wanted[at]]:.3f} bits), and then the earlier in the text comes first. "
                "How does your sort order two equal values?")
    return "every entry is a character of the text with its right bits, but they are not the k largest, largest first."


def _hint(got: list, expected: list, s: _Scores, k: int) -> str:
    """Name the mistake that explains every entry of the answer, if one does."""
    def correct(p: int, c: str, b: float) -> bool:
        return 0 <= p < len(s.text) and c == s.text[p] and _close(b, s.bits[p])

    if any(_eos_counted(s, *e) for e in got) and all(_eos_counted(s, *e) or correct(*e) for e in got):
        return (f"one entry holds the surprisal of the <eos> after the text ({s.eos_bits:.3f} bits). The end of "
                "the record is not a character of the text: leave it out, however surprising.")
    for fits, hint in _mistakes(s):  # every entry fits the mistake or is right, and one is wrong
        if all(fits(*e) or correct(*e) for e in got) and any(fits(*e) and not correct(*e) for e in got):
            return hint
    if all(correct(*e) for e in got):
        return _order_hint(got, expected, s, k)
    return ("take one entry and check it by hand: is text[position] its character? Which row of logits was "
            "computed before the model read that character, and are your numbers in bits?")


def _call_most_surprising(most_surprising: Callable, call: str, model, vocab: CharVocab, text: str, k: int):
    """The student's answer; an index that ran past the end of something
    gets the lengths involved spelled out, the usual cause."""
    try:
        return _call("most_surprising", most_surprising, model, vocab, text, k, shown=call[len("most_surprising("):-1])
    except ExerciseError as e:
        if isinstance(e.__cause__, IndexError):
            raise ExerciseError(f"{e}\nHint: the text has {len(text)} characters, the ids with <bos> "
                                f"{len(text) + 1}, and the logits one row per token the model read. Which "
                                "index of which goes with character t of the text?") from e.__cause__
        raise


@_keeps_random_state
def check_most_surprising(most_surprising: Callable[..., list]) -> None:
    """Check ``most_surprising(model, vocab, text, k)``: the ``k`` characters
    of ``text`` the model found most surprising, as ``(position, character,
    bits)`` tuples, largest surprisal first, with ``text[position] ==
    character``. The model reads ``<bos>`` and the text, as in training; the
    surprisal of a character is minus log2 of the probability the model gave
    it just before reading it. Every character counts, the first one too,
    and nothing else does (the ``<eos>`` after the text is not one of its
    characters). Equal surprisals: the earlier position first. A text of
    fewer than ``k`` characters: all of them. The library's surprisal
    functions are refused while the student's function runs."""
    models, vocab = _models()
    for name, text, k in _CASES:
        scores = _scores(models[name], vocab, text)
        expected = scores.expected(k)
        call = f"most_surprising({_NAMES[name]}, its vocab, {text!r}, {k})"
        got = _entries(call, _call_most_surprising(most_surprising, call, models[name], vocab, text, k))
        if len(got) == len(expected) and all(
                p == q and c == d and _close(b, e) for (p, c, b), (q, d, e) in zip(got, expected, strict=True)):
            continue
        raise ExerciseError(f"{call} returned\n{_shown(got)}\nexpected\n{_shown(expected)}\n"
                            f"Hint: {_hint(got, expected, scores, k)}")
    print(f"✓ most_surprising is correct: {len(_CASES)} texts agree, position, character and bits, largest first "
          "(equal ones in text order, a text shorter than k, <eos> left out)")
