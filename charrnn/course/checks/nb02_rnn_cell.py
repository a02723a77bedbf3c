"""Notebook 02's exercises: ``rnn_layer``, the recurrent layer that runs the
notebook's one-line ``rnn_step`` over time, checked against
``nn.RNN(batch_first=True)`` with the same weights, outputs and gradients; and
``rnn_backward``, backpropagation through time by hand, checked against
autograd through :class:`charrnn.ScratchRNN`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...layers import ScratchRNN
from .common import ExerciseError, _call, _expect_on_graph, _expect_tensor, _expect_unchanged, _keeps_random_state

__all__ = ["check_rnn_backward", "check_rnn_layer"]

# ------------------------------------------------------------------ the layer
# (batch, time, input_size, hidden_size, h0 given): first batch == time, where a loop along the batch
# dimension or a result stacked (time, batch, hidden) has the right shape and its numbers name the mistake;
# then h0=None with a batch of one, one step only, and batch != time
_LAYER_CASES = ((3, 3, 4, 4, True), (1, 4, 3, 5, False), (3, 1, 2, 4, True), (2, 5, 3, 4, True),
                (4, 6, 5, 3, False))
_LAYER_ARGUMENTS = ("e", "h0", "W_x", "b_x", "W_h", "b_h")
_RNN_WEIGHTS = ("weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0")  # W_x, b_x, W_h, b_h in nn.RNN


def _layer_case(batch: int, time: int, input_size: int, hidden_size: int, with_h0: bool, seed: int):
    """The arguments of one case, and the ``nn.RNN`` that holds the same weights."""
    gen = torch.Generator().manual_seed(100 + seed)
    rnn = nn.RNN(input_size, hidden_size, batch_first=True)
    with torch.no_grad():  # weights of order one, so that the tanh neither saturates nor stays linear
        for p in rnn.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 1.6 - 0.8)
    e = torch.randn(batch, time, input_size, generator=gen)
    h0 = torch.randn(batch, hidden_size, generator=gen).tanh() if with_h0 else None
    return (e, h0, *(getattr(rnn, name).detach().clone() for name in _RNN_WEIGHTS)), rnn


def _loss(output: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
    """A loss that depends on every state of ``output`` and on ``h_n``, each
    with its own weights, so that every gradient is tested."""
    gen = torch.Generator().manual_seed(7)
    return (output * torch.randn(output.shape, generator=gen)).sum() + (h_n * torch.randn(h_n.shape,
                                                                                         generator=gen)).sum()


def _reference(rnn: nn.RNN, args) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``nn.RNN``'s output, last state ``(batch, hidden)`` and the gradients
    of :func:`_loss` with respect to every argument that is a tensor."""
    e, h0 = args[0].clone().requires_grad_(True), args[1]
    state = None if h0 is None else h0[None].clone().requires_grad_(True)
    output, h_n = rnn(e, state)
    leaves = {"e": e, **({} if state is None else {"h0": state}),
              **{name: getattr(rnn, w) for name, w in zip(_LAYER_ARGUMENTS[2:], _RNN_WEIGHTS, strict=True)}}
    grads = torch.autograd.grad(_loss(output, h_n[0]), list(leaves.values()))
    grads = {name: (g[0] if name == "h0" else g) for name, g in zip(leaves, grads, strict=True)}
    return output.detach(), h_n[0].detach(), grads


def _layer_variant(e, h0, W_x, b_x, W_h, b_h, *, start: str = "h0", carry: bool = True, time_dim: int = 1,
                   collect: str = "after", cut: bool = False):
    """What a layer with one of the usual mistakes in it returns (the
    defaults make none), to name the mistake a wrong answer matches: it
    starts from zeros although h0 is given, every step reads the initial
    state, the loop runs along dimension 0 (the batch), the state before
    each step is collected, or the state is cut from autograd between steps."""
    first = torch.zeros(e.shape[0], W_h.shape[0]) if h0 is None or start == "zeros" else h0
    h, outputs = first, []
    for e_t in (e.unbind(1) if time_dim == 1 else e.unbind(0)):
        read = (h.detach() if cut else h) if carry else first
        new = torch.tanh(e_t @ W_x.T + b_x + read @ W_h.T + b_h)
        outputs.append(h if collect == "before" else new)
        h = new
    return torch.stack(outputs, dim=1), h


