"""Notebook 05's exercises: ``temperature_probs`` (the temperature softmax)
and ``top_p_probs`` (nucleus filtering), checked against the sampling rules
generation itself uses, :func:`charrnn.sample.temperature_probs` and
:func:`charrnn.sample.top_p_filter`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...sample import temperature_probs as _library_temperature_probs
from ...sample import top_p_filter as _library_top_p_filter
from .common import ExerciseError, _call, _expect_tensor, _expect_unchanged, _keeps_random_state

__all__ = ["check_temperature_probs", "check_top_p_probs"]

# ---------------------------------------------------------------- sampling
# (shape, temperature): a tau below 1 first (multiplying instead of dividing
# gives another answer there), then tau = 1, above 1, a batch, a tiny tau and 0.
_TEMPERATURE_CASES = (((6,), 0.5), ((6,), 1.0), ((8,), 2.0), ((3, 7), 0.7), ((5,), 0.01), ((6,), 0.0),
                      ((2, 5), 0.0))


def _temperature_hint(got: torch.Tensor, logits: torch.Tensor, tau: float) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    if tau == 0:
        if torch.isnan(got).any() or torch.isinf(got).any():
            return ("\nHint: tau = 0 cannot be divided by (logits / 0 is inf, and softmax of inf is nan). "
                    "What does the distribution tend to as tau -> 0? Treat that limit as its own case: a one-hot "
                    "vector per row.")
        return ("\nHint: temperature 0 is greedy: all the probability on the argmax of the logits, 0 "
                "elsewhere (a one-hot vector per row).")
    candidates = [
        (torch.softmax(logits, dim=-1) / tau, f"the probabilities add up to {1 / tau:g}, not 1: was the "
                                              "temperature applied after the softmax? It reshapes the scores, "
                                              "before they become probabilities."),
        (torch.softmax(logits * tau, dim=-1), "it matches multiplying the logits by the temperature: a high "
                                               "temperature should flatten the distribution. Does yours? Look "
                                               "at the formula again."),
        (torch.softmax(logits, dim=-1), "it matches a softmax with no temperature at all: where does tau "
                                        "enter the formula?"),
        (torch.softmax(logits, dim=-1) ** (1 / tau), "the values have the right ratios but do not add up to 1: "
                                                      "a probability distribution must."),
        (torch.exp(logits / tau), "the values have the right ratios but do not add up to 1: what is the "
                                  "denominator of the formula for?"),
        (torch.softmax(logits / tau, dim=0), "it matches a softmax over the wrong dimension: each row (one "
                                             "distribution over the vocabulary) must add up to 1."),
    ]
    for value, hint in candidates:
        if value.shape == got.shape and torch.allclose(got, value, atol=1e-5):
            return "\nHint: " + hint
    return ""


@_keeps_random_state
def check_temperature_probs(temperature_probs: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``temperature_probs(logits, tau) -> probabilities``, the
    temperature softmax ``p_i = exp(l_i / tau) / sum_j exp(l_j / tau)`` over
    the last dimension of ``logits`` (any shape ``(..., V)``).

    ``tau = 0`` is greedy: a one-hot vector at the argmax of each row (the
    limit of the formula as ``tau -> 0``; dividing by 0 gives nan). The
    answer has the shape of ``logits`` and each row adds up to 1. The logits
    must be left as they were.
    """
    for seed, (shape, tau) in enumerate(_TEMPERATURE_CASES):
        gen = torch.Generator().manual_seed(200 + seed)
        logits = torch.randn(shape, generator=gen) * 3
        expected = _library_temperature_probs(logits, tau)
        given = logits.clone()
        call = f"temperature_probs(logits of shape {tuple(shape)}, tau={tau})"
        got = _call("temperature_probs", temperature_probs, given, tau,
                    shown=f"logits of shape {tuple(shape)}, tau={tau}")
        _expect_tensor(call, got, tuple(expected.shape),
                       "the shape of the logits, one probability per character")
        _expect_unchanged(call, {"logits": given}, {"logits": logits})
        got_f = got.detach().float()
        if not torch.allclose(got_f, expected, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}\nfor logits\n{logits}"
                                f"{_temperature_hint(got_f, logits, tau)}")
    print(f"✓ temperature_probs is correct: {len(_TEMPERATURE_CASES)} cases agree with the temperature softmax")


