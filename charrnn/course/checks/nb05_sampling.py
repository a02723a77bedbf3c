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
_INF = float("inf")


def _logits(shape: tuple, seed: int, scale: float = 3.0, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(200 + seed)
    return torch.randn(shape, generator=gen) * scale + shift


def _temperature_cases() -> list[tuple[torch.Tensor, float, str]]:
    """(float32 logits, tau, what the case is about), in the order a student
    meets them: the formula first (a tau below 1, where multiplying and
    dividing differ, and a batch), then the edges, each its own case."""
    banned = _logits((8,), 2)
    banned[[1, 6]] = -_INF  # banned tokens, as next_char_probs bans <pad>, <bos>, <unk>
    low = _logits((6,), 6)
    low = low - low.max() - 30.5
    low[:2] = torch.tensor([-29.999, -30.0])  # the two largest 0.001 apart: at tau = 0.001 about e to 1, not greedy
    batch_apart = torch.stack([_logits((6,), 5, 1.0, 30.0), low])
    tie = torch.tensor([30.0, 28.0, 30.0, 5.0, -30.0, 29.5])
    far = _logits((7,), 8)
    far[3] = -_INF
    spread = torch.stack([_logits((7,), 9), _logits((7,), 10)])
    spread[0, [0, 4]], spread[1, 6] = -_INF, -_INF
    ties = torch.stack([torch.tensor([1.0, 3.0, 0.5, 3.0, -2.0]), _logits((5,), 11), _logits((5,), 12)])
    ties[1, ties[1].argmax()] = -_INF  # a banned token that was the largest: greedy must skip it
    return [(_logits((6,), 0), 0.5, "the formula"), (_logits((3, 7), 1), 0.7, "a batch"),
            (banned, 1.0, "banned tokens"), (_logits((8,), 3), 10.0, "a high temperature"),
            (_logits((6,), 4, 4.0, 30.0), 1e-3, "logits near 30 at a tiny temperature"),
            (batch_apart, 1e-3, "a batch of rows far apart at a tiny temperature"),
            (tie, 1e-3, "a tie at a tiny temperature"), (far, 1e6, "a huge temperature"),
            (spread, _INF, "tau = inf"), (_logits((6,), 7), 0.0, "tau = 0"), (ties, 0.0, "tau = 0 with a tie")]


def _first_argmax(logits: torch.Tensor, last: bool = False) -> torch.Tensor:
    """One-hot at the first (or the last) largest entry of each row."""
    index = logits.argmax(-1, keepdim=True) if not last else logits.shape[-1] - 1 - logits.flip(-1).argmax(
        -1, keepdim=True)
    return torch.zeros_like(logits).scatter(-1, index, 1.0)


def _greedy_hint(got: torch.Tensor, logits: torch.Tensor, expected: torch.Tensor) -> str:
    """What a wrong answer at tau = 0 did, when it matches a usual mistake."""
    if not torch.isfinite(got).all():
        return ("\nHint: tau = 0 cannot be divided by (logits / 0 is inf or nan, and so is what follows). τ = 0 is "
                "its own case: the limit of the distribution as τ -> 0, as greedy generation uses it.")
    top = (logits == logits.max(-1, keepdim=True).values).float()
    shared = top / top.sum(-1, keepdim=True)
    if not torch.allclose(shared, expected) and torch.allclose(got, shared, atol=1e-5):
        return ("\nHint: your τ = 0 shares the mass among the tied largest logits. That is the limit of the formula, "
                "but greedy generation takes one token: like charrnn's generator at temperature 0, give all of it "
                "to the first of the tied ones (the lowest id).")
    last = _first_argmax(logits, last=True)
    if not torch.allclose(last, expected) and torch.allclose(got, last, atol=1e-5):
        return ("\nHint: the tie went to the last of the tied tokens; charrnn's generator at temperature 0 takes "
                "the first (the lowest id).")
    return ("\nHint: temperature 0 is greedy: all the probability on the largest logit of each row (the first one "
            "if several tie), 0 elsewhere.")


def _infinite_hint(got: torch.Tensor, logits: torch.Tensor) -> str:
    """What a wrong answer at tau = inf did, when it matches a usual mistake."""
    if torch.isnan(got).any():
        return ("\nHint: with τ = inf, l / τ is 0 for a finite logit but -inf / inf is nan (so is inf - inf). "
                "τ = inf is its own case: what does the distribution tend to as τ grows, for the allowed tokens and "
                "for the banned ones (-inf)?")
    if torch.allclose(got, torch.full_like(got, 1 / got.shape[-1]), atol=1e-5):
        return ("\nHint: every token got the same share, the banned ones (logit -inf) included. A banned token keeps "
                "probability 0 at every temperature, τ = inf too: which tokens share the mass?")
    return ("\nHint: what does the distribution tend to as τ -> ∞, for the allowed tokens and for the banned ones "
            "(-inf)?")


def _not_finite_hint(got: torch.Tensor, logits: torch.Tensor, tau: float) -> str:
    """Where a nan (or inf) in the answer most likely came from, said only
    as far as the input shows it."""
    if (~torch.isfinite(got) & torch.isinf(logits)).any():
        return ("\nHint: a banned token (logit -inf) came out as nan. In floating point inf - inf, inf / inf and "
                "0 × inf are nan: which of your operations does a -inf go through?")
    top = logits.max(-1, keepdim=True).values
    shared_max = torch.exp((logits - logits.max()) / tau)
    if logits.ndim > 1 and torch.equal(torch.isnan(got).any(-1), ~(shared_max.sum(-1) > 0)) and (
            torch.exp((logits - top) / tau).sum(-1) > 0).all():
        return ("\nHint: the rows whose logits all lie far below the largest logit of the whole batch came out nan "
                "(0 / 0): every exponent there underflows to 0. Each row is its own distribution: which number "
                "belongs to it?")
    biggest = float((logits[torch.isfinite(logits)] / tau).abs().max())
    if biggest > 88:
        return (f"\nHint: here |l / τ| reaches {biggest:.4g}, and float32's exp overflows to inf above about 88.7 "
                "(and underflows to 0 below about -103); inf / inf and 0 / 0 are nan. The probabilities do not "
                "change when the same number is subtracted from every logit of a row (it cancels between the "
                "numerator and the denominator): which number keeps every exponent at or below 0?")
    return "\nHint: the answer holds nan or inf: find the operation that made it (inf - inf, inf / inf, 0 / 0)."


def _formula_hint(got: torch.Tensor, logits: torch.Tensor, tau: float, expected: torch.Tensor) -> str:
    """Name the usual mistake a wrong answer at a finite tau > 0 matches."""
    if not torch.isfinite(got).all():
        return _not_finite_hint(got, logits, tau)
    if (got[torch.isinf(logits)] > 0).any():
        return "\nHint: a banned token (logit -inf) got probability above 0: it must stay at 0 at every temperature."
    greedy = _first_argmax(logits)
    if not torch.allclose(greedy, expected, atol=1e-5) and torch.allclose(got, greedy, atol=1e-5):
        return (f"\nHint: at τ = {tau:g} your answer is the greedy one-hot. Any τ > 0, however small, follows the "
                "formula (tied logits share equally, close ones both keep some mass); only τ = 0 itself is greedy.")
    sums = got.sum(-1)
    if tau != 1 and torch.allclose(sums, torch.full_like(sums, 1 / tau), rtol=1e-4):
        return (f"\nHint: the probabilities add up to {1 / tau:g}, not 1: was the temperature applied after the "
                "softmax? It reshapes the scores, before they become probabilities.")
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5) and torch.allclose(
            got / sums.unsqueeze(-1), expected, atol=1e-5):
        return (f"\nHint: the values have the right ratios but add up to {sums.flatten()[0].item():.5g}, not 1: a "
                "probability distribution must.")
    candidates = [
        (torch.softmax(logits * tau, dim=-1), "it matches multiplying the logits by the temperature: a high "
                                               "temperature should flatten the distribution. Does yours?"),
        (torch.softmax(logits, dim=-1), "it matches a softmax with no temperature at all: where does τ enter?"),
        (torch.softmax(logits / tau, dim=0), "it matches normalising over the wrong dimension: each row (one "
                                             "distribution over the vocabulary) must add up to 1."),
    ]
    for value, hint in candidates:
        if not torch.allclose(value, expected, atol=1e-5) and torch.allclose(got, value, atol=1e-5):
            return "\nHint: " + hint
    return ""