_OUTPUT_MISTAKES = (  # the first that matches names the mistake: a loop along the batch first, since with a
    # batch of one it also matches a layer whose every step reads h0
    ({"time_dim": 0}, "output matches a loop that reads the time steps along dimension 0, which is the batch "
                      "here: e is (batch, time, input_size). Which dimension runs over time?"),
    ({"carry": False}, "output matches a layer in which every step reads the initial state, not the state the "
                       "step before it produced. The state is what carries the sequence read so far: what does "
                       "step t read, and where does it come from?"),
    ({"start": "zeros"}, "output matches a layer that starts from zeros, but this call gives h0. Zeros are for "
                         "h0=None only: a given h0 continues sequences read earlier."),
    ({"collect": "before"}, "output matches the states before each step, h_0 to h_{T-1}, one step behind. The "
                            "output at a step is the state that step produces, after reading its input: h_1 "
                            "to h_T, so the last one is h_n."),
)


def _first_wrong_step(got: torch.Tensor, expected: torch.Tensor) -> str:
    """A hint that says only what the numbers show: up to which step the
    states are right, so the student knows where to look."""
    wrong = [t for t in range(expected.shape[1]) if not torch.allclose(got[:, t], expected[:, t], atol=1e-5,
                                                                       rtol=1e-4)]
    if wrong[0] == 0:
        return ("\nHint: the state after the very first step, output[:, 0], is already wrong. What does the "
                "first step read, e at time 0 and which state? Try your function on one sequence of two steps "
                "and compare with rnn_step by hand.")
    return (f"\nHint: output is right for the first {wrong[0]} step(s) and wrong from step {wrong[0] + 1} on. "
            "What does that step read that the ones before did not?")


def _output_hint(got: torch.Tensor, args, expected: torch.Tensor) -> str:
    """The usual mistake that gives this wrong ``output``, of any shape, or
    what its shape or numbers show."""
    for options, hint in _OUTPUT_MISTAKES:
        try:
            value = _layer_variant(*args, **options)[0]
        except RuntimeError:  # the mistake cannot run on these shapes
            continue
        for candidate in (value, value.transpose(0, 1)):
            if candidate.shape == got.shape and not (candidate.shape == expected.shape and torch.allclose(
                    candidate, expected, atol=1e-5)) and torch.allclose(got, candidate, atol=1e-5, rtol=1e-4):
                return "\nHint: " + hint
    batch, time, hidden = expected.shape
    if tuple(got.shape) == (time, batch, hidden) and torch.allclose(got, expected.transpose(0, 1), atol=1e-5,
                                                                    rtol=1e-4):
        return ("\nHint: the states are right but stacked (time, batch, hidden), the layout of nn.RNN without "
                "batch_first. Along which dimension of output should the steps go?")
    if tuple(got.shape) == (batch, time + 1, hidden):
        return ("\nHint: that is one state more than there are steps. h_0, the state before the first step, is "
                "not the result of any step: output holds one state per step, h_1 to h_T.")
    if tuple(got.shape) == (batch, time - 1, hidden):
        return ("\nHint: that is one state fewer than there are steps. Every step, the first and the last "
                "included, reads one input and produces one state.")
    return _first_wrong_step(got, expected) if got.shape == expected.shape else ""


