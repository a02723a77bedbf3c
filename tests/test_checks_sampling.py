"""charrnn.course.checks.check_temperature_probs (notebook 05's exercise): it
accepts a temperature softmax written so that it holds at every edge (and
more than one way of writing it), names the usual mistakes (overflow at a
tiny temperature, one maximum for the whole batch, greedy at a tiny
temperature, ties shared or given to the last token at 0, banned tokens at
inf, dividing by 0, a negative temperature accepted, the wrong dimension,
multiplying by tau), refuses PyTorch's softmax and the library, and says
"not implemented yet" for the student stub."""

import math

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

from charrnn.course.checks import ExerciseError, check_temperature_probs

INF = float("inf")


def stable(logits, tau):
    """The formula, shifted by each row's maximum before dividing."""
    weights = ((logits - logits.max(-1, keepdim=True).values) / tau).exp()
    return weights / weights.sum(-1, keepdim=True)


def correct(logits, tau, finite=stable):
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if tau == 0:
        return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)
    if tau == INF:
        allowed = (logits > -INF).float()
        return allowed / allowed.sum(-1, keepdim=True)
    return finite(logits, tau)


def with_mistake(finite=None, greedy=None, infinite=None, negative=None):
    """``correct`` with one of its cases replaced by a mistake."""
    def answer(logits, tau):
        if tau < 0 and negative is not None:
            return negative(logits, tau)
        if tau == 0 and greedy is not None:
            return greedy(logits)
        if tau == INF and infinite is not None:
            return infinite(logits)
        if 0 < tau < INF and finite is not None:
            return finite(logits, tau)
        return correct(logits, tau)
    return answer


def naive(logits, tau):
    weights = (logits / tau).exp()
    return weights / weights.sum(-1, keepdim=True)


def test_a_correct_function_passes(capsys):
    check_temperature_probs(correct)
    assert "✓ temperature_probs is correct: 12 cases" in capsys.readouterr().out


@pytest.mark.parametrize("finite", [
    lambda logits, tau: (logits / tau - (logits / tau).logsumexp(-1, keepdim=True)).exp(),  # log-sum-exp after
    lambda logits, tau: stable(logits / tau, 1.0),                                          # divide, then shift
    lambda logits, tau: stable(logits.double(), tau).float(),                               # in float64
], ids=["log-sum-exp", "divide first", "float64"])
def test_other_stable_ways_pass(finite, capsys):
    check_temperature_probs(lambda logits, tau: correct(logits, tau, finite))
    assert "✓ temperature_probs is correct" in capsys.readouterr().out


def first_tie(logits):
    return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)


MISTAKES = [
    ("overflow", with_mistake(finite=naive), "float32's exp overflows"),
    ("one maximum for the batch", with_mistake(finite=lambda lg, t: naive(lg - lg.max(), t)),
     "Each row is its own distribution"),
    ("greedy at a tiny tau", with_mistake(finite=lambda lg, t: first_tie(lg) if t < 0.01 else stable(lg, t)),
     "only τ = 0 itself is greedy"),
    ("ties shared at 0", with_mistake(greedy=lambda lg: (lg == lg.max(-1, keepdim=True).values).float()
                                      / (lg == lg.max(-1, keepdim=True).values).sum(-1, keepdim=True)),
     "the first of the tied ones"),
    ("last of the ties at 0", with_mistake(greedy=lambda lg: first_tie(lg.flip(-1)).flip(-1)), "the last of the tied"),
    ("dividing by 0", with_mistake(greedy=lambda lg: stable(lg, 0.0)), "tau = 0 cannot be divided by"),
    ("nan at inf", with_mistake(infinite=lambda lg: stable(lg, INF)), "-inf / inf is nan"),
    ("banned tokens at inf", with_mistake(infinite=lambda lg: torch.full_like(lg, 1 / lg.shape[-1])),
     "the banned ones (logit -inf) included"),
    ("negative accepted", with_mistake(negative=lambda lg, t: stable(lg, -t)), "must raise a ValueError"),
    ("wrong dimension", with_mistake(finite=lambda lg, t: stable(lg.transpose(0, -1), t).transpose(0, -1)),
     "wrong dimension"),
    ("multiplying", with_mistake(finite=lambda lg, t: stable(lg * t, 1.0)), "multiplying the logits"),
    ("after the softmax", with_mistake(finite=lambda lg, t: stable(lg, 1.0) / t), "add up to 2"),
    ("no temperature", with_mistake(finite=lambda lg, t: stable(lg, 1.0)), "no temperature at all"),
    ("not normalised", with_mistake(finite=lambda lg, t: ((lg - lg.max(-1, keepdim=True).values) / t).exp()),
     "right ratios"),
]


