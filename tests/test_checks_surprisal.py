"""charrnn.course.checks.check_surprisal_bits (notebook 06's exercise)."""

import math

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

from charrnn.course.checks import ExerciseError, check_surprisal_bits


def bits(logits, targets):
    return -torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0] / math.log(2)


def test_a_correct_answer_passes(capsys):
    check_surprisal_bits(bits)
    assert "✓ surprisal_bits is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda logits, t: bits(logits, t) * math.log(2), "nats"),
    (lambda logits, t: -bits(logits, t), "sign is flipped"),
    (lambda logits, t: torch.softmax(logits, -1).gather(1, t[:, None])[:, 0], "really came next"),
])
def test_usual_mistakes_get_a_hint(wrong, hint):
    with pytest.raises(ExerciseError, match=hint) as e:
        check_surprisal_bits(wrong)
    assert_no_solution_code(str(e.value))


def test_wrong_shape_is_rejected():
    with pytest.raises(ExerciseError, match="one value per position"):
        check_surprisal_bits(lambda logits, t: bits(logits, t).mean())


def test_student_version_of_notebook_06_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("06_inside_the_rnn.ipynb", "def surprisal_bits(", tmp_path)
    assert "not implemented yet" in message