# ---------------------------------------------------------------------- top-p
# (probabilities, p): distinct probabilities so the order is unambiguous; one
# token above p, p = 1 (keep all), a small p, and a batch of rows.
_TOP_P_CASES = (((0.05, 0.4, 0.1, 0.25, 0.15, 0.05 - 1e-3, 1e-3), 0.9),
                ((0.3, 0.05, 0.35, 0.2, 0.1), 0.5),
                ((0.02, 0.95, 0.03), 0.9),
                ((0.1, 0.2, 0.3, 0.4), 1.0),
                ((0.5, 0.3, 0.2), 0.05))


def _top_p_hint(got: torch.Tensor, probs: torch.Tensor, p: float, expected: torch.Tensor) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    kept_mass = probs[got > 0].sum().item() if got.ndim == 1 else None
    sums = got.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4) and torch.allclose(
            got / sums.unsqueeze(-1), expected, atol=1e-5):
        return ("\nHint: you kept the right tokens, but their probabilities add up to "
                f"{sums.flatten()[0].item():.3f}: after dropping the tail, the rest must again add up to 1.")
    if torch.allclose(got.sort(-1, descending=True).values, expected.sort(-1, descending=True).values, atol=1e-5):
        return ("\nHint: the right probabilities, in the wrong places: the answer must stay in vocabulary order "
                "(entry i is still token i), only the tail set to 0.")
    if kept_mass is not None and kept_mass < p - 1e-6:
        return (f"\nHint: the tokens you kept hold {kept_mass:.3f} of the mass, less than p = {p}. Top-p keeps "
                "the smallest set that REACHES p: is the token that crosses p in or out?")
    if torch.equal(got > 0, probs >= p) or torch.equal(got > 0, probs >= 1 - p):
        return ("\nHint: top-p is about the total mass of the most likely tokens, not about each token's own "
                "probability compared with p.")
    dropped = probs[got == 0]
    if got.ndim == 1 and bool((got > 0).any()) and dropped.numel() and probs[got > 0].min() < dropped.max():
        return "\nHint: a less likely token was kept while a more likely one was dropped: keep the most likely."
    if torch.equal(got > 0, probs > 0) and not torch.equal(expected > 0, probs > 0):
        return ("\nHint: every token was kept. Which tokens lie outside the smallest set of most likely ones "
                "whose mass reaches p?")
    return ""


@_keeps_random_state
def check_top_p_probs(top_p_probs: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``top_p_probs(probs, p) -> probabilities``: nucleus sampling's
    filter. Keep the smallest set of most likely tokens whose probabilities
    add up to at least ``p``, set the others to 0, and renormalise so that
    the kept ones add up to 1. Works on the last dimension; the input must be
    left as it was."""
    for index, (values, p) in enumerate(_TOP_P_CASES):
        probs = torch.tensor(values, dtype=torch.float32)
        if index == 1:  # a batch of two rows: the rule applies to each row separately
            probs = torch.stack([probs, probs.flip(0)])
        expected = _library_top_p_filter(probs, p)
        given = probs.clone()
        call = f"top_p_probs(probs of shape {tuple(probs.shape)}, p={p})"
        got = _call("top_p_probs", top_p_probs, given, p, shown=f"probs of shape {tuple(probs.shape)}, p={p}")
        _expect_tensor(call, got, tuple(expected.shape), "the shape of probs, one probability per token")
        _expect_unchanged(call, {"input": given}, {"input": probs})
        got_f = got.detach().float()
        if not torch.allclose(got_f, expected, atol=1e-5):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}\nfor probs\n{probs}"
                                f"{_top_p_hint(got_f, probs, p, expected)}")
    print(f"✓ top_p_probs is correct: {len(_TOP_P_CASES)} cases agree with nucleus filtering")