def _tolerance(logits: torch.Tensor, tau: float) -> float:
    """How far a right answer may be from the reference: float32 stores
    l / tau to a relative 1.2e-7, which at l / tau = 30,000 is about 0.004 in
    an exponent. Dividing before subtracting the maximum, or subtracting a
    log-sum-exp afterwards, is as right as the reference's order."""
    finite = logits[torch.isfinite(logits)]
    scale = float(finite.abs().max()) / tau if 0 < tau < _INF and finite.numel() else 0.0
    return max(1e-5, 2 * torch.finfo(torch.float32).eps * scale)


def _temperature_hint(got: torch.Tensor, logits: torch.Tensor, tau: float, expected: torch.Tensor) -> str:
    if tau == 0:
        return _greedy_hint(got, logits, expected)
    if tau == _INF:
        return _infinite_hint(got, logits)
    return _formula_hint(got, logits, tau, expected)


def _check_negative(temperature_probs: Callable) -> None:
    """A negative temperature has no meaning: it must raise a ValueError with
    a message, not return (the answer would rank the tokens upside down)."""
    call = "temperature_probs(logits of shape (5,), tau=-0.5)"
    try:
        got = _call("temperature_probs", temperature_probs, _logits((5,), 13), -0.5,
                    shown="logits of shape (5,), tau=-0.5")
    except ExerciseError as e:
        cause = e.__cause__
        if isinstance(cause, ValueError) and not str(cause).strip():
            raise ExerciseError(f"{call} raised a ValueError with no message.\nHint: say what is wrong, so that "
                                "whoever passed it can fix it: which value, and what is allowed.") from None
        if cause is not None and not isinstance(cause, ValueError):
            raise ExerciseError(f"{e}\nHint: a negative temperature should stop with a ValueError that names the "
                                "problem, before any computation.") from None
        if cause is None:
            raise
        return
    raise ExerciseError(f"{call} returned {type(got).__name__ if not isinstance(got, torch.Tensor) else got}, but "
                        "a negative temperature has no meaning: it must raise a ValueError.\nHint: dividing by a "
                        "negative number turns the ranking of the tokens upside down. Stop before any computation, "
                        "with a message that says which value is wrong and what is allowed.")