def _check_h_n(call: str, h_n, want: torch.Tensor, args, output: torch.Tensor) -> None:
    """``h_n`` must be the last state, ``(batch, hidden_size)`` like h0."""
    meaning = "(batch, hidden_size), the last state, shaped like h0 so that it can be passed back in as h0"
    if isinstance(h_n, torch.Tensor) and tuple(h_n.shape) == (1, *want.shape):
        raise ExerciseError(f"{call} returned h_n of shape {tuple(h_n.shape)}, expected {tuple(want.shape)}: "
                            f"{meaning}.\nHint: that is nn.RNN's layout, with a layer axis in front. This layer "
                            "is one layer: its state has the shape of h0.")
    _expect_tensor(f"{call} [h_n]", h_n, tuple(want.shape), meaning)
    got = h_n.detach()
    if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
        _expect_on_graph(f"{call} [h_n]", h_n, "no gradient can flow back through it")
        return
    h0 = args[1] if args[1] is not None else torch.zeros_like(want)
    if torch.allclose(got, h0, atol=1e-6):
        hint = "h_n is the initial state: is the state you return the one the loop updated?"
    elif output.shape[1] > 1 and torch.allclose(got, output[:, 0], atol=1e-5, rtol=1e-4):
        hint = "h_n is the state after the first step; the last state is the one after the last step."
    else:
        hint = "h_n is the state after the last step, h_T: the same numbers as the last step of output."
    raise ExerciseError(f"{call} returned h_n =\n{got}\nexpected\n{want}\nHint: {hint}")


def _call_rnn_layer(rnn_layer: Callable, call: str, given: list, args):
    """The student's answer; an error from inside it gets the hint its
    usual cause needs: h0=None not handled, or shapes that do not fit."""
    try:
        return _call("rnn_layer", rnn_layer, *given, shown=call[len("rnn_layer("):-1])
    except ExerciseError as e:
        cause, (e_in, h0, W_x, *_) = e.__cause__, args
        if h0 is None and isinstance(cause, (TypeError, AttributeError)) and "NoneType" in str(cause):
            raise ExerciseError(f"{e}\nHint: in this call h0 is None, which stands for the state of zeros, one "
                                f"row per sequence, (batch, hidden_size) = {(e_in.shape[0], W_x.shape[0])}. "
                                "Where does your function make that state?") from cause
        if isinstance(cause, (RuntimeError, IndexError)) and any(w in str(cause) for w in ("shape", "size",
                                                                                            "index")):
            raise ExerciseError(
                f"{e}\nHint: e is (batch, time, input_size) = {tuple(e_in.shape)}; one step of it, the input of "
                f"every sequence at one time, is (batch, input_size) = {(e_in.shape[0], e_in.shape[2])}, and the "
                f"state is (batch, hidden_size) = {(e_in.shape[0], W_x.shape[0])}. Write down the shape of what "
                "each step reads and returns.") from cause
        raise


def _check_gradients(call: str, given: list, output: torch.Tensor, h_n: torch.Tensor, args, want: dict) -> None:
    """Gradients must flow back through the answer, through time, to every
    argument, as they do through nn.RNN: ``rnn_backward`` is compared with
    autograd later."""
    leaves = {name: t for name, t in zip(_LAYER_ARGUMENTS, given, strict=True) if t is not None}
    grads = torch.autograd.grad(_loss(output, h_n), list(leaves.values()), allow_unused=True)
    for name, got in zip(leaves, grads, strict=True):
        if got is None or not torch.allclose(got, want[name], atol=1e-4, rtol=1e-4):
            break
    else:
        return
    if got is None:
        hint = (f"no gradient reaches {name} at all. Is it used through a copy (into a new module, a new tensor, "
                "with .detach() or .data) rather than as the tensor you were given?")
    elif _matches_a_cut_state(args, name, got):
        hint = ("the gradient stops at every step: it matches a layer whose state is cut from autograd between "
                "steps (.detach(), .data, a new tensor). Backpropagation through time needs the path from each "
                "state back to the state before it.")
    else:
        hint = ("something between your result and this argument is cut from autograd or computed apart from "
                "it (.detach(), .data, no_grad, a copy). Gradients must flow back through every step.")
    raise ExerciseError(f"{call}: the output and h_n are right, but the gradient of a loss with respect to "
                        f"{name} is {'missing' if got is None else 'wrong'}.\nHint: {hint}")


