"""Notebook 02's exercise: ``rnn_step``, one step of the RNN cell written
from its formula, checked against :class:`charrnn.RNNCell` with the same
weights."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...layers import RNNCell
from .common import ExerciseError, _call, _expect_on_graph, _expect_tensor, _expect_unchanged, _keeps_random_state

__all__ = ["check_rnn_step"]

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
