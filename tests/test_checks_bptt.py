"""charrnn.course.checks.check_rnn_backward (notebook 02's backward pass
through time by hand): it accepts the right gradients, names each usual
mistake in a hint that shows no code, refuses autograd while the student's
function runs, and says "not implemented yet" for the student stub."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

from charrnn.course.checks import ExerciseError, check_rnn_backward, nb02_rnn_cell


def bptt(e, h0, h, W_h, dh, derivative="h_t", carry=True, carry_transposed=False, outer_transposed=False,
         add=True, W_h_reads="h_prev", dh0="one more step"):
    """A hand-written backward pass; each keyword puts one usual mistake in."""
    T, H = e.shape[1], W_h.shape[0]
    dW_x = e.new_zeros(e.shape[2], H) if outer_transposed else e.new_zeros(H, e.shape[2])
    dW_h, db = torch.zeros_like(W_h), e.new_zeros(H)
    from_later = torch.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        h_prev = h[:, t - 1] if t > 0 else h0
        delta = dh[:, t] + from_later if carry else dh[:, t]
        slope = {"h_t": 1 - h[:, t] ** 2, "none": 1.0, "h_prev": 1 - h_prev ** 2}[derivative]
        g = delta * slope
        read = h_prev if W_h_reads == "h_prev" else h[:, t]
        step = ((e[:, t].T @ g, read.T @ g, g.sum(0)) if outer_transposed else (g.T @ e[:, t], g.T @ read, g.sum(0)))
        if add:
            dW_x, dW_h, db = dW_x + step[0], dW_h + step[1], db + step[2]
        else:
            dW_x, dW_h, db = step
        from_later = g @ (W_h.T if carry_transposed else W_h)
    return dW_x, db, dW_h, db.clone(), from_later if dh0 == "one more step" else delta


def test_the_right_gradients_pass(capsys):
    check_rnn_backward(bptt)
    assert "✓ rnn_backward is correct: 5 cases agree with autograd" in capsys.readouterr().out


def test_a_list_and_a_gradient_computed_in_another_order_pass(capsys):
    def batched(e, h0, h, W_h, dh):
        # every delta first, then the weight gradients as sums over all steps at once
        deltas, from_later = [], torch.zeros_like(h0)
        for t in reversed(range(e.shape[1])):
            g = (dh[:, t] + from_later) * (1 - h[:, t] ** 2)
            deltas.insert(0, g)
            from_later = g @ W_h
        g = torch.stack(deltas, dim=1)                           # (batch, time, hidden)
        h_prev = torch.cat([h0[:, None], h[:, :-1]], dim=1)
        return [torch.einsum("bth,bte->he", g, e), g.sum((0, 1)), torch.einsum("bth,btk->hk", g, h_prev),
                g.sum((0, 1)), from_later]
    check_rnn_backward(batched)
    assert "✓ rnn_backward is correct" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, needle", [
    ({"derivative": "none"}, "the derivative of the tanh is missing"),
    ({"derivative": "h_prev"}, "the derivative of the tanh is taken at the wrong state"),
    ({"add": False}, "the contribution of step 1 alone"),
    ({"carry": False}, "only the direct gradient dh at step t"),
    ({"carry_transposed": True}, "through W_h the wrong way round"),
    ({"W_h_reads": "h_t"}, "dW_h matches the products with h_t"),
    ({"dh0": "delta_1"}, "dh0 matches delta_1"),
])
def test_each_usual_mistake_gets_its_hint(mistake, needle):
    with pytest.raises(ExerciseError, match=r"rnn_backward\(e\(2, 4, 3\), h0") as info:
        check_rnn_backward(lambda *args: bptt(*args, **mistake))
    message = str(info.value)
    assert "expected" in message and "Hint: " in message and needle in message, message
    assert_no_solution_code(message)


def test_only_the_last_step_gets_its_hint():
    def last_step_only(e, h0, h, W_h, dh):
        right = bptt(e, h0, h, W_h, dh)
        g = dh[:, -1] * (1 - h[:, -1] ** 2)  # step T: nothing comes back from later steps
        h_prev = h[:, -2] if e.shape[1] > 1 else h0
        return g.T @ e[:, -1], g.sum(0), g.T @ h_prev, g.sum(0), right[4]
    with pytest.raises(ExerciseError, match="the contribution of the last step T alone") as info:
        check_rnn_backward(last_step_only)
    assert_no_solution_code(str(info.value))


def test_transposed_gradients_are_told_about_orientation():
    # W_x of the first case is 5 x 3: the transposed gradient has the wrong shape
    with pytest.raises(ExerciseError, match=r"returned dW_x of shape \(3, 5\), expected \(5, 3\)") as info:
        check_rnn_backward(lambda *args: bptt(*args, outer_transposed=True))
    assert "it matches the right gradient transposed" in str(info.value)
    assert_no_solution_code(str(info.value))

    # W_h is square, so only the numbers tell
    def dW_h_transposed(*args):
        dW_x, db_x, dW_h, db_h, dh0 = bptt(*args)
        return dW_x, db_x, dW_h.T.contiguous(), db_h, dh0
    with pytest.raises(ExerciseError, match="returned dW_h =") as info:
        check_rnn_backward(dW_h_transposed)
    assert "it matches the right gradient transposed" in str(info.value)
    assert_no_solution_code(str(info.value))


def test_a_shape_error_inside_gets_the_shapes_spelled_out():
    def wrong_product(e, h0, h, W_h, dh):
        g = dh[:, -1]
        return g @ e[:, -1], g, g, g, g  # (2, 5) @ (2, 3) cannot be multiplied
    with pytest.raises(ExerciseError, match="raised RuntimeError") as info:
        check_rnn_backward(wrong_product)
    assert "(batch, input_size) = (2, 3)" in str(info.value) and "shape of every factor" in str(info.value)
    assert_no_solution_code(str(info.value))


def test_float32_accumulators_wrong_results_and_changed_inputs_are_reported():
    def float32(e, h0, h, W_h, dh):
        dW_x, *rest = bptt(e, h0, h, W_h, dh)
        return (dW_x.float(), *rest)
    with pytest.raises(ExerciseError, match="returned dW_x as torch.float32") as info:
        check_rnn_backward(float32)
    assert "create yours with the dtype of the tensors you were given" in str(info.value)
    with pytest.raises(ExerciseError, match="expected a tuple of five tensors"):
        check_rnn_backward(lambda *args: bptt(*args)[:4])
    with pytest.raises(ExerciseError, match=r"\[db_h\] returned shape"):
        check_rnn_backward(lambda *args: (*bptt(*args)[:3], torch.zeros(2, 5, dtype=torch.float64), bptt(*args)[4]))

    def in_place(e, h0, h, W_h, dh):
        out = bptt(e, h0, h, W_h, dh)
        dh.zero_()  # e.g. the carried delta added into dh itself
        return out
    with pytest.raises(ExerciseError, match="changed its argument dh in place"):
        check_rnn_backward(in_place)


def test_zero_dh0_is_named():
    with pytest.raises(ExerciseError, match="dh0 is zero, but h_0 is the state that step 1 reads"):
        check_rnn_backward(lambda *args: (*bptt(*args)[:4], torch.zeros_like(args[1])))


def via_autograd(e, h0, h, W_h, dh, backward=False):
    """Autograd on a rebuilt forward pass: W_x and the biases are not given,
    but the pre-activations can be recovered from the states, so this would
    give the right answer if autograd were allowed."""
    H, E = W_h.shape[0], e.shape[2]
    W_x = e.new_zeros(H, E, requires_grad=True)
    b = e.new_zeros(H, requires_grad=True)
    W = W_h.clone().requires_grad_(True)
    start = h0.clone().requires_grad_(True)
    state, states = start, []
    for t in range(e.shape[1]):
        h_prev = h[:, t - 1] if t > 0 else h0
        rest = (torch.atanh(h[:, t]) - h_prev @ W_h.T).detach()  # e_t W_x^T + b_x + b_h, as numbers
        state = torch.tanh(e[:, t] @ W_x.T + b + state @ W.T + rest)
        states.append(state)
    loss = (torch.stack(states, dim=1) * dh).sum()
    if backward:
        loss.backward()
        dW_x, db, dW_h, dh0 = W_x.grad, b.grad, W.grad, start.grad
    else:
        dW_x, db, dW_h, dh0 = torch.autograd.grad(loss, (W_x, b, W, start))
    return dW_x, db, dW_h, db.clone(), dh0


@pytest.mark.parametrize("backward, refused", [(False, "torch.autograd.grad"), (True, "torch.Tensor.backward")])
def test_autograd_is_refused_while_the_function_runs(backward, refused):
    args, expected = nb02_rnn_cell._bptt_case(2, 4, 3, 5, 0)
    got = via_autograd(*args, backward=backward)  # outside the check, the shortcut works
    assert all(torch.allclose(a, b) for a, b in zip(got, expected))
    with pytest.raises(ExerciseError, match=f"{refused}, which would do this exercise for you") as info:
        check_rnn_backward(lambda *a: via_autograd(*a, backward=backward))
    assert "Traceback" not in str(info.value)
    assert torch.autograd.grad is not None and torch.autograd.grad.__module__ == "torch.autograd"  # put back


def test_the_hint_variants_without_a_mistake_are_the_reference():
    """The check names a mistake by computing it; with none, that computation
    must give autograd's answer, or the hints would drift."""
    for seed, case in enumerate(nb02_rnn_cell._BPTT_CASES):
        args, expected = nb02_rnn_cell._bptt_case(*case, seed)
        for got, want in zip(nb02_rnn_cell._bptt_variant(*args), expected):
            assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_not_implemented_says_so():
    def stub(*args):
        raise NotImplementedError("your turn")
    with pytest.raises(ExerciseError, match="rnn_backward is not implemented yet: replace the `raise "
                                            "NotImplementedError` in the cell above"):
        check_rnn_backward(stub)


def test_student_version_of_notebook_02_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("02_rnn_cell_from_scratch.ipynb", "def rnn_backward(", tmp_path)
    assert "rnn_backward is not implemented yet" in message
