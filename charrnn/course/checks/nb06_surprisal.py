"""Notebook 06's exercise: ``surprisal_bits``, how surprised the model is by
each character, checked against :func:`charrnn.metrics.surprisal_bits`, the
function that colours texts by surprisal (:mod:`charrnn.viz.surprisal`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...metrics import surprisal_bits as _library_surprisal_bits
from .common import ExerciseError, _call, _expect_tensor, _keeps_random_state

__all__ = ["check_surprisal_bits"]

_SURPRISAL_SIZES = ((6, 5), (1, 3), (20, 40))  # (positions, vocabulary): one position alone, a larger vocabulary


def _surprisal_hint(got: torch.Tensor, expected: torch.Tensor) -> str:
    """Name the usual mistake: nats for bits, the sign, or another probability."""
    def matches(value: torch.Tensor) -> bool:
        return torch.allclose(got, value, atol=1e-4, rtol=1e-4)

    if matches(expected * math.log(2)):
        return "these are nats (natural log); the question asks for bits. How do the two units relate?"
    if matches(-expected):
        return "the sign is flipped: surprisal is MINUS the log-probability, so it is >= 0."
    if bool((got < 0).any()):
        return "surprisal is never negative: -log2 of a probability (at most 1) is >= 0."
    return ("surprisal is about the character that really came next: which probability of each "
            "row do you need, and in which unit?")


@_keeps_random_state
def check_surprisal_bits(surprisal_bits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``surprisal_bits(logits, targets) -> (n,)``: for each position,
    ``-log2`` of the probability the softmax of ``logits (n, V)`` gives the
    character ``targets (n,)`` that really came next."""
    generator = torch.Generator().manual_seed(0)
    for n, vocab_size in _SURPRISAL_SIZES:
        logits = torch.randn(n, vocab_size, generator=generator) * 3
        targets = torch.randint(vocab_size, (n,), generator=generator)
        expected = _library_surprisal_bits(logits, targets)
        shown = f"logits of shape {tuple(logits.shape)}, targets {targets.tolist()}"
        got = _call("surprisal_bits", surprisal_bits, logits.clone(), targets.clone(), shown=shown)
        _expect_tensor(f"surprisal_bits({shown})", got, tuple(expected.shape), "one value per position")
        got = got.detach().float()
        if not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            raise ExerciseError(f"for targets {targets.tolist()} expected {[round(v, 3) for v in expected.tolist()]}, "
                                f"got {[round(v, 3) for v in got.tolist()]}\nHint: {_surprisal_hint(got, expected)}")
    print(f"✓ surprisal_bits is correct: {len(_SURPRISAL_SIZES)} cases agree with the surprisal in bits")