def _matches_a_cut_state(args, name: str, got: torch.Tensor) -> bool:
    """Whether the student's gradient for ``name`` is that of a layer whose
    state is detached between steps."""
    leaves = [t.clone().requires_grad_(True) if t is not None else None for t in args]
    index = _LAYER_ARGUMENTS.index(name)
    value = torch.autograd.grad(_loss(*_layer_variant(*leaves, cut=True)), leaves[index], allow_unused=True)[0]
    return value is not None and torch.allclose(got, value, atol=1e-4, rtol=1e-4)


def _layer_call(args) -> str:
    """How a message shows the call: each argument by name and shape."""
    return "rnn_layer(" + ", ".join(f"{name}=None" if a is None else f"{name}{tuple(a.shape)}"
                                    for name, a in zip(_LAYER_ARGUMENTS, args, strict=True)) + ")"


def _check_output(call: str, result, want: torch.Tensor, args) -> tuple[torch.Tensor, torch.Tensor]:
    """The answer must be ``(output, h_n)`` with the states of every step in
    ``output``; returns the pair."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ExerciseError(f"{call} returned {type(result).__name__}"
                            f"{f' of length {len(result)}' if isinstance(result, (tuple, list)) else ''}; expected "
                            "a pair (output, h_n).")
    output, h_n = result
    meaning = "(batch, time, hidden_size), the state after every step"
    if isinstance(output, torch.Tensor) and tuple(output.shape) != tuple(want.shape):
        raise ExerciseError(f"{call} returned output of shape {tuple(output.shape)}, expected {tuple(want.shape)}: "
                            f"{meaning}.{_output_hint(output.detach(), args, want)}")
    _expect_tensor(f"{call} [output]", output, tuple(want.shape), meaning,
                   "\nHint: output is one tensor that holds the states of every step.")
    if not torch.allclose(output.detach(), want, atol=1e-5, rtol=1e-4):
        raise ExerciseError(f"{call} returned output =\n{output.detach()}\nexpected\n{want}"
                            f"{_output_hint(output.detach(), args, want)}")
    _expect_on_graph(f"{call} [output]", output, "no gradient can flow back through it")
    return output, h_n


@_keeps_random_state
def check_rnn_layer(rnn_layer: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Check ``rnn_layer(e, h0, W_x, b_x, W_h, b_h) -> (output, h_n)``, one
    recurrent layer, against ``nn.RNN(batch_first=True)`` with the same
    weights.

    ``e`` is ``(batch, time, input_size)``; ``h0`` is ``(batch, hidden_size)``
    or None for zeros; the weights are shaped as ``nn.RNN`` stores them.
    ``output`` ``(batch, time, hidden_size)`` holds the state after every
    step, ``h_1`` to ``h_T``, and ``h_n`` ``(batch, hidden_size)`` the last
    one. Gradients must flow through both to every argument (a loss on both
    is compared with nn.RNN's); nn.RNN, its function ``rnn_tanh`` and
    :class:`charrnn.ScratchRNN` are refused while the function runs, and the
    arguments must be left as they were.
    """
    for seed, (batch, time, input_size, hidden_size, with_h0) in enumerate(_LAYER_CASES):
        args, rnn = _layer_case(batch, time, input_size, hidden_size, with_h0, seed)
        want_output, want_h_n, want_grads = _reference(rnn, args)
        call = _layer_call(args)
        given = [a.clone().requires_grad_(True) if a is not None else None for a in args]
        originals = {f"argument {n}": a.clone() for n, a in zip(_LAYER_ARGUMENTS, args, strict=True) if a is not None}
        result = _call_rnn_layer(rnn_layer, call, given, args)
        _expect_unchanged(call, {f"argument {n}": g for n, g in zip(_LAYER_ARGUMENTS, given, strict=True)
                                 if g is not None}, originals)
        output, h_n = _check_output(call, result, want_output, args)
        _check_h_n(call, h_n, want_h_n, args, output.detach())
        _check_gradients(call, given, output, h_n, args, want_grads)
    print(f"✓ rnn_layer is correct: {len(_LAYER_CASES)} cases agree with nn.RNN, outputs and gradients")


