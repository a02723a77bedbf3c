"""Notebook 01's exercises: ``encode`` (text to ids) and ``pad_batch``
(sequences of different lengths to one tensor), checked against
:meth:`CharVocab.encode` and :func:`charrnn.pad_sequences`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ...batches import pad_sequences
from ...vocab import CharVocab
from .common import ExerciseError, _call, _changed_in_place, _expect_tensor, _keeps_random_state

__all__ = ["check_encode", "check_pad_batch"]

# ------------------------------------------------------------------ encoding
_ENCODE_CHARS = "abcdeT ;.$"
_ENCODE_CASES = ("abc", "Tea ; bed.", "", "$a$", "cab!", "Zeta ; €")


def _as_int_list(value) -> list[int] | None:
    """A list/tuple/tensor/array of integers as a plain list, else None."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        return None
    return [int(v) for v in value]


@_keeps_random_state
def check_encode(encode: Callable[[str, dict], Sequence[int]]) -> None:
    """Check ``encode(text, stoi) -> list[int]`` against :meth:`CharVocab.encode`.

    Every character maps to ``stoi[char]``; a character missing from ``stoi``
    maps to ``stoi["<unk>"]`` (it must not raise ``KeyError``: real text
    always holds some character the vocabulary never saw). No ``<bos>`` or
    ``<eos>`` is added.
    """
    vocab = CharVocab(_ENCODE_CHARS)
    for text in _ENCODE_CASES:
        stoi = dict(vocab.stoi)  # a copy: a function that mutates stoi is not blamed twice
        expected = vocab.encode(text)
        got = _call("encode", encode, text, stoi, shown=f"{text!r}, stoi",
                    key_error_hint=f"\nHint: real text always holds characters the vocabulary never saw. What "
                         f"should such a character become, and how can you look it up without a KeyError?"
                         f"\nstoi = {vocab.stoi}")
        ids = _as_int_list(got)
        if ids is None:
            raise ExerciseError(f"encode({text!r}, stoi) returned {got!r} ({type(got).__name__}); "
                                "expected a list of integer ids")
        if ids != expected:
            raise ExerciseError(f"encode({text!r}, stoi) returned {ids}, expected {expected}"
                                f"\n(stoi = {vocab.stoi}){_encode_hint(text, ids, expected, vocab)}")
    print(f"✓ encode is correct: {len(_ENCODE_CASES)} texts agree with CharVocab.encode")


def _encode_hint(text: str, ids: list[int], expected: list[int], vocab: CharVocab) -> str:
    """Name the unknown characters and a length that is off."""
    unknown = sorted({c for c in text if c not in vocab.stoi})
    hint = ""
    if unknown:
        hint = (f"\nHint: {', '.join(map(repr, unknown))} is not in stoi. Which special token stands "
                f"for a character the vocabulary does not know?")
    if len(ids) != len(expected):
        hint += (f"\nHint: the text has {len(text)} characters, so the answer needs "
                 f"{len(expected)} ids, not {len(ids)} (no <bos>/<eos> here).")
    return hint


# ------------------------------------------------------------------- padding
_PAD_CASES = (
    ([[1, 5, 7], [2]], 0),
    ([[4], [6, 6], [9, 8, 7, 6]], 0),
    ([[3, 1]], 0),
    ([[1, 2], [3, 4]], 0),
    ([[5], [1, 2, 3]], 9),
)


@_keeps_random_state
def check_pad_batch(pad_batch: Callable[[list[list[int]], int], torch.Tensor]) -> None:
    """Check ``pad_batch(seqs, pad_id) -> LongTensor`` against
    :func:`charrnn.pad_sequences`.

    The result has shape ``(len(seqs), longest length)``; each row starts with
    its sequence and is filled on the right with ``pad_id``. The dtype must be
    ``torch.long``: ``nn.Embedding`` and ``cross_entropy`` accept no other
    integer type. The input lists must be left as they were.
    """
    for seqs, pad_id in _PAD_CASES:
        original = [list(s) for s in seqs]
        given = [list(s) for s in seqs]
        expected = pad_sequences(original, pad_id=pad_id)
        call = f"pad_batch({original}, pad_id={pad_id})"
        got = _call("pad_batch", pad_batch, given, pad_id)
        _expect_tensor(call, got, tuple(expected.shape),
                       f"one row per sequence, as long as the longest\n{expected}",
                       hint="\nHint: how many rows and columns does the batch need? Start from a tensor of that "
                            "size that already holds pad_id everywhere.")
        if got.dtype != torch.long:
            raise ExerciseError(f"{call} returned dtype {got.dtype}, expected torch.int64 (torch.long), "
                                "the dtype nn.Embedding needs.\nHint: ids are whole numbers; which dtype did the "
                                "tensor get when you created it?")
        if not torch.equal(got, expected):
            raise ExerciseError(f"{call} returned\n{got}\nexpected\n{expected}\n"
                                f"(each row is its sequence, then pad_id={pad_id} up to the longest length)")
        if given != original:
            raise _changed_in_place(call, "input", now=given, advice="build a new tensor instead of appending "
                                                                     "to the lists you were given")
    print(f"✓ pad_batch is correct: {len(_PAD_CASES)} batches agree with charrnn.pad_sequences")
