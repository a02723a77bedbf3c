"""The LSTM-cell-from-scratch check: the equations pass (outputs and
gradients), five usual mistakes get their own hint (never the code),
nn.LSTMCell is refused, and a detached answer is caught."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code

from charrnn.course.checks import ExerciseError, check_lstm_step


def lstm(e, h, c, W_ih, b_ih, W_hh, b_hh, order=(0, 1, 2, 3), candidate=torch.tanh, squash=torch.tanh,
         forget=True, swap=False):
    blocks = (e @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=-1)
    i, f, g, o = (blocks[k] for k in order)
    c_t = (torch.sigmoid(f) * c if forget else c) + torch.sigmoid(i) * candidate(g)
    h_t = torch.sigmoid(o) * squash(c_t)
    return (c_t, h_t) if swap else (h_t, c_t)


def test_the_equations_pass(capsys):
    check_lstm_step(lstm)
    assert "✓ lstm_step is correct" in capsys.readouterr().out


@pytest.mark.parametrize("options, hint", [
    ({"candidate": torch.sigmoid}, "went through a sigmoid"),
    ({"squash": lambda x: x}, "squashed before the output gate"),
    ({"forget": False}, "forget gate"),
    ({"order": (1, 0, 3, 2)}, "wrong blocks of rows"),
    ({"swap": True}, "came back swapped"),
])
def test_usual_mistakes_get_their_hint(options, hint):
    with pytest.raises(ExerciseError, match=hint) as info:
        check_lstm_step(lambda *args: lstm(*args, **options))
    assert_no_solution_code(str(info.value))


def test_torch_lstm_cell_is_refused():
    def via_torch(e, h, c, W_ih, b_ih, W_hh, b_hh):
        return torch.nn.LSTMCell(W_ih.shape[1], W_hh.shape[1])(e, (h, c))
    with pytest.raises(ExerciseError, match="LSTMCell, which would do this exercise for you"):
        check_lstm_step(via_torch)


def test_a_detached_answer_is_caught():
    with pytest.raises(ExerciseError, match="cut off from autograd"):
        check_lstm_step(lambda *args: tuple(t.detach() for t in lstm(*args)))


def test_student_version_of_notebook_03_reports_not_implemented(tmp_path):
    from helpers import student_check_cell_fails

    assert "not implemented yet" in student_check_cell_fails("03_the_language_model.ipynb", "def lstm_step(", tmp_path)
