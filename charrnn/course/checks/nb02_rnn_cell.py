"""Notebook 02's exercises: ``rnn_step``, one step of the RNN cell written
from its formula, checked against :class:`charrnn.RNNCell` with the same
weights; and ``rnn_backward``, backpropagation through time by hand, checked
against autograd through :class:`charrnn.ScratchRNN`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...layers import RNNCell, ScratchRNN
from .common import ExerciseError, _call, _expect_on_graph, _expect_tensor, _expect_unchanged, _keeps_random_state

__all__ = ["check_rnn_backward", "check_rnn_step"]

# (batch, input_size, hidden_size): square and non-square weights, batch of one
_RNN_STEP_SHAPES = ((2, 3, 4), (1, 5, 2), (3, 4, 4), (4, 1, 6))
_ARGUMENTS = ("x_t", "h_prev", "W_x", "b_x", "W_h", "b_h")


def _rnn_step_case(batch: int, input_size: int, hidden_size: int, seed: int):
    """Inputs of one case, and the reference answer from :class:`RNNCell`."""
    gen = torch.Generator().manual_seed(seed)
    cell = RNNCell(input_size, hidden_size)
    with torch.no_grad():  # the cell's own init, but drawn from this case's generator
        for p in cell.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)
    x_t = torch.randn(batch, input_size, generator=gen)
    h_prev = torch.randn(batch, hidden_size, generator=gen).tanh()
    args = (x_t, h_prev, cell.input_to_hidden.weight.detach().clone(), cell.input_to_hidden.bias.detach().clone(),
            cell.hidden_to_hidden.weight.detach().clone(), cell.hidden_to_hidden.bias.detach().clone())
    with torch.no_grad():
        expected = cell(x_t, h_prev)
    return args, expected


def _rnn_step_hint(got: torch.Tensor, args) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    x_t, h_prev, W_x, b_x, W_h, b_h = args
    pre = x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h
    candidates = [
        (pre, "it matches the sum with no nonlinearity: h_t must lie in (-1, 1). What squashes it there?"),
        (torch.sigmoid(pre), "it looks like a sigmoid, whose values lie in (0, 1): which nonlinearity does "
                             "the formula use, and what is its range?"),
        (torch.relu(pre), "it looks like a relu, which is never negative: which nonlinearity does the formula "
                          "use?"),
        (torch.tanh(pre - b_x), "everything is there but the input's bias: count the terms of the formula."),
        (torch.tanh(pre - b_h), "everything is there but the hidden state's bias: count the terms of the formula."),
        (torch.tanh(pre - b_x - b_h), "both biases are missing: count the terms of the formula."),
        (torch.tanh(x_t @ W_x.T + b_x + b_h), "the previous state never enters the step: without it, what "
                                              "would the cell remember?"),
    ]
    if W_x.shape[0] == W_x.shape[1]:
        candidates.append((torch.tanh(x_t @ W_x + b_x + h_prev @ W_h + b_h),
                           "it matches the products with the weight matrices the wrong way round: the weights "
                           "are stored as nn.Linear stores them, (out_features, in_features). With square "
                           "matrices the shapes fit either way, so check the formula's transposes."))
    for value, hint in candidates:
        if value.shape == got.shape and torch.allclose(got, value, atol=1e-5):
            return "\nHint: " + hint
    return ""


def _call_rnn_step(rnn_step: Callable, call: str, given: list[torch.Tensor], args, expected: torch.Tensor):
    """The student's answer; a shape error from inside it gets the shapes
    of the weights spelled out, the usual cause."""
    try:
        return _call("rnn_step", rnn_step, *given, shown=call[len("rnn_step("):-1])
    except ExerciseError as e:
        cause = e.__cause__
        if isinstance(cause, RuntimeError) and ("shape" in str(cause) or "size" in str(cause)):
            raise ExerciseError(
                f"{e}\nHint: W_x has shape (hidden_size, input_size) = {tuple(args[2].shape)} and W_h "
                f"(hidden_size, hidden_size), as nn.Linear stores them, and x_t is (batch, input_size). "
                f"Write down the shape of each product: the result must be (batch, hidden_size) = "
                f"{tuple(expected.shape)}.") from e.__cause__
        raise


@_keeps_random_state
def check_rnn_step(rnn_step: Callable[..., torch.Tensor]) -> None:
    """Check ``rnn_step(x_t, h_prev, W_x, b_x, W_h, b_h) -> h_t`` against
    :class:`charrnn.RNNCell`.

    The step of notebook 02's formula (in math there, not repeated in code
    here: ``help()`` is open to students), with ``x_t`` of
    shape ``(batch, input_size)``, ``h_prev`` and ``h_t`` of shape
    ``(batch, hidden_size)``, ``W_x`` of shape ``(hidden_size, input_size)``
    and ``W_h`` of shape ``(hidden_size, hidden_size)`` (as ``nn.Linear`` and
    ``nn.RNN`` store them), ``b_x`` and ``b_h`` of shape ``(hidden_size,)``.
    The answer must stay on the autograd graph (no ``.detach()``, ``.numpy()``,
    ``.data``): backpropagation through time needs it. The inputs must be left
    as they were.
    """
    for seed, (batch, input_size, hidden_size) in enumerate(_RNN_STEP_SHAPES):
        args, expected = _rnn_step_case(batch, input_size, hidden_size, seed)
        originals = {f"argument {name}": a.clone() for name, a in zip(_ARGUMENTS, args, strict=True)}
        given = [a.clone().requires_grad_(True) for a in args]
        call = (f"rnn_step(x_t{tuple(args[0].shape)}, h_prev{tuple(args[1].shape)}, W_x{tuple(args[2].shape)}, "
                f"b_x{tuple(args[3].shape)}, W_h{tuple(args[4].shape)}, b_h{tuple(args[5].shape)})")
        got = _call_rnn_step(rnn_step, call, given, args, expected)
        _expect_tensor(call, got, tuple(expected.shape),
                       "(batch, hidden_size), one new hidden state per row of the batch")
        _expect_on_graph(call, got, "no gradient can flow back through it")
        _expect_unchanged(call, dict(zip(originals, given, strict=True)), originals)
        got_f = got.detach().to(expected.dtype)
        if not torch.allclose(got_f, expected, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}{_rnn_step_hint(got_f, args)}")
    print(f"✓ rnn_step is correct: {len(_RNN_STEP_SHAPES)} cases agree with charrnn.RNNCell")


# ------------------------------------------------------- backward through time
# (batch, time, input_size, hidden_size): a square W_x (transposes fit either way), a batch of one,
# one step only (nothing to carry)
_BPTT_CASES = ((2, 4, 3, 5), (1, 5, 4, 4), (3, 3, 2, 6), (4, 6, 5, 3), (2, 1, 3, 4))
_BPTT_ARGUMENTS = ("x", "h0", "h", "W_h", "dh")
_BPTT_RESULTS = ("dW_x", "db_x", "dW_h", "db_h", "dh0")


def _bptt_case(batch: int, time: int, input_size: int, hidden_size: int, seed: int):
    """The arguments of one case (a forward pass of :class:`ScratchRNN` in
    float64) and the reference gradients, from autograd through that layer."""
    gen = torch.Generator().manual_seed(200 + seed)
    layer = ScratchRNN(input_size, hidden_size).double()
    cell = layer.cells[0]
    with torch.no_grad():  # weights of order one, so that the tanh neither saturates nor stays linear
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.6)
    x = torch.randn(batch, time, input_size, generator=gen, dtype=torch.float64)
    h0 = torch.randn(batch, hidden_size, generator=gen, dtype=torch.float64).tanh().requires_grad_(True)
    dh = torch.randn(batch, time, hidden_size, generator=gen, dtype=torch.float64)
    h, _ = layer(x, h0[None])
    params = (cell.input_to_hidden.weight, cell.input_to_hidden.bias,
              cell.hidden_to_hidden.weight, cell.hidden_to_hidden.bias, h0)
    expected = torch.autograd.grad((h * dh).sum(), params)  # dL/dh_t = dh[:, t] for the loss sum_t <h_t, dh_t>
    args = (x, h0.detach(), h.detach(), cell.hidden_to_hidden.weight.detach().clone(), dh)
    return args, expected


def _bptt_variant(x, h0, h, W_h, dh, *, derivative: str = "h_t", carry: str = "W_h", outer: str = "right",
                  keep: str = "every step", W_h_reads: str = "h_prev", dh0: str = "one more step"):
    """What a hand-written backward pass returns with one of the usual
    mistakes in it (the defaults make none), to name the mistake a wrong
    answer matches."""
    time = x.shape[1]
    grads = None
    delta_next = torch.zeros_like(h0)  # what step t+1 sends back to h_t
    delta = None
    for t in reversed(range(time)):
        h_prev = h[:, t - 1] if t > 0 else h0
        delta = dh[:, t] + delta_next
        g = delta * {"h_t": 1 - h[:, t] ** 2, "none": 1, "h_prev": 1 - h_prev ** 2}[derivative]
        reads = h_prev if W_h_reads == "h_prev" else h[:, t]
        parts = [g.T @ x[:, t], g.sum(0), g.T @ reads, g.sum(0)]
        if outer == "transposed":
            parts[0], parts[2] = x[:, t].T @ g, reads.T @ g
        if keep == "every step" and grads is not None:
            grads = [a + b for a, b in zip(grads, parts, strict=True)]
        elif grads is None or keep == "the last step visited":  # "step T": only the first step visited
            grads = parts
        delta_next = {"W_h": g @ W_h, "W_h_T": g @ W_h.T, "none": torch.zeros_like(h0)}[carry]
    return (*grads, delta_next if dh0 == "one more step" else delta)


_BPTT_MISTAKES = (
    ({"derivative": "none"}, "the derivative of the tanh is missing. Each step back passes through the tanh before "
                             "it reaches the weights and h_{t-1}; section 4 writes that derivative with h_t. Where "
                             "does that factor enter each step?"),
    ({"derivative": "h_prev"}, "the derivative of the tanh is taken at the wrong state. Which state did the tanh "
                               "of step t produce?"),
    ({"outer": "transposed"}, "it matches the right gradient transposed. A gradient has the shape of its weight, "
                              "(out_features, in_features): one row per hidden unit. In each step's product of "
                              "two factors, which one has the hidden units, and so comes first?"),
    ({"keep": "step T"}, "it matches the contribution of the last step T alone. The same weights are used at every "
                         "step, so their gradient is a sum with one term per step."),
    ({"keep": "the last step visited"}, "it matches the contribution of step 1 alone, the last step your loop "
                                        "visits: each step replaced the gradient instead of adding to it. The "
                                        "same weights are used at every step, so their gradient is a sum with one "
                                        "term per step."),
    ({"carry": "none"}, "it matches a delta_t that holds only the direct gradient dh at step t. The loss also "
                        "depends on h_t through h_{t+1}, h_{t+2}, ...: what does the recursion of section 4 carry "
                        "back from step t+1?"),
    ({"carry": "W_h_T"}, "it matches carrying the gradient back through W_h the wrong way round. In the forward "
                         "step h_{t-1} is multiplied by the transpose of W_h; compare the recursion of section 4, "
                         "then check the orientation with a non-symmetric W_h."),
    ({"W_h_reads": "h_t"}, "dW_h matches the products with h_t, the state that step t produces. W_h multiplies the "
                           "state the step reads: which one is it, and what is it at the first step?"),
    ({"dh0": "delta_1"}, "dh0 matches delta_1, the gradient with respect to h_1. h_0 is one step further back: "
                         "take that step too."),
)


def _bptt_hint(name: str, got: torch.Tensor, args, expected: tuple[torch.Tensor, ...]) -> str:
    """The usual mistake that gives this wrong value of result ``name``."""
    index = _BPTT_RESULTS.index(name)
    if name == "dh0" and not got.any():
        return ("\nHint: dh0 is zero, but h_0 is the state that step 1 reads, so the loss depends on it through "
                "W_h.")
    for options, hint in _BPTT_MISTAKES:
        value = _bptt_variant(*args, **options)[index]
        if value.shape == got.shape and not torch.allclose(value, expected[index]) and torch.allclose(got, value):
            return "\nHint: " + hint
    if name in ("dW_x", "dW_h") and torch.allclose(got, expected[index].T):
        return "\nHint: " + _BPTT_MISTAKES[2][1]
    return ""


def _check_bptt_result(call: str, name: str, got, want: torch.Tensor, args, expected) -> None:
    meaning = {"dW_x": "the shape of W_x, (hidden_size, input_size)", "dW_h": "the shape of W_h",
               "db_x": "the shape of b_x, (hidden_size,)", "db_h": "the shape of b_h, (hidden_size,)",
               "dh0": "the shape of h0, (batch, hidden_size)"}[name]
    if isinstance(got, torch.Tensor) and got.ndim == 2 and tuple(got.shape) == tuple(want.shape)[::-1] != tuple(
            want.shape):
        raise ExerciseError(f"{call} returned {name} of shape {tuple(got.shape)}, expected {tuple(want.shape)}: "
                            f"{meaning}.\nHint: {_BPTT_MISTAKES[2][1]}")
    _expect_tensor(f"{call} [{name}]", got, tuple(want.shape), meaning)
    if got.dtype != torch.float64:
        raise ExerciseError(f"{call} returned {name} as {got.dtype}, but every argument is torch.float64 (double "
                            "precision), and the check compares to a relative 1e-7.\nHint: a tensor created without "
                            "a dtype is float32; create yours with the dtype of the tensors you were given.")
    if not torch.allclose(got.detach(), want, rtol=1e-7, atol=1e-9):
        raise ExerciseError(f"{call} returned {name} =\n{got.detach()}\nexpected\n{want}"
                            f"{_bptt_hint(name, got.detach(), args, expected)}")


def _call_rnn_backward(rnn_backward: Callable, call: str, given: list[torch.Tensor], args):
    """The student's gradients; a shape error from inside gets the shapes
    spelled out."""
    try:
        return _call("rnn_backward", rnn_backward, *given, shown=call[len("rnn_backward("):-1])
    except ExerciseError as e:
        cause = e.__cause__
        if isinstance(cause, RuntimeError) and ("shape" in str(cause) or "size" in str(cause)):
            x, _, _, W_h, _ = args
            raise ExerciseError(
                f"{e}\nHint: write down the shape of every factor. One step of x is (batch, input_size) = "
                f"{(x.shape[0], x.shape[2])}, one step of h and delta are (batch, hidden_size) = "
                f"{(x.shape[0], W_h.shape[0])}, and each gradient has the shape of what it is the gradient "
                "of.") from e.__cause__
        raise


@_keeps_random_state
def check_rnn_backward(rnn_backward: Callable[..., tuple[torch.Tensor, ...]]) -> None:
    """Check ``rnn_backward(x, h0, h, W_h, dh) -> (dW_x, db_x, dW_h, db_h,
    dh0)``, backpropagation through time by hand, against autograd through
    :class:`charrnn.ScratchRNN`.

    ``x`` is ``(batch, time, input_size)``; ``h`` ``(batch, time,
    hidden_size)`` holds the states the forward pass produced, ``h[:, t]``
    after reading ``x[:, t]``; ``h0`` ``(batch, hidden_size)`` is the state
    before the first step; ``W_h`` is ``(hidden_size, hidden_size)``; ``dh``
    (like ``h``) is the gradient that reaches each state directly from the
    loss, not through later states. The answer is the gradient of the loss
    with respect to ``W_x``, ``b_x``, ``W_h``, ``b_h`` and ``h0``, each with the
    shape of what it is the gradient of. Everything is float64, so the
    comparison is tight; autograd is refused while the function runs, and the
    arguments must be left as they were.
    """
    for seed, (batch, time, input_size, hidden_size) in enumerate(_BPTT_CASES):
        args, expected = _bptt_case(batch, time, input_size, hidden_size, seed)
        originals = {f"argument {name}": a.clone() for name, a in zip(_BPTT_ARGUMENTS, args, strict=True)}
        given = [a.clone() for a in args]
        call = "rnn_backward(" + ", ".join(f"{name}{tuple(a.shape)}"
                                           for name, a in zip(_BPTT_ARGUMENTS, args, strict=True)) + ")"
        got = _call_rnn_backward(rnn_backward, call, given, args)
        _expect_unchanged(call, dict(zip(originals, given, strict=True)), originals)
        if not (isinstance(got, (tuple, list)) and len(got) == len(_BPTT_RESULTS)):
            raise ExerciseError(f"{call} returned {type(got).__name__}"
                                f"{f' of length {len(got)}' if isinstance(got, (tuple, list)) else ''}; expected "
                                "a tuple of five tensors (dW_x, db_x, dW_h, db_h, dh0).")
        for name, value, want in zip(_BPTT_RESULTS, got, expected, strict=True):
            _check_bptt_result(call, name, value, want, args, expected)
    print(f"✓ rnn_backward is correct: {len(_BPTT_CASES)} cases agree with autograd through charrnn.ScratchRNN")
