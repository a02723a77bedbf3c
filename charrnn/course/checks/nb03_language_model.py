"""Notebook 03's exercises: ``count_parameters`` (the model's size worked
out from its shapes, before it is built), the language model written from
its contract (``check_char_model``), ``masked_loss`` (the loss that skips
padding) and ``lstm_step``, one LSTM step from its gate equations; checked
against the parameters of real PyTorch layers, the properties every causal
model has, :func:`charrnn.masked_cross_entropy` and ``nn.LSTMCell``."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from itertools import permutations, product

import torch

from ...metrics import masked_cross_entropy
from ...vocab import PAD_ID
from .common import ExerciseError, _call, _expect_on_graph, _expect_tensor, _expect_unchanged, _keeps_random_state

__all__ = ["check_char_model", "check_count_parameters", "check_lstm_step", "check_masked_loss"]

# -------------------------------------------------------------- masked loss
# (batch, time, vocab, pad rows): pad_rows "tail" pads the end of every row but
# the first, "row" also makes one whole row padding, "none" has no pad at all
_LOSS_CASES = ((2, 5, 7, "tail"), (3, 4, 6, "row"), (1, 6, 5, "none"), (4, 3, 9, "row"), (2, 8, 11, "tail"))


def _masked_loss_case(batch: int, time: int, vocab: int, pads: str, seed: int):
    """Logits and targets of one case; targets hold no id below 1 except pads."""
    gen = torch.Generator().manual_seed(100 + seed)
    logits = torch.randn(batch, time, vocab, generator=gen) * 2
    targets = torch.randint(1, vocab, (batch, time), generator=gen)
    if pads in ("tail", "row"):
        for row in range(1, batch):
            targets[row, time - row:] = PAD_ID  # records of different lengths
    if pads == "row":
        targets[-1] = PAD_ID  # a record shorter than the batch: nothing to score in this row
    return logits, targets


def _mean_of_row_means(nll: torch.Tensor, mask: torch.Tensor, shape) -> torch.Tensor:
    """The mean over rows of each row's own mean loss (rows with no target left out)."""
    sums, counts = (nll * mask).reshape(shape).sum(1), mask.reshape(shape).sum(1)
    kept = counts > 0
    return (sums[kept] / counts[kept]).mean()