# ------------------------------------------------------- backward through time
# (batch, time, input_size, hidden_size): a square W_x (transposes fit either way), a batch of one,
# one step only (nothing to carry)
_BPTT_CASES = ((2, 4, 3, 5), (1, 5, 4, 4), (3, 3, 2, 6), (4, 6, 5, 3), (2, 1, 3, 4))
_BPTT_ARGUMENTS = ("e", "h0", "h", "W_h", "dh")
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
    e = torch.randn(batch, time, input_size, generator=gen, dtype=torch.float64)
    h0 = torch.randn(batch, hidden_size, generator=gen, dtype=torch.float64).tanh().requires_grad_(True)
    dh = torch.randn(batch, time, hidden_size, generator=gen, dtype=torch.float64)
    h, _ = layer(e, h0[None])
    params = (cell.input_to_hidden.weight, cell.input_to_hidden.bias,
              cell.hidden_to_hidden.weight, cell.hidden_to_hidden.bias, h0)
    expected = torch.autograd.grad((h * dh).sum(), params)  # dL/dh_t = dh[:, t] for the loss sum_t <h_t, dh_t>
    args = (e, h0.detach(), h.detach(), cell.hidden_to_hidden.weight.detach().clone(), dh)
    return args, expected


def _bptt_variant(e, h0, h, W_h, dh, *, derivative: str = "h_t", carry: str = "W_h", outer: str = "right",
                  keep: str = "every step", W_h_reads: str = "h_prev", dh0: str = "one more step"):
    """What a hand-written backward pass returns with one of the usual
    mistakes in it (the defaults make none), to name the mistake a wrong
    answer matches."""
    time = e.shape[1]
    grads = None
    delta_next = torch.zeros_like(h0)  # what step t+1 sends back to h_t
    delta = None
    for t in reversed(range(time)):
        h_prev = h[:, t - 1] if t > 0 else h0
        delta = dh[:, t] + delta_next
        g = delta * {"h_t": 1 - h[:, t] ** 2, "none": 1, "h_prev": 1 - h_prev ** 2}[derivative]
        reads = h_prev if W_h_reads == "h_prev" else h[:, t]
        parts = [g.T @ e[:, t], g.sum(0), g.T @ reads, g.sum(0)]
        if outer == "transposed":
            parts[0], parts[2] = e[:, t].T @ g, reads.T @ g
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
            e_in, _, _, W_h, _ = args
            raise ExerciseError(
                f"{e}\nHint: write down the shape of every factor. One step of e is (batch, input_size) = "
                f"{(e_in.shape[0], e_in.shape[2])}, one step of h and delta are (batch, hidden_size) = "
                f"{(e_in.shape[0], W_h.shape[0])}, and each gradient has the shape of what it is the gradient "
                "of.") from e.__cause__
        raise


@_keeps_random_state
def check_rnn_backward(rnn_backward: Callable[..., tuple[torch.Tensor, ...]]) -> None:
    """Check ``rnn_backward(e, h0, h, W_h, dh) -> (dW_x, db_x, dW_h, db_h,
    dh0)``, backpropagation through time by hand, against autograd through
    :class:`charrnn.ScratchRNN`.

    ``e`` is ``(batch, time, input_size)``; ``h`` ``(batch, time,
    hidden_size)`` holds the states the forward pass produced, ``h[:, t]``
    after reading ``e[:, t]``; ``h0`` ``(batch, hidden_size)`` is the state
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
