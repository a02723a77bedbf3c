"""charrnn.course.checks.check_train_step (notebook 04's exercise): it accepts a
correct step, explains a step that forgets clipping or zeroing, and says
"not implemented yet" for the student stub."""

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_train_step


def step(model, optimizer, inputs, targets, clip, *, zero=True, clip_it=True, item=True):
    if zero:
        optimizer.zero_grad()
    logits, _ = model(inputs)
    loss = charrnn.masked_cross_entropy(logits, targets)
    loss.backward()
    if clip_it:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item() if item else loss


def test_a_correct_step_passes(capsys):
    check_train_step(step)
    assert "✓ train_step is correct" in capsys.readouterr().out


def test_forgetting_to_clip_is_named():
    with pytest.raises(ExerciseError, match="without clipping"):
        check_train_step(lambda *a: step(*a, clip_it=False))


def test_forgetting_to_zero_the_gradients_is_caught():
    with pytest.raises(ExerciseError, match="previous step leak") as e:
        check_train_step(lambda *a: step(*a, zero=False))
    assert_no_solution_code(str(e.value))


def test_returning_a_tensor_is_rejected():
    with pytest.raises(ExerciseError, match="Python float"):
        check_train_step(lambda *a: step(*a, item=False))


def test_student_version_of_notebook_04_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("04_training.ipynb", "def train_step(", tmp_path)
    assert "not implemented yet" in message