def _masked_loss_hint(got: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    nll = -flat_logits.log_softmax(-1).gather(-1, flat_targets[:, None]).squeeze(-1)
    mask = (flat_targets != PAD_ID).float()
    average_over_pads = ("it matches the mean over every position, pads included. Pad targets are not "
                         "characters: which positions should the sum run over, and what should it be "
                         "divided by?")
    candidates = [
        (nll.mean(), average_over_pads),
        ((nll * mask).sum() / mask.numel(), "it matches the sum over the real characters divided by the number "
         "of every position, pads included: the pads are left out of the sum but still counted in the "
         "denominator. What should the sum be divided by?"),
        ((nll * mask).sum(), "it matches the sum over the non-pad targets. The loss is a mean: divide by their "
                             "number."),
        (_mean_of_row_means(nll, mask, targets.shape), "it matches the mean of the per-row means: a row with "
         "many pads then weighs as much as a full one. Every real character of the batch should count the same."),
        (-(nll * mask).sum() / mask.sum(), "it has the wrong sign: the loss is minus the mean log-probability, "
                                           "a positive number."),
        ((flat_logits.gather(-1, flat_targets[:, None]).squeeze(-1) * -mask).sum() / mask.sum(),
         "it matches minus the raw logits of the targets: logits are scores, not log-probabilities. What "
         "turns them into log-probabilities?"),
        (_shifted_twice(logits, targets), "it matches scoring each position against the character two steps "
         "ahead: the targets are already the next characters, shifted once when the batch was made."),
    ]
    for value, hint in candidates:
        if torch.allclose(got, value.to(got.dtype), atol=1e-5, rtol=1e-4):
            return "\nHint: " + hint
    if float(got) < 0:
        return ("\nHint: the loss is negative, but -ln p is never negative for a probability p <= 1. Are those "
                "log-probabilities, or probabilities?")
    return ""


def _shifted_twice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The masked loss with the targets shifted once more (a common slip)."""
    lg, tg = logits[:, :-1], targets[:, 1:]
    nll = -lg.log_softmax(-1).gather(-1, tg[..., None]).squeeze(-1)
    mask = (tg != PAD_ID).float()
    return (nll * mask).sum() / mask.sum().clamp_min(1)


@_keeps_random_state
def check_masked_loss(masked_loss: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``masked_loss(logits, targets, pad_id) -> scalar`` against
    :func:`charrnn.masked_cross_entropy`.

    ``logits`` has shape ``(batch, time, vocab)``, ``targets`` ``(batch,
    time)``. The answer is ``L = -1/N * sum ln p(target)`` over the ``N``
    targets that are not ``pad_id``, with ``p`` the softmax of the logits: a
    0-dimensional tensor that stays on the autograd graph. Some cases hold
    rows made only of padding. The inputs must be left as they were.
    """
    for seed, (batch, time, vocab, pads) in enumerate(_LOSS_CASES):
        logits, targets = _masked_loss_case(batch, time, vocab, pads, seed)
        expected = masked_cross_entropy(logits, targets)
        given_logits, given_targets = logits.clone().requires_grad_(True), targets.clone()
        call = f"masked_loss(logits{tuple(logits.shape)}, targets{tuple(targets.shape)}, pad_id={PAD_ID})"
        got = _call("masked_loss", masked_loss, given_logits, given_targets, PAD_ID, shown=call[len("masked_loss("):-1])
        _expect_tensor(call, got, (), "a single number, the mean over all non-pad targets of the batch",
                       hint="\nHint: keep it a tensor: no .item() or float().")
        _expect_on_graph(call, got, "training could not compute a gradient from it")
        _expect_unchanged(call, {"logits": given_logits, "targets": given_targets},
                          {"logits": logits, "targets": targets})
        got_f = got.detach().float()
        if torch.isnan(got_f):
            hint = ""
            if pads == "row":
                hint = ("\nHint: this batch has a row made only of padding (targets[-1] is all pad_id). A mean "
                        "per row divides 0 by 0 there: should one row's average matter, or every real "
                        "character of the batch?")
            raise ExerciseError(f"{call} returned nan, expected {expected.item():.4f}\n"
                                f"targets =\n{targets}{hint}")
        if not torch.allclose(got_f, expected, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{call} returned {got_f.item():.4f}, expected {expected.item():.4f} "
                                f"(the mean of -ln p(target) over the targets that are not padding)\n"
                                f"targets =\n{targets}{_masked_loss_hint(got_f, logits, targets)}")
    print(f"✓ masked_loss is correct: {len(_LOSS_CASES)} batches agree with charrnn.masked_cross_entropy")



# ------------------------------------------------------- counting parameters
# (V, E, H): sizes at which a count is compared, chosen so that each usual
# miscount (and each pair of them) gives another number; one has E = H.
_COUNT_SIZES = ((11, 5, 7), (98, 32, 128), (3, 17, 4), (40, 6, 6), (7, 2, 19))

# The learned parts of the model of section 2, each with what it holds as a
# function of (V, E, H), and the usual ways to miscount it with the hint
# each one gets. The hints name the part, never the arithmetic.
_PARTS = (
    ("embedding", lambda V, E, H: V * E, (
        (lambda V, E, H: V * H, "an embedding table of V x H. It has one row per token: how many numbers "
                                "does each row hold, the size of e_t?"),
        (lambda V, E, H: 0, "no embedding table: its rows are learned like every weight."))),
    ("input weights", lambda V, E, H: H * E, (
        (lambda V, E, H: H * H, "a W_x of H x H. It turns e_t into H numbers: how many numbers does it "
                                "read?"),
        (lambda V, E, H: 0, "no W_x, the weights that read e_t."))),
    ("recurrent weights", lambda V, E, H: H * H, (
        (lambda V, E, H: 0, "no W_h, the weights that read h_{t-1}."),)),
    ("recurrent biases", lambda V, E, H: 2 * H, (
        (lambda V, E, H: H, "one bias vector in the recurrent layer. Write out the step of notebook 02, which is "
                            "what nn.RNN computes: how many bias vectors does it add?"),
        (lambda V, E, H: 0, "no bias in the recurrent layer. Write out the step of notebook 02, which is what "
                            "nn.RNN computes: which terms are not multiplied by anything?"))),
    ("head weights", lambda V, E, H: H * V, (
        (lambda V, E, H: H * H, "an output layer of H x H. It gives one score per token at each position: "
                                "how many outputs is that?"),)),
    ("head bias", lambda V, E, H: V, (
        (lambda V, E, H: 0, "an output layer without its bias: l_t = h_t W_o^T + b_o adds one number to each "
                            "score."),
        (lambda V, E, H: H, "an output bias of H entries: it adds one number to each score, so how "
                            "many?"))),
    ("initial state", lambda V, E, H: 0, (
        (lambda V, E, H: H, "h_0 among the parameters. The state before the first step is zeros or handed in "
                            "by the caller: nothing learns it."),)),
)


def _reference_count(V: int, E: int, H: int) -> int:
    """Parameters of the model of section 2, counted on real PyTorch layers
    (not a formula of ours that could be wrong the same way as the student's)."""
    layers = (torch.nn.Embedding(V, E), torch.nn.RNN(E, H), torch.nn.Linear(H, V))
    return sum(p.numel() for layer in layers for p in layer.parameters())


def _miscounted_parts(counts: list[int], sizes=_COUNT_SIZES) -> list[str] | None:
    """The hints of the fewest usual miscounts (:data:`_PARTS`) that together
    give ``counts`` at every one of ``sizes``; None when no combination does,
    so that a count is never explained by a mistake it does not match."""
    options = [((right, ""), *wrongs) for _, right, wrongs in _PARTS]
    best = None
    for combination in product(*options):
        if all(sum(f(*size) for f, _ in combination) == count for size, count in zip(sizes, counts, strict=True)):
            hints = [hint for _, hint in combination if hint]
            if best is None or len(hints) < len(best):
                best = hints
    return best


def _count_hint(counts: list[int], expected: list[int], what: str) -> str:
    """Name the miscounted parts when ``counts`` (``what``: "your count",
    "your model's count") match usual mistakes, else say what to count."""
    if len(set(counts)) == 1:
        return (f"\nHint: {what} is {counts[0]} at every size: the count must follow V, E and H (the check tries "
                "several).")
    for other, extra in (("a one-layer GRU", lambda E, H: 2 * H * (E + H + 2)),
                         ("a one-layer LSTM", lambda E, H: 3 * H * (E + H + 2)),
                         ("two recurrent layers", lambda E, H: H * (2 * H + 2))):
        if all(c == e + extra(E, H) for c, e, (_, E, H) in zip(counts, expected, _COUNT_SIZES, strict=True)):
            return (f"\nHint: {what} is that of the same model with {other}. The exercise asks for one layer of the "
                    "plain RNN of notebook 02 (the cells below use its state).")
    hints = _miscounted_parts(counts)
    if hints:
        return f"\nHint: {what} is what you get with " + " Also with ".join(hints)
    return ("\nHint: count stage by stage: the shape of every learned tensor of the embedding, of the recurrent "
            "step of notebook 02 and of the output layer, then add them up.")


def _as_count(call: str, got) -> int:
    """The student's answer as an int, or an error that says why it is not one."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a whole number, the "
                            "count of every learned number of the model.")
    if got != int(got):
        raise ExerciseError(f"{call} returned {got}, not a whole number.\nHint: a count of numbers has no "
                            "fraction in it: where does a division come from?")
    return int(got)


@_keeps_random_state
def check_count_parameters(count_parameters: Callable[[int, int, int], int]) -> None:
    """Check ``count_parameters(V, E, H) -> int``: how many numbers the model
    of section 2 (an embedding of size E, one ``nn.RNN`` layer of hidden
    size H, a linear output layer over the V tokens) learns, worked out
    from the shapes. Compared with the parameters of real PyTorch layers
    at several sizes; building a layer inside the function is refused."""
    counts = []
    for V, E, H in _COUNT_SIZES:
        call = f"count_parameters(V={V}, E={E}, H={H})"
        counts.append(_as_count(call, _call_count(count_parameters, V, E, H)))
    expected = [_reference_count(*size) for size in _COUNT_SIZES]
    for (V, E, H), got, want in zip(_COUNT_SIZES, counts, expected, strict=True):
        if got != want:
            raise ExerciseError(f"count_parameters(V={V}, E={E}, H={H}) returned {got}, but the model of section 2 "
                                f"(an embedding, a one-layer nn.RNN, a linear output layer) has {want} parameters "
                                f"at these sizes.{_count_hint(counts, expected, 'your count')}")
    print(f"✓ count_parameters is correct: {len(_COUNT_SIZES)} sizes agree with the layers' own parameters")


def _call_count(count_parameters: Callable, V: int, E: int, H: int):
    """The student's count; a refused layer gets a word on what the exercise is."""
    try:
        return _call("count_parameters", count_parameters, V, E, H, shown=f"V={V}, E={E}, H={H}")
    except ExerciseError as e:
        if "would do this exercise for you" in str(e):
            raise ExerciseError(f"{e}\nHint: this exercise is the count you make without the layers: work out "
                                "the shape of every learned tensor from V, E and H, and add them up.") from None
        raise


# ------------------------------------------------------------ the whole model
# the sizes of the behaviour tests: the first of the counts
_MODEL_SIZES = dict(zip(("vocab_size", "embed_dim", "hidden_size"), _COUNT_SIZES[0], strict=True))


def _forward(model, x, state=None, what: str = "forward"):
    out = _call("char_model", model, x, state, shown=f"x{tuple(x.shape)}, {'state' if state is not None else 'None'}",
                label=f"{type(model).__name__}.forward")
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
        raise ExerciseError(f"the model's {what} returned {type(out).__name__}; expected (logits, state), "
                            "the logits a tensor of shape (batch, time, vocab_size).")
    return out


def _build(model_class, V: int, E: int, H: int):
    label = getattr(model_class, "__name__", "the model")
    return _call("char_model", model_class, V, E, H, shown=f"vocab_size={V}, embed_dim={E}, hidden_size={H}",
                 label=label)


@_keeps_random_state
def check_char_model(model_class: Callable[..., torch.nn.Module]) -> None:
    """Check a language model written from parts: ``model_class(vocab_size,
    embed_dim, hidden_size)`` builds embedding -> one ``nn.RNN`` layer ->
    linear, and ``forward(x, state=None)`` maps ids ``(batch, time)`` to
    ``(logits, state)``. Checked: the shapes, raw scores rather than
    probabilities, causality (a later character never changes an earlier
    logit, and the logit at t uses x_t), independence of the sequences of a
    batch, that reading a text in two halves with the state equals reading
    it whole, and the parameter count at several sizes."""
    V, E, H = _MODEL_SIZES.values()
    torch.manual_seed(0)
    model = _build(model_class, V, E, H)
    x = torch.randint(V, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = _forward(model, x)
        _expect_tensor(f"{type(model).__name__}(x{tuple(x.shape)})[0]", logits, (3, 9, V),
                       "one score per token of the vocabulary, at every position of every sequence")
        if torch.allclose(logits.softmax(-1), logits, atol=1e-6) or (
                bool((logits >= 0).all()) and torch.allclose(logits.sum(-1), torch.ones(3, 9), atol=1e-4)):
            raise ExerciseError("the model returns probabilities (each row adds up to 1).\nHint: return the "
                                "raw scores, the logits: the loss turns them into log-probabilities itself.")
        _check_model_structure(model, x, logits)
    count = _check_model_count(model_class, model)
    print(f"✓ the model is correct: {count} parameters, causal, batch rows independent, state carried")


def _check_model_count(model_class, model) -> int:
    """The model's parameter count at every size of :data:`_COUNT_SIZES`
    equals that of real layers; returns the count at :data:`_MODEL_SIZES`."""
    first = sum(p.numel() for p in model.parameters())
    counts = [sum(p.numel() for p in _build(model_class, *size).parameters()) for size in _COUNT_SIZES[1:]]
    counts, expected = [first, *counts], [_reference_count(*size) for size in _COUNT_SIZES]
    if counts != expected:
        (V, E, H), at = next((size, i) for i, size in enumerate(_COUNT_SIZES) if counts[i] != expected[i])
        shapes = ", ".join(f"{name} {tuple(p.shape)}" for name, p in model.named_parameters())
        raise ExerciseError(f"with vocab_size={V}, embed_dim={E}, hidden_size={H} the model has {counts[at]} "
                            f"parameters; the model of the exercise (an embedding, one nn.RNN layer, a linear "
                            f"output layer) has {expected[at]}, the number a correct count_parameters gives.\n"
                            f"At the sizes of the first test ({', '.join(map(str, _MODEL_SIZES.values()))}) yours "
                            f"are: {shapes}."
                            + _count_hint(counts, expected, "your model's count"))
    return first


def _check_model_structure(model, x: torch.Tensor, logits: torch.Tensor) -> None:
    changed = x.clone()
    changed[:, 5] = (changed[:, 5] + 1) % _MODEL_SIZES["vocab_size"]
    later, _ = _forward(model, changed)
    if not torch.allclose(later[:, :5], logits[:, :5], atol=1e-6):
        raise ExerciseError("changing the character at position 5 changed the logits at positions 0-4: the model "
                            "looks ahead.\nHint: a prediction may only depend on the characters up to it. Does "
                            "the recurrent layer read the time steps in the order you think, and only forwards?")
    if torch.allclose(later[:, 5], logits[:, 5], atol=1e-6):
        raise ExerciseError("changing the character at position 5 left the logits at position 5 unchanged: the "
                            "prediction made after reading x_t does not use x_t.\nHint: the logits at position t "
                            "should come from the state after reading x_t. Is something shifted by one step?")
    other_row = x.clone()
    other_row[0] = (other_row[0] + 1) % _MODEL_SIZES["vocab_size"]
    mixed, _ = _forward(model, other_row)
    if not torch.allclose(mixed[1:], logits[1:], atol=1e-6):
        raise ExerciseError("changing the first sequence of the batch changed the logits of the others: the "
                            "sequences are mixed.\nHint: the input is (batch, time). Which dimension does your "
                            "recurrent layer treat as time? Its documentation says which order it expects.")
    _check_state_carried(model, x, logits)


def _check_state_carried(model, x: torch.Tensor, logits: torch.Tensor) -> None:
    """Reading ``x`` in two halves, the second from the first's state, gives
    the logits of reading it whole."""
    first, state = _forward(model, x[:, :4], what="forward on the first half")
    if state is None:
        raise ExerciseError("forward returned no state, so a text cannot be continued.\nHint: return the "
                            "recurrent layer's final state next to the logits.")
    try:
        second, _ = _forward(model, x[:, 4:], state, what="forward on the second half")
    except ExerciseError as e:
        if e.__cause__ is None:
            raise
        raise ExerciseError(f"{e}\nHint: this is the state your forward returned for the first half, handed "
                            "back to it. What does your recurrent layer accept as its starting state, and what "
                            "did you return?") from e.__cause__
    if not torch.allclose(torch.cat([first, second], 1), logits, atol=1e-5):
        raise ExerciseError("reading the text in two halves, the second half starting from the state the first "
                            "returned, gives other logits than reading it whole.\nHint: is the state argument "
                            "handed to the recurrent layer, and is the state you return its final one?")


# ------------------------------------------------------------------ LSTM cell
_LSTM_CASES = ((2, 3, 4, 0), (1, 5, 5, 1), (3, 2, 6, 2))  # (batch, E, H, seed): one square case


def _lstm_case(batch: int, inputs: int, hidden: int, seed: int):
    """Random inputs and an ``nn.LSTMCell`` (PyTorch's gate layout: rows
    i, f, g, o of the stacked weights) that gives the expected answer."""
    gen = torch.Generator().manual_seed(300 + seed)
    cell = torch.nn.LSTMCell(inputs, hidden)
    with torch.no_grad():
        for param in cell.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    e_t = torch.randn(batch, inputs, generator=gen)
    h_prev, c_prev = torch.randn(batch, hidden, generator=gen), torch.randn(batch, hidden, generator=gen)
    return cell, (e_t, h_prev, c_prev, cell.weight_ih.detach(), cell.bias_ih.detach(),
                  cell.weight_hh.detach(), cell.bias_hh.detach())


def _lstm_variants(args) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """What the usual mistakes compute, with the hint for each."""
    e_t, h_prev, c_prev, W_ih, b_ih, W_hh, b_hh = args
    i, f, g, o = (e_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=-1)
    i, f, o, g_tanh, g_sig = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g), torch.sigmoid(g)
    c = f * c_prev + i * g_tanh
    return [
        (o * torch.tanh(c), c, ""),
        (o * torch.tanh(f * c_prev + i * g_sig), f * c_prev + i * g_sig,
         "the candidate g_t went through a sigmoid: it is new content, positive or negative. Which "
         "nonlinearity gives values in (-1, 1)?"),
        (o * c, c, "h_t matches o_t times c_t itself: the cell state is squashed before the output gate."),
        (o * torch.tanh(c_prev + i * g_tanh), c_prev + i * g_tanh,
         "the old cell state passed through untouched: what is the forget gate for?"),
        (c, o * torch.tanh(c), "h_t and c_t came back swapped: the function returns (h_t, c_t)."),
        *_lstm_gate_orders(args),
    ]


def _lstm_gate_orders(args) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """The right equations on the four blocks of rows taken in another order."""
    e_t, h_prev, c_prev, W_ih, b_ih, W_hh, b_hh = args
    blocks = (e_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=-1)
    hint = ("the four gates are taken from the wrong blocks of rows: PyTorch stacks them as input, forget, "
            "candidate, output, each H rows of the weights.")
    out = []
    for order in permutations(range(4)):
        if order == (0, 1, 2, 3):
            continue
        i, f, g, o = (blocks[k] for k in order)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        out.append((torch.sigmoid(o) * torch.tanh(c), c, hint))
    return out


def _lstm_hint(h: torch.Tensor, c: torch.Tensor, args) -> str:
    for want_h, want_c, hint in _lstm_variants(args)[1:]:
        if h.shape == want_h.shape and torch.allclose(h, want_h, atol=1e-5) and torch.allclose(c, want_c, atol=1e-5):
            return "\nHint: " + hint
    return ""


@_keeps_random_state
def check_lstm_step(lstm_step: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Check ``lstm_step(e_t, h_prev, c_prev, W_ih, b_ih, W_hh, b_hh) ->
    (h_t, c_t)``, one LSTM step written from its gate equations, against
    ``nn.LSTMCell`` with the same weights: both outputs, and the gradients
    that flow back to every input (so the step can be trained)."""
    for batch, inputs, hidden, seed in _LSTM_CASES:
        cell, args = _lstm_case(batch, inputs, hidden, seed)
        given = [a.clone().requires_grad_(True) for a in args]
        call = f"lstm_step(e_t{tuple(args[0].shape)}, h_prev{tuple(args[1].shape)}, c_prev, W_ih, b_ih, W_hh, b_hh)"
        got = _call("lstm_step", lstm_step, *given, shown=call[len("lstm_step("):-1])
        if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
            raise ExerciseError(f"{call} returned {type(got).__name__}; expected a pair of tensors (h_t, c_t).")
        h, c = got
        want_h, want_c = cell(args[0], (args[1], args[2]))
        for name, value, want in (("h_t", h, want_h), ("c_t", c, want_c)):
            _expect_tensor(f"{call}[{name}]", value, tuple(want.shape), f"{name}: (batch, hidden)")
        if not (torch.allclose(h.detach(), want_h.detach(), atol=1e-5) and
                torch.allclose(c.detach(), want_c.detach(), atol=1e-5)):
            raise ExerciseError(f"{call} returned h_t\n{h.detach()}\nexpected\n{want_h.detach()}"
                                f"{_lstm_hint(h.detach(), c.detach(), args)}")
        _check_lstm_gradients(call, h, c, given)
    print(f"✓ lstm_step is correct: {len(_LSTM_CASES)} cases agree with nn.LSTMCell, outputs and gradients")


def _check_lstm_gradients(call: str, h: torch.Tensor, c: torch.Tensor, given: list[torch.Tensor]) -> None:
    """Gradients of a fixed function of (h_t, c_t) with respect to every input
    equal those of the formula: nothing detached, nothing computed twice."""
    _expect_on_graph(call, h, "it could not be trained", what="h_t")
    grads = torch.autograd.grad((h.sum() + 0.5 * c.sum()), given, allow_unused=True)
    reference = [a.detach().clone().requires_grad_(True) for a in given]
    want_h, want_c = _lstm_variants(reference)[0][:2]
    want = torch.autograd.grad(want_h.sum() + 0.5 * want_c.sum(), reference)
    names = ("e_t", "h_prev", "c_prev", "W_ih", "b_ih", "W_hh", "b_hh")
    for name, got_g, want_g in zip(names, grads, want, strict=True):
        if got_g is None or not torch.allclose(got_g, want_g, atol=1e-4):
            raise ExerciseError(f"{call}: the gradient with respect to {name} differs from the LSTM's"
                                f"{' (none flows back)' if got_g is None else ''}.\nHint: is {name} used "
                                "exactly where the equations use it, and only there?")

