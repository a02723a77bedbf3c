"""Checkers for the notebooks' "your turn" exercises.

A student writes a small function in a notebook cell (``encode``,
``pad_batch``, ...) and the next cell calls the matching ``check_*`` here. The
checker runs the student's function on a handful of cases and compares each
answer with the library's own implementation, so the reference can never
drift from what the rest of the course uses.

On success it prints one ``✓ ... correct`` line. On failure it raises
:class:`ExerciseError` (an ``AssertionError``, so nbval and pytest treat it
as a failed check) whose message says which input was tried, what was
expected and what came back: a student should be able to fix the function
from the message alone, without reading this file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from .batches import pad_sequences
from .vocab import UNK, CharVocab

__all__ = ["ExerciseError", "check_encode", "check_pad_batch"]


class ExerciseError(AssertionError):
    """A student's exercise function gave a wrong answer (or none yet)."""


def _call(name: str, func: Callable, *args, shown: str | None = None, key_error_hint: str = ""):
    """Call the student's function, turning its exceptions into a message
    that names the exercise and the input instead of a bare traceback."""
    shown = shown if shown is not None else ", ".join(repr(a) for a in args)
    try:
        return func(*args)
    except NotImplementedError:
        raise ExerciseError(
            f"{name} is not implemented yet: replace the `raise NotImplementedError` "
            "in the cell above with your code, run that cell, then run this one again."
        ) from None
    except Exception as e:  # any bug in the student's code: say where it happened
        raise ExerciseError(f"{name}({shown}) raised {type(e).__name__}: {e}"
                            f"{key_error_hint if isinstance(e, KeyError) else ''}") from e


def _as_int_list(value) -> list[int] | None:
    """A list/tuple/tensor/array of integers as a plain list, else None."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        return None
    return [int(v) for v in value]


# ------------------------------------------------------------------ encoding
_ENCODE_CHARS = "abcdeT ;.$"
_ENCODE_CASES = ("abc", "Tea ; bed.", "", "$a$", "cab!", "Zeta ; €")


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library warns about unknown characters
            expected = vocab.encode(text)
        got = _call("encode", encode, text, stoi, shown=f"{text!r}, stoi",
                    key_error_hint=f"\nHint: a character missing from stoi must become stoi[{UNK!r}] "
                         f"(stoi.get(char, unk_id) never raises KeyError).\nstoi = {vocab.stoi}")
        ids = _as_int_list(got)
        if ids is None:
            raise ExerciseError(f"encode({text!r}, stoi) returned {got!r} ({type(got).__name__}); "
                                "expected a list of integer ids")
        if ids != expected:
            unknown = sorted({c for c in text if c not in vocab.stoi})
            hint = ""
            if unknown:
                hint = (f"\nHint: {', '.join(map(repr, unknown))} is not in stoi; such characters "
                        f"must become stoi[{UNK!r}] = {vocab.stoi[UNK]}.")
            if len(ids) != len(expected):
                hint += (f"\nHint: the text has {len(text)} characters, so the answer needs "
                         f"{len(expected)} ids, not {len(ids)} (no <bos>/<eos> here).")
            raise ExerciseError(f"encode({text!r}, stoi) returned {ids}, expected {expected}"
                                f"\n(stoi = {vocab.stoi}){hint}")
    print(f"✓ encode is correct: {len(_ENCODE_CASES)} texts agree with CharVocab.encode")


# ------------------------------------------------------------------- padding
_PAD_CASES = (
    ([[1, 5, 7], [2]], 0),
    ([[4], [6, 6], [9, 8, 7, 6]], 0),
    ([[3, 1]], 0),
    ([[1, 2], [3, 4]], 0),
    ([[5], [1, 2, 3]], 9),
)


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
        if not isinstance(got, torch.Tensor):
            raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a torch "
                                f"tensor:\n{expected}\nHint: start from torch.full((rows, cols), pad_id).")
        if tuple(got.shape) != tuple(expected.shape):
            raise ExerciseError(f"{call} returned shape {tuple(got.shape)}, expected "
                                f"{tuple(expected.shape)} (one row per sequence, as long as the longest):"
                                f"\n{expected}")
        if got.dtype != torch.long:
            raise ExerciseError(f"{call} returned dtype {got.dtype}, expected torch.int64 (torch.long), "
                                "the dtype nn.Embedding needs.\nHint: torch.full(..., dtype=torch.long).")
        if not torch.equal(got, expected):
            raise ExerciseError(f"{call} returned\n{got}\nexpected\n{expected}\n"
                                f"(each row is its sequence, then pad_id={pad_id} up to the longest length)")
        if given != original:
            raise ExerciseError(f"{call} changed its input to {given}; build a new tensor instead "
                                "of appending to the lists you were given.")
    print(f"✓ pad_batch is correct: {len(_PAD_CASES)} batches agree with charrnn.pad_sequences")
