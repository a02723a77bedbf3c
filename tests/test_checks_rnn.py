"""charrnn.course.checks.check_rnn_layer (notebook 02's first exercise): it
accepts a recurrent layer that agrees with nn.RNN, outputs and gradients;
names each usual mistake in a hint that shows no code; refuses nn.RNN and
its kin while the student's function runs; and says "not implemented yet"
for the student stub."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_rnn_layer, nb02_rnn_cell


def rnn_step(e_t, h_prev, W_x, b_x, W_h, b_h):
    return torch.tanh(e_t @ W_x.T + b_x + h_prev @ W_h.T + b_h)


def layer(e, h0, W_x, b_x, W_h, b_h, *, ignore_h0=False, carry=True, time_dim=1, collect="after", stack_dim=1,
          cut=False, skip_first=False, add_h0=False, last="h_T", zeros_after_first=False):
    """A recurrent layer; each keyword puts one usual mistake in."""
    batch = e.shape[0]
    h = torch.zeros(batch, W_h.shape[0]) if h0 is None or ignore_h0 else h0
    first, outputs = h, [h] if add_h0 else []
    for t in range(1 if skip_first else 0, e.shape[time_dim]):
        e_t = e[:, t] if time_dim == 1 else e[t]
        read = h if carry else first
        read = torch.zeros_like(h) if zeros_after_first and t > 0 else read
        new = rnn_step(e_t, read.detach() if cut else read, W_x, b_x, W_h, b_h)
        outputs.append(h if collect == "before" else new)
        h = new
    output = torch.stack(outputs, dim=stack_dim)
    return output, {"h_T": h, "h_1": output[:, 0], "h_0": first, "layer axis": h[None]}[last]


def test_accepts_a_correct_layer(capsys):
    check_rnn_layer(layer)
    assert "✓ rnn_layer is correct: 5 cases agree with nn.RNN, outputs and gradients" in capsys.readouterr().out


def test_accepts_a_layer_that_writes_into_a_tensor_it_made(capsys):
    def preallocated(e, h0, W_x, b_x, W_h, b_h):
        output = e.new_zeros(e.shape[0], e.shape[1], W_h.shape[0])
        h = e.new_zeros(e.shape[0], W_h.shape[0]) if h0 is None else h0
        for t, e_t in enumerate(e.unbind(1)):
            h = rnn_step(e_t, h, W_x, b_x, W_h, b_h)
            output[:, t] = h
        return output, output[:, -1]
    check_rnn_layer(preallocated)
    assert "✓ rnn_layer is correct" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, needle", [
    ({"carry": False}, "every step reads the initial state"),
    ({"ignore_h0": True}, "starts from zeros, but this call gives h0"),
    ({"collect": "before"}, "the states before each step, h_0 to h_{T-1}"),
    ({"time_dim": 0}, "reads the time steps along dimension 0"),
    ({"stack_dim": 0}, "stacked (time, batch, hidden)"),
    ({"add_h0": True}, "one state more than there are steps"),
    ({"skip_first": True}, "one state fewer than there are steps"),
    ({"last": "h_1"}, "h_n is the state after the first step"),
    ({"last": "h_0"}, "h_n is the initial state"),
    ({"last": "layer axis"}, "nn.RNN's layout, with a layer axis in front"),
    ({"cut": True}, "the gradient stops at every step"),
])
def test_each_usual_mistake_gets_its_hint(mistake, needle):
    with pytest.raises(ExerciseError, match=r"rnn_layer\(e\(3, 3, 4\), h0\(3, 4\), W_x\(4, 4\)") as info:
        check_rnn_layer(lambda *args: layer(*args, **mistake))
    message = str(info.value)
    assert "Hint: " in message and needle in message, message
    assert_no_solution_code(message)


def test_h0_none_not_handled_is_named():
    def no_zeros(e, h0, W_x, b_x, W_h, b_h):
        h, outputs = h0, []
        for t in range(e.shape[1]):
            h = rnn_step(e[:, t], h, W_x, b_x, W_h, b_h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
    with pytest.raises(ExerciseError, match=r"rnn_layer\(e\(1, 4, 3\), h0=None, .* raised TypeError") as info:
        check_rnn_layer(no_zeros)
    assert "in this call h0 is None, which stands for the state of zeros" in str(info.value)
    assert "(batch, hidden_size) = (1, 5)" in str(info.value)
    assert_no_solution_code(str(info.value))


def test_a_shape_error_inside_gets_the_shapes_spelled_out():
    def along_batch(e, h0, W_x, b_x, W_h, b_h):  # the mistake in the fourth case only, batch 2 and time 5
        return layer(e, h0, W_x, b_x, W_h, b_h, time_dim=0 if e.shape[0] == 2 else 1)
    with pytest.raises(ExerciseError, match=r"rnn_layer\(e\(2, 5, 3\), h0\(2, 4\).* raised RuntimeError") as info:
        check_rnn_layer(along_batch)
    message = str(info.value)
    assert "e is (batch, time, input_size) = (2, 5, 3)" in message and "(batch, input_size) = (2, 3)" in message
    assert_no_solution_code(message)


def test_other_wrong_states_say_where_they_go_wrong():
    with pytest.raises(ExerciseError, match="returned output =") as info:
        check_rnn_layer(lambda *args: layer(*args, zeros_after_first=True))
    assert "output is right for the first 1 step(s) and wrong from step 2 on" in str(info.value)
    assert_no_solution_code(str(info.value))
    with pytest.raises(ExerciseError, match="returned output =") as info:
        check_rnn_layer(lambda e, *rest: layer(e.flip(1), *rest))  # the sequences read backwards
    assert "the state after the very first step, output[:, 0], is already wrong" in str(info.value)
    assert_no_solution_code(str(info.value))


def test_answers_cut_from_autograd_are_rejected():
    with pytest.raises(ExerciseError, match=r"\[output\] returned a tensor cut off from autograd"):
        check_rnn_layer(lambda *args: (layer(*args)[0].detach(), layer(*args)[1]))
    with pytest.raises(ExerciseError, match=r"\[h_n\] returned a tensor cut off from autograd"):
        check_rnn_layer(lambda *args: (layer(*args)[0], layer(*args)[1].detach()))

    def copied_into_a_cell(e, h0, W_x, b_x, W_h, b_h):
        cell = torch.nn.RNNCell(W_x.shape[1], W_x.shape[0])
        with torch.no_grad():
            for p, value in zip(cell.parameters(), (W_x, W_h, b_x, b_h), strict=True):
                p.copy_(value)
        h = e.new_zeros(e.shape[0], W_h.shape[0]) if h0 is None else h0
        outputs = []
        for t in range(e.shape[1]):
            h = cell(e[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
    with pytest.raises(ExerciseError, match="the gradient of a loss with respect to W_x is missing") as info:
        check_rnn_layer(copied_into_a_cell)
    assert "no gradient reaches W_x at all" in str(info.value)
    assert_no_solution_code(str(info.value))


def test_wrong_types_and_changed_inputs_are_reported():
    with pytest.raises(ExerciseError, match="returned NoneType; expected a pair"):
        check_rnn_layer(lambda *args: None)
    with pytest.raises(ExerciseError, match=r"(?s)\[output\] returned \[.*expected a torch tensor of shape"):
        check_rnn_layer(lambda *args: (list(layer(*args)[0].unbind(1)), layer(*args)[1]))

    def in_place(e, h0, W_x, b_x, W_h, b_h):
        e.data.mul_(2)  # through .data, past autograd's own guard
        return layer(e, h0, W_x, b_x, W_h, b_h)
    with pytest.raises(ExerciseError, match="changed its argument e in place"):
        check_rnn_layer(in_place)


@pytest.mark.parametrize("shortcut, refused", [
    (lambda e, h0, *w: torch.nn.RNN(w[0].shape[1], w[0].shape[0], batch_first=True)(e), "torch.nn.RNN"),
    (lambda e, h0, *w: charrnn.ScratchRNN(w[0].shape[1], w[0].shape[0])(e), "charrnn.layers.ScratchRNN"),
    (lambda e, h0, W_x, b_x, W_h, b_h: torch.rnn_tanh(e, torch.zeros(1, e.shape[0], W_h.shape[0]) if h0 is None
                                                      else h0[None], [W_x, W_h, b_x, b_h], True, 1, 0.0, False,
                                                      False, True), "torch.rnn_tanh"),
])
def test_ready_made_layers_are_refused(shortcut, refused):
    with pytest.raises(ExerciseError, match=f"rnn_layer called {refused}, which would do this exercise"):
        check_rnn_layer(shortcut)
    assert torch.nn.RNN.forward.__qualname__ == "RNN.forward"  # put back after the check


def test_the_hint_variants_without_a_mistake_are_nn_rnn():
    """The check names a mistake by computing it; with none, that computation
    must give nn.RNN's answer, or the hints would drift."""
    for seed, case in enumerate(nb02_rnn_cell._LAYER_CASES):
        args, rnn = nb02_rnn_cell._layer_case(*case, seed)
        output, h_n, _ = nb02_rnn_cell._reference(rnn, args)
        got_output, got_h_n = nb02_rnn_cell._layer_variant(*args)
        assert torch.allclose(got_output, output, atol=1e-6) and torch.allclose(got_h_n, h_n, atol=1e-6)


def test_not_implemented_says_so():
    def stub(*args):
        raise NotImplementedError("your turn")
    with pytest.raises(ExerciseError, match="rnn_layer is not implemented yet: replace the `raise "
                                            "NotImplementedError` in the cell above"):
        check_rnn_layer(stub)


def test_student_version_of_notebook_02_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("02_rnn_cell_from_scratch.ipynb", "def rnn_layer(", tmp_path)
    assert "rnn_layer is not implemented yet" in message