@pytest.mark.parametrize("answer, hint", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_usual_mistake_is_named(answer, hint):
    with pytest.raises(ExerciseError) as info:
        check_temperature_probs(answer)
    assert hint in str(info.value)
    assert_no_solution_code(str(info.value))


def test_a_negative_tau_must_raise_a_value_error_with_a_message():
    def empty(logits, tau):
        if tau < 0:
            raise ValueError
        return correct(logits, tau)

    def wrong_type(logits, tau):
        if tau < 0:
            raise TypeError("no")
        return correct(logits, tau)

    with pytest.raises(ExerciseError, match="ValueError with no message"):
        check_temperature_probs(empty)
    with pytest.raises(ExerciseError, match="raised TypeError: no") as info:
        check_temperature_probs(wrong_type)
    assert "should stop with a ValueError" in str(info.value)


def test_a_banned_token_turned_nan_is_named_without_a_claim_about_overflow():
    def minus_the_minimum(logits, tau):  # -inf - (-inf) is nan
        if 0 < tau < INF:
            return stable(logits - logits.min(-1, keepdim=True).values, tau)
        return correct(logits, tau)
    with pytest.raises(ExerciseError, match="banned tokens") as info:
        check_temperature_probs(minus_the_minimum)
    assert "came out as nan" in str(info.value) and "overflows" not in str(info.value)


def test_an_integer_one_hot_is_not_a_probability():
    with pytest.raises(ExerciseError, match="floating-point"):
        check_temperature_probs(with_mistake(greedy=lambda lg: torch.nn.functional.one_hot(lg.argmax(-1),
                                                                                          lg.shape[-1])))


@pytest.mark.parametrize("softmax", [
    lambda z: torch.softmax(z, dim=-1), lambda z: z.softmax(-1), lambda z: torch.nn.functional.softmax(z, dim=-1),
    lambda z: z.log_softmax(-1).exp(), lambda z: torch.nn.Softmax(dim=-1)(z),
], ids=["torch.softmax", "Tensor.softmax", "F.softmax", "log_softmax", "nn.Softmax"])
def test_pytorchs_softmax_is_refused(softmax):
    with pytest.raises(ExerciseError, match="which would do this exercise for you"):
        check_temperature_probs(lambda logits, tau: correct(logits, tau, lambda lg, t: softmax(lg / t)))
    assert torch.softmax(torch.zeros(2), -1).tolist() == [0.5, 0.5]  # and works again afterwards


def test_the_library_is_refused_even_where_it_would_agree():
    # next_char_probs also zeroes the special tokens; on logits with those
    # ids (0, 1, 3) very negative it is the same temperature softmax, but the
    # exercise is to write it, so the check refuses it.
    def via_library(logits, tau):
        import charrnn
        padded = torch.cat([torch.full((*logits.shape[:-1], 4), -1e4), logits], -1)
        return charrnn.next_char_probs(padded, temperature=tau)[..., 4:]
    with pytest.raises(ExerciseError, match="next_char_probs, which would do this exercise for you"):
        check_temperature_probs(via_library)


def test_python_zero_division_is_reported_with_the_input():
    with pytest.raises(ExerciseError, match=r"tau=0.0\) raised ZeroDivisionError"):
        check_temperature_probs(with_mistake(greedy=lambda lg: stable(lg * (1 / 0.0), 1.0)))


def test_a_non_tensor_and_changing_the_logits_in_place_are_rejected():
    with pytest.raises(ExerciseError, match="expected a torch tensor"):
        check_temperature_probs(lambda logits, tau: correct(logits, tau).tolist())

    def in_place(logits, tau):
        return correct(logits.sub_(0.5), tau)
    with pytest.raises(ExerciseError, match="changed its logits"):
        check_temperature_probs(in_place)


def test_the_edges_the_exercise_asks_about_behave_as_the_notebook_says():
    """Questions 3 and 4 of the exercise: the formula as written overflows
    at logits near 30 and tau = 0.001, and -inf / inf and inf - inf are nan."""
    logits = torch.tensor([30.0, 29.0, 10.0])
    assert torch.isnan(naive(logits, 1e-3)).all()
    assert not torch.isfinite(torch.exp(torch.tensor(88.8))) and torch.isfinite(torch.exp(torch.tensor(88.7)))
    assert torch.exp(torch.tensor(-104.0)) == 0
    assert math.isnan(-INF / INF) and math.isnan(INF - INF)


def test_student_version_of_notebook_05_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("05_sampling.ipynb", "def temperature_probs(", tmp_path)
    assert "not implemented yet" in message
