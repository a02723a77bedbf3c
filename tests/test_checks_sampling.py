"""charrnn.course.checks.check_temperature_probs (notebook 05's exercise): it accepts
the temperature softmax, names the usual mistakes (multiplying by tau,
dividing by tau = 0, no temperature at all), and says "not implemented yet"
for the student stub."""

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

from charrnn.course.checks import ExerciseError, check_temperature_probs


def correct(logits, tau):
    if tau == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    return torch.softmax(logits / tau, dim=-1)


def test_a_correct_function_passes(capsys):
    check_temperature_probs(correct)
    assert "✓ temperature_probs is correct" in capsys.readouterr().out


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


def test_multiplying_by_tau_is_named():
    with pytest.raises(ExerciseError, match="multiplying the logits by the temperature") as e:
        check_temperature_probs(lambda logits, tau: torch.softmax(logits * tau, dim=-1))
    assert_no_solution_code(str(e.value))


def test_ignoring_tau_is_named():
    with pytest.raises(ExerciseError, match="no temperature at all"):
        check_temperature_probs(lambda logits, tau: torch.softmax(logits, dim=-1))


def test_dividing_by_zero_at_tau_0_gets_the_greedy_hint():
    with pytest.raises(ExerciseError, match="tau=0.0") as info:
        check_temperature_probs(lambda logits, tau: torch.softmax(logits / tau, dim=-1))
    assert "one-hot" in str(info.value) and "nan" in str(info.value)


def test_python_zero_division_is_reported_with_the_input():
    with pytest.raises(ExerciseError, match=r"tau=0.0\) raised ZeroDivisionError"):
        check_temperature_probs(lambda logits, tau: torch.softmax(logits * (1 / tau), dim=-1))


def test_a_wrong_dimension_and_a_non_tensor_are_rejected():
    with pytest.raises(ExerciseError, match="wrong dimension"):
        check_temperature_probs(lambda logits, tau: correct(logits, tau) if logits.dim() == 1 or tau == 0
                                else torch.softmax(logits / tau, dim=0))
    with pytest.raises(ExerciseError, match="expected a torch tensor"):
        check_temperature_probs(lambda logits, tau: correct(logits, tau).tolist())


def test_changing_the_logits_in_place_is_rejected():
    def in_place(logits, tau):
        return torch.softmax(logits.div_(tau), dim=-1)
    with pytest.raises(ExerciseError, match="changed its logits"):
        check_temperature_probs(in_place)


def test_student_version_of_notebook_05_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("05_sampling.ipynb", "def temperature_probs(", tmp_path)
    assert "not implemented yet" in message


def test_temperature_after_the_softmax_is_named():
    with pytest.raises(ExerciseError, match="applied after the softmax") as e:
        check_temperature_probs(lambda logits, tau: torch.softmax(logits, dim=-1) / tau if tau else
                                torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float())
    assert "add up to 2" in str(e.value)
    assert_no_solution_code(str(e.value))