@_keeps_random_state
def check_temperature_probs(temperature_probs: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``temperature_probs(logits, tau) -> probabilities``, the
    temperature softmax over the last dimension of float32 ``logits``
    (``(V,)`` or ``(rows, V)``), against the rule charrnn's generator uses,
    at every temperature a user may ask for: below and above 1, tiny ones
    (logits near 30 at 0.001), huge ones, ``inf`` and 0 (greedy, as the
    generator is), with ties and banned tokens (logits of -inf, which keep
    probability 0), and a negative one, which must raise a ValueError. The
    answer is a floating-point tensor of the shape of ``logits``; the logits
    must be left as they were, and PyTorch's softmax may not be called."""
    cases = _temperature_cases()
    for logits, tau, about in cases:
        expected = _library_temperature_probs(logits, tau)
        given = logits.clone()
        shown = f"logits of shape {tuple(logits.shape)}, tau={tau}"
        call = f"temperature_probs({shown}) [{about}]"
        got = _call("temperature_probs", temperature_probs, given, tau, shown=shown)
        _expect_tensor(call, got, tuple(expected.shape), "the shape of the logits, one probability per token")
        _expect_unchanged(call, {"logits": given}, {"logits": logits})
        if not got.is_floating_point():
            raise ExerciseError(f"{call} returned a tensor of {got.dtype}: probabilities are floating-point "
                                "numbers, and the generator draws from floats only.")
        got_f = got.detach().float()
        if not torch.allclose(got_f, expected, atol=_tolerance(logits, tau), rtol=1e-4):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}\nfor logits\n{logits}"
                                f"{_temperature_hint(got_f, logits, tau, expected)}")
    _check_negative(temperature_probs)
    print(f"✓ temperature_probs is correct: {len(cases) + 1} cases agree with the rule charrnn's generator uses, "
          "edges included")


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

