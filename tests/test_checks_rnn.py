"""charrnn.course.checks.check_rnn_step (notebook 02's exercise): it accepts a
correct step, rejects the usual mistakes with a message that names them,
and says "not implemented yet" for the student stub."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_rnn_step


def correct(x_t, h_prev, W_x, b_x, W_h, b_h):
    return torch.tanh(x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h)


def test_accepts_a_correct_step(capsys):
    check_rnn_step(correct)
    assert "✓ rnn_step is correct" in capsys.readouterr().out


def test_accepts_the_library_cell(capsys):
    def via_cell(x_t, h_prev, W_x, b_x, W_h, b_h):
        cell = charrnn.RNNCell(W_x.shape[1], W_x.shape[0])
        with torch.no_grad():
            cell.input_to_hidden.weight.copy_(W_x)
            cell.input_to_hidden.bias.copy_(b_x)
            cell.hidden_to_hidden.weight.copy_(W_h)
            cell.hidden_to_hidden.bias.copy_(b_h)
        # F.linear keeps the graph to the given tensors (the cell's copies would not)
        return torch.tanh(torch.nn.functional.linear(x_t, W_x, b_x) + torch.nn.functional.linear(h_prev, W_h, b_h))
    check_rnn_step(via_cell)
    assert "✓ rnn_step is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, needle", [
    (lambda x, h, Wx, bx, Wh, bh: x @ Wx.T + bx + h @ Wh.T + bh, "no nonlinearity"),
    (lambda x, h, Wx, bx, Wh, bh: torch.sigmoid(x @ Wx.T + bx + h @ Wh.T + bh), "looks like a sigmoid"),
    (lambda x, h, Wx, bx, Wh, bh: torch.relu(x @ Wx.T + bx + h @ Wh.T + bh), "looks like a relu"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + h @ Wh.T + bh), "but the input's bias"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + h @ Wh.T), "but the hidden state's bias"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + h @ Wh.T), "both biases are missing"),
    (lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx.T + bx + bh), "previous state never enters"),
])
def test_wrong_math_is_rejected_with_a_hint(wrong, needle):
    with pytest.raises(ExerciseError, match=r"rnn_step\(x_t\(") as e:
        check_rnn_step(wrong)
    msg = str(e.value)
    assert "returned" in msg and "expected" in msg and needle in msg
    assert "tanh(" not in msg  # the formula is the exercise: the message does not spell it out
    assert_no_solution_code(msg)


def test_untransposed_weights_are_told_about_shapes():
    with pytest.raises(ExerciseError, match="raised RuntimeError") as e:
        check_rnn_step(lambda x, h, Wx, bx, Wh, bh: torch.tanh(x @ Wx + bx + h @ Wh + bh))
    assert "(hidden_size, input_size)" in str(e.value) and "shape of each product" in str(e.value)
    assert_no_solution_code(str(e.value))


def test_wrong_shape_and_type_are_rejected():
    with pytest.raises(ExerciseError, match="returned shape"):
        check_rnn_step(lambda *args: correct(*args)[None])
    with pytest.raises(ExerciseError, match="expected a torch tensor"):
        check_rnn_step(lambda *args: correct(*args).tolist())


def test_detached_answer_is_rejected():
    with pytest.raises(ExerciseError, match="cut off from autograd"):
        check_rnn_step(lambda *args: correct(*args).detach())


def test_not_implemented_says_so():
    def stub(*args):
        raise NotImplementedError("your turn")
    with pytest.raises(ExerciseError, match="rnn_step is not implemented yet: replace the `raise "
                                            "NotImplementedError` in the cell above"):
        check_rnn_step(stub)


def test_student_version_of_notebook_02_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("02_rnn_cell_from_scratch.ipynb", "def rnn_step(", tmp_path)
    assert "not implemented yet" in message
