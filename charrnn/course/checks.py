"""Checkers for the notebooks' "your turn" exercises.

A student writes a small function in a notebook cell (``encode``,
``pad_batch``, ...) and the next cell calls the matching ``check_*`` here. The
checker runs the student's function on a handful of cases and compares each
answer with the library's own implementation, so the reference can never
drift from what the rest of the course uses.

On success it prints one ``✓ ... correct`` line. On failure it raises
:class:`ExerciseError` (an ``AssertionError``, so nbval and pytest treat it
as a failed check) whose message says which input was tried, what was
expected and what came back: a student should be able to fix the function
from the message alone, without reading this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import wraps
from importlib import import_module
from itertools import permutations
from unittest import mock

import torch

from ..batches import pad_sequences
from ..layers import RNNCell
from ..metrics import masked_cross_entropy
from ..vocab import PAD_ID, CharVocab

__all__ = ["ExerciseError", "check_encode", "check_masked_loss", "check_pad_batch", "check_rnn_step",
           "check_char_model", "check_lstm_step", "check_surprisal_bits", "check_tbptt_step",
           "check_temperature_probs", "check_top_p_probs", "check_train_step"]


class ExerciseError(AssertionError):
    """A student's exercise function gave a wrong answer (or none yet)."""


def _keeps_random_state(check: Callable) -> Callable:
    """Run a check without touching the notebook's random numbers: checks
    seed their own cases, and the cells after a check must draw what they
    would have drawn without it."""
    @wraps(check)
    def run(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)
    return run


# What would do each exercise for the student: while their function runs,
# these raise an ExerciseError that says so. ("module", "attribute path").
SHORTCUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "encode": (("charrnn.vocab", "CharVocab.encode"), ("charrnn.vocab", "CharVocab.encode_array")),
    "pad_batch": (("charrnn.batches", "pad_sequences"), ("charrnn", "pad_sequences"),
                  ("torch.nn.utils.rnn", "pad_sequence")),
    "rnn_step": (("torch.nn", "RNN.forward"), ("torch.nn", "RNNCell.forward"), ("charrnn.layers", "RNNCell.forward"),
                 ("charrnn.layers", "ScratchRNN.forward")),
    "masked_loss": (("torch.nn.functional", "cross_entropy"), ("torch.nn.functional", "nll_loss"),
                    ("torch.nn", "CrossEntropyLoss.forward"), ("torch.nn", "NLLLoss.forward"),
                    ("charrnn.metrics", "masked_cross_entropy"), ("charrnn", "masked_cross_entropy")),
    "train_step": (("charrnn.training", "Trainer.train_step"),),
    "temperature_probs": (("charrnn.sample", "next_char_probs"), ("charrnn", "next_char_probs")),
    "surprisal_bits": (("torch.nn.functional", "cross_entropy"), ("torch.nn.functional", "nll_loss")),
    "top_p_probs": (("charrnn.sample", "next_char_probs"), ("charrnn", "next_char_probs")),
    "char_model": (("charrnn.model", "CharRNN.forward"),),
    "tbptt_step": (("charrnn.training", "Trainer.train_step"),),
    "lstm_step": (("torch.nn", "LSTM.forward"), ("torch.nn", "LSTMCell.forward"), ("torch.nn", "GRUCell.forward"),
                  ("torch", "lstm_cell")),
}


@contextmanager
def refusing_shortcuts(exercise: str) -> Iterator[None]:
    """While the block runs, every function in ``SHORTCUTS[exercise]`` raises
    an :class:`ExerciseError` saying the exercise is to be done by hand."""
    with ExitStack() as stack:
        for module_name, path in SHORTCUTS.get(exercise, ()):
            *owners, attribute = path.split(".")
            owner = import_module(module_name)
            for name in owners:
                owner = getattr(owner, name)
            label = f"{module_name}.{path}".removesuffix(".forward")
            stack.enter_context(mock.patch.object(owner, attribute, _refusal(exercise, label)))
        yield


def _refusal(exercise: str, label: str) -> Callable:
    def refused(*args, **kwargs):
        raise ExerciseError(f"{exercise} called {label}, which would do this exercise for you. Here the "
                            "point is to build it yourself from simpler operations; the library version "
                            "is what your answer is compared with.")
    return refused


def _call(name: str, func: Callable, *args, shown: str | None = None, key_error_hint: str = "",
          label: str | None = None):
    """Call the student's function, turning its exceptions into a message
    that names the exercise (``label``, default ``name``) and the input
    instead of a bare traceback. The library and torch functions that would
    solve exercise ``name`` are refused meanwhile."""
    shown = shown if shown is not None else ", ".join(repr(a) for a in args)
    try:
        with refusing_shortcuts(name):
            return func(*args)
    except ExerciseError:
        raise
    except NotImplementedError:
        raise ExerciseError(
            f"{label or name} is not implemented yet: replace the `raise NotImplementedError` "
            "in the cell above with your code, run that cell, then run this one again."
        ) from None
    except Exception as e:  # any bug in the student's code: say where it happened
        raise ExerciseError(f"{label or name}({shown}) raised {type(e).__name__}: {e}"
                            f"{key_error_hint if isinstance(e, KeyError) else ''}") from e


def _as_int_list(value) -> list[int] | None:
    """A list/tuple/tensor/array of integers as a plain list, else None."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        return None
    return [int(v) for v in value]


def _expect_tensor(call: str, got, shape: tuple, meaning: str, hint: str = "") -> None:
    """Raise if the student's answer is not a tensor of ``shape``; ``meaning``
    says what that shape stands for, ``hint`` how to fix a non-tensor."""
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a torch tensor "
                            f"of shape {shape}: {meaning}.{hint}")
    if tuple(got.shape) != tuple(shape):
        raise ExerciseError(f"{call} returned shape {tuple(got.shape)}, expected {shape}: {meaning}.")


# ------------------------------------------------------------------ encoding
_ENCODE_CHARS = "abcdeT ;.$"
_ENCODE_CASES = ("abc", "Tea ; bed.", "", "$a$", "cab!", "Zeta ; €")


@_keeps_random_state
def check_encode(encode: Callable[[str, dict], Sequence[int]]) -> None:
    """Check ``encode(text, stoi) -> list[int]`` against :meth:`CharVocab.encode`.

    Every character maps to ``stoi[char]``; a character missing from ``stoi``
    maps to ``stoi["<unk>"]`` (it must not raise ``KeyError``: real text
    always holds some character the vocabulary never saw). No ``<bos>`` or
    ``<eos>`` is added.
    """
    vocab = CharVocab(_ENCODE_CHARS)
    for text in _ENCODE_CASES:
        stoi = dict(vocab.stoi)  # a copy: a function that mutates stoi is not blamed twice
        expected = vocab.encode(text)
        got = _call("encode", encode, text, stoi, shown=f"{text!r}, stoi",
                    key_error_hint=f"\nHint: real text always holds characters the vocabulary never saw. What "
                         f"should such a character become, and how can you look it up without a KeyError?"
                         f"\nstoi = {vocab.stoi}")
        ids = _as_int_list(got)
        if ids is None:
            raise ExerciseError(f"encode({text!r}, stoi) returned {got!r} ({type(got).__name__}); "
                                "expected a list of integer ids")
        if ids != expected:
            unknown = sorted({c for c in text if c not in vocab.stoi})
            hint = ""
            if unknown:
                hint = (f"\nHint: {', '.join(map(repr, unknown))} is not in stoi. Which special token stands "
                        f"for a character the vocabulary does not know?")
            if len(ids) != len(expected):
                hint += (f"\nHint: the text has {len(text)} characters, so the answer needs "
                         f"{len(expected)} ids, not {len(ids)} (no <bos>/<eos> here).")
            raise ExerciseError(f"encode({text!r}, stoi) returned {ids}, expected {expected}"
                                f"\n(stoi = {vocab.stoi}){hint}")
    print(f"✓ encode is correct: {len(_ENCODE_CASES)} texts agree with CharVocab.encode")


# ------------------------------------------------------------------- padding
_PAD_CASES = (
    ([[1, 5, 7], [2]], 0),
    ([[4], [6, 6], [9, 8, 7, 6]], 0),
    ([[3, 1]], 0),
    ([[1, 2], [3, 4]], 0),
    ([[5], [1, 2, 3]], 9),
)


@_keeps_random_state
def check_pad_batch(pad_batch: Callable[[list[list[int]], int], torch.Tensor]) -> None:
    """Check ``pad_batch(seqs, pad_id) -> LongTensor`` against
    :func:`charrnn.pad_sequences`.

    The result has shape ``(len(seqs), longest length)``; each row starts with
    its sequence and is filled on the right with ``pad_id``. The dtype must be
    ``torch.long``: ``nn.Embedding`` and ``cross_entropy`` accept no other
    integer type. The input lists must be left as they were.
    """
    for seqs, pad_id in _PAD_CASES:
        original = [list(s) for s in seqs]
        given = [list(s) for s in seqs]
        expected = pad_sequences(original, pad_id=pad_id)
        call = f"pad_batch({original}, pad_id={pad_id})"
        got = _call("pad_batch", pad_batch, given, pad_id)
        _expect_tensor(call, got, tuple(expected.shape),
                       f"one row per sequence, as long as the longest\n{expected}",
                       hint="\nHint: how many rows and columns does the batch need? Start from a tensor of that "
                            "size that already holds pad_id everywhere.")
        if got.dtype != torch.long:
            raise ExerciseError(f"{call} returned dtype {got.dtype}, expected torch.int64 (torch.long), "
                                "the dtype nn.Embedding needs.\nHint: ids are whole numbers; which dtype did the "
                                "tensor get when you created it?")
        if not torch.equal(got, expected):
            raise ExerciseError(f"{call} returned\n{got}\nexpected\n{expected}\n"
                                f"(each row is its sequence, then pad_id={pad_id} up to the longest length)")
        if given != original:
            raise ExerciseError(f"{call} changed its input to {given}; build a new tensor instead "
                                "of appending to the lists you were given.")
    print(f"✓ pad_batch is correct: {len(_PAD_CASES)} batches agree with charrnn.pad_sequences")


# ------------------------------------------------------------------ RNN step
# (batch, input_size, hidden_size): square and non-square weights, batch of one
_RNN_STEP_SHAPES = ((2, 3, 4), (1, 5, 2), (3, 4, 4), (4, 1, 6))


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
        originals = [a.clone() for a in args]
        given = [a.clone().requires_grad_(True) for a in args]
        call = (f"rnn_step(x_t{tuple(args[0].shape)}, h_prev{tuple(args[1].shape)}, W_x{tuple(args[2].shape)}, "
                f"b_x{tuple(args[3].shape)}, W_h{tuple(args[4].shape)}, b_h{tuple(args[5].shape)})")
        try:
            got = _call("rnn_step", rnn_step, *given, shown=call[len("rnn_step("):-1])
        except ExerciseError as e:
            cause = e.__cause__
            if isinstance(cause, RuntimeError) and ("shape" in str(cause) or "size" in str(cause)):
                raise ExerciseError(
                    f"{e}\nHint: W_x has shape (hidden_size, input_size) = {tuple(args[2].shape)} and W_h "
                    f"(hidden_size, hidden_size), as nn.Linear stores them, and x_t is (batch, input_size). "
                    f"Write down the shape of each product: the result must be (batch, hidden_size) = "
                    f"{tuple(expected.shape)}.") from e.__cause__
            raise
        _expect_tensor(call, got, tuple(expected.shape),
                       "(batch, hidden_size), one new hidden state per row of the batch")
        if got.grad_fn is None:
            raise ExerciseError(f"{call} returned a tensor cut off from autograd (no grad_fn), so no gradient "
                                "can flow back through it.\nHint: compute with torch operations on the given "
                                "tensors; no .detach(), .data, .numpy() or torch.no_grad().")
        for name, a, original in zip(("x_t", "h_prev", "W_x", "b_x", "W_h", "b_h"), given, originals, strict=True):
            if not torch.equal(a.detach(), original):
                raise ExerciseError(f"{call} changed its argument {name}; compute a new tensor instead of "
                                    "modifying the inputs in place.")
        got_f = got.detach().to(expected.dtype)
        if not torch.allclose(got_f, expected, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}{_rnn_step_hint(got_f, args)}")
    print(f"✓ rnn_step is correct: {len(_RNN_STEP_SHAPES)} cases agree with charrnn.RNNCell")


# ------------------------------------------------------------- masked loss
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
        ((nll * mask).sum() / mask.numel(), average_over_pads),
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
        if got.grad_fn is None:
            raise ExerciseError(f"{call} returned a tensor cut off from autograd (no grad_fn), so training could "
                                "not compute a gradient from it.\nHint: compute with torch operations on the given "
                                "logits; no .detach(), .data, .numpy() or torch.no_grad().")
        if not (torch.equal(given_logits.detach(), logits) and torch.equal(given_targets, targets)):
            raise ExerciseError(f"{call} changed its logits or targets; compute new tensors instead of "
                                "modifying the inputs in place.")
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


# ------------------------------------------------------------------ training
def _train_step_models(seed: int):
    from ..model import CharRNN  # local: a model per attempt, identical weights

    torch.manual_seed(seed)
    model = CharRNN(vocab_size=20, cell="gru", embed_dim=8, hidden_size=16)
    twin = CharRNN(model.config)
    twin.load_state_dict(model.state_dict())
    return model, twin


@_keeps_random_state
def check_train_step(train_step: Callable[..., float], clip: float = 0.05) -> None:
    """Check ``train_step(model, optimizer, inputs, targets, clip) -> float``
    against :meth:`charrnn.Trainer.train_step` for three Adam steps.

    One step is: zero the gradients, forward, masked cross-entropy, backward,
    clip the global gradient norm to ``clip``, one optimizer step, and return
    the loss as a Python float. The small ``clip`` makes clipping matter, so
    a step that forgets it ends with different weights.
    """
    from ..config import TrainConfig
    from ..training import Trainer  # local: training imports much of the library

    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(4, 20, (4, 13), generator=generator) for _ in range(3)]
    for tokens in batches:
        tokens[0, 9:] = PAD_ID  # one padded row: the loss must skip it
    yours, reference = _train_step_models(seed=1)
    optimizer = torch.optim.Adam(yours.parameters(), lr=1e-2)
    trainer = Trainer(reference, CharVocab("abcdefghijklmnop"),
                      train_data=None, config=TrainConfig(lr=1e-2, clip_norm=clip, device="cpu"))
    unclipped, _ = _train_step_models(seed=1)
    unclipped_optimizer = torch.optim.Adam(unclipped.parameters(), lr=1e-2)
    for step, tokens in enumerate(batches):
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        loss = _call("train_step", train_step, yours, optimizer, inputs, targets, clip,
                     shown="model, optimizer, inputs, targets, clip")
        expected, _ = trainer.train_step(inputs, targets)
        unclipped_optimizer.zero_grad()
        masked_cross_entropy(unclipped(inputs)[0], targets).backward()
        unclipped_optimizer.step()
        if not isinstance(loss, float):
            raise ExerciseError(f"train_step should return the loss as a Python float, not a tensor, "
                                f"got {type(loss).__name__}")
        if abs(loss - expected) > 1e-5 * max(1.0, abs(expected)):
            raise ExerciseError(f"step {step}: train_step returned loss {loss:.5f}, expected {expected:.5f}\n"
                                "Hint: return the masked loss of this batch as the model scored it before "
                                "the update.")
        pairs = zip(yours.parameters(), reference.parameters(), strict=True)
        if not all(torch.allclose(a, b, atol=1e-5) for a, b in pairs):
            no_clip = all(torch.allclose(a, b, atol=1e-5)
                          for a, b in zip(yours.parameters(), unclipped.parameters(), strict=True))
            hint = ("the weights match an update without clipping: where in the step must the gradient's "
                    "norm be limited, after the gradients exist and before they are used?" if no_clip else
                    "go through the five parts of the loop in order: old gradients cleared, forward, loss, "
                    "backward, clipping, one optimizer step. Which one is missing or out of place? (Do "
                    "gradients from the previous step leak into this one?)")
            raise ExerciseError(f"after step {step} the weights differ from the reference.\nHint: {hint}.")
    print(f"✓ train_step is correct: {len(batches)} steps agree with charrnn.Trainer.train_step")


# ------------------------------------------------------- truncated BPTT step
def _tbptt_setup(seed: int):
    """A small GRU model, its optimizer, a batch, and an incoming state that
    is still attached to the graph of an earlier batch (as it would be if
    nobody detached it)."""
    from ..model import CharRNN  # local: a model per attempt, identical weights

    torch.manual_seed(seed)
    model = CharRNN(vocab_size=9, cell="gru", embed_dim=4, hidden_size=6)
    gen = torch.Generator().manual_seed(seed)
    inputs, targets = torch.randint(4, 9, (3, 5), generator=gen), torch.randint(4, 9, (3, 5), generator=gen)
    earlier = torch.randn(1, 3, 6, generator=gen).requires_grad_(True)  # stands for the earlier batches' graph
    return model, torch.optim.SGD(model.parameters(), lr=0.5), inputs, targets, earlier, torch.tanh(earlier * 2)


@_keeps_random_state
def check_tbptt_step(tbptt_step: Callable[..., tuple[float, torch.Tensor]]) -> None:
    """Check ``tbptt_step(model, optimizer, inputs, targets, state, clip) ->
    (loss, new_state)``: one step of truncated backpropagation through time.
    The incoming ``state`` carries the context over (the model starts from
    it, not from zeros), but no gradient may flow back into the batches
    before (it is detached first), and the returned state is the model's
    final state, detached, ready for the next batch."""
    yours, optimizer, inputs, targets, earlier, state = _tbptt_setup(0)
    reference, ref_optimizer, *_ = _tbptt_setup(0)
    result = _call("tbptt_step", tbptt_step, yours, optimizer, inputs, targets, state, 1.0,
                   shown="model, optimizer, inputs(3, 5), targets(3, 5), state, clip=1.0")
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], torch.Tensor)):
        raise ExerciseError(f"tbptt_step returned {type(result).__name__}; expected (loss, new_state).")
    loss, new_state = result
    logits, ref_state = reference(inputs, state.detach())
    ref_loss = masked_cross_entropy(logits, targets)
    zero_loss = masked_cross_entropy(reference(inputs)[0], targets).item()
    ref_optimizer.zero_grad()
    ref_loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    ref_optimizer.step()
    _check_tbptt_result(float(loss), ref_loss.item(), zero_loss, earlier, new_state, ref_state)
    if not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(yours.parameters(), reference.parameters(),
                                                               strict=True)):
        raise ExerciseError("the weights after your step differ from one clipped update from the carried state."
                            "\nHint: go through the parts of a training step; the state changes what the model "
                            "reads, not how it is updated.")
    print("✓ tbptt_step is correct: the state carries over, the gradient stops at the batch, the update matches")


def _check_tbptt_result(loss: float, ref_loss: float, zero_loss: float, earlier: torch.Tensor,
                        new_state: torch.Tensor, ref_state: torch.Tensor) -> None:
    if earlier.grad is not None:
        raise ExerciseError("the gradient flowed back through the incoming state into the earlier batches.\n"
                            "Hint: keep the state's numbers but cut it off from the graph before using it.")
    if abs(loss - zero_loss) < 1e-6 and abs(ref_loss - zero_loss) > 1e-4:
        raise ExerciseError(f"the loss {loss:.5f} is the loss of the model started from zeros: the state did not "
                            "carry over.\nHint: the model should continue from the state it was given.")
    if abs(loss - ref_loss) > 1e-5:
        raise ExerciseError(f"tbptt_step returned loss {loss:.5f}, expected {ref_loss:.5f} (the masked loss of "
                            "the batch, read from the carried state, before the update).")
    if new_state.requires_grad or new_state.grad_fn is not None:
        raise ExerciseError("the returned state is still attached to this batch's graph: the next step would "
                            "back-propagate into this one.\nHint: what should the next batch receive, the numbers "
                            "or the graph?")
    if not torch.allclose(new_state, ref_state.detach(), atol=1e-5):
        raise ExerciseError("the returned state is not the model's final state after this batch.\nHint: the next "
                            "batch continues where this one stopped.")


# ---------------------------------------------------------------- sampling
# (shape, temperature): a tau below 1 first (multiplying instead of dividing
# gives another answer there), then tau = 1, above 1, a batch, a tiny tau and 0.
_TEMPERATURE_CASES = (((6,), 0.5), ((6,), 1.0), ((8,), 2.0), ((3, 7), 0.7), ((5,), 0.01), ((6,), 0.0),
                      ((2, 5), 0.0))


def _temperature_reference(logits: torch.Tensor, tau: float) -> torch.Tensor:
    if tau == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    return torch.softmax(logits / tau, dim=-1)


def _temperature_hint(got: torch.Tensor, logits: torch.Tensor, tau: float) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    if tau == 0:
        if torch.isnan(got).any() or torch.isinf(got).any():
            return ("\nHint: tau = 0 cannot be divided by (logits / 0 is inf, and softmax of inf is nan). "
                    "What does the distribution tend to as tau -> 0? Treat that limit as its own case: a one-hot "
                    "vector per row.")
        return ("\nHint: temperature 0 is greedy: all the probability on the argmax of the logits, 0 "
                "elsewhere (a one-hot vector per row).")
    candidates = [
        (torch.softmax(logits, dim=-1) / tau, f"the probabilities add up to {1 / tau:g}, not 1: was the "
                                              "temperature applied after the softmax? It reshapes the scores, "
                                              "before they become probabilities."),
        (torch.softmax(logits * tau, dim=-1), "it matches multiplying the logits by the temperature: a high "
                                               "temperature should flatten the distribution. Does yours? Look "
                                               "at the formula again."),
        (torch.softmax(logits, dim=-1), "it matches a softmax with no temperature at all: where does tau "
                                        "enter the formula?"),
        (torch.softmax(logits, dim=-1) ** (1 / tau), "the values have the right ratios but do not add up to 1: "
                                                      "a probability distribution must."),
        (torch.exp(logits / tau), "the values have the right ratios but do not add up to 1: what is the "
                                  "denominator of the formula for?"),
        (torch.softmax(logits / tau, dim=0), "it matches a softmax over the wrong dimension: each row (one "
                                             "distribution over the vocabulary) must add up to 1."),
    ]
    for value, hint in candidates:
        if value.shape == got.shape and torch.allclose(got, value, atol=1e-5):
            return "\nHint: " + hint
    return ""


@_keeps_random_state
def check_temperature_probs(temperature_probs: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``temperature_probs(logits, tau) -> probabilities``, the
    temperature softmax ``p_i = exp(l_i / tau) / sum_j exp(l_j / tau)`` over
    the last dimension of ``logits`` (any shape ``(..., V)``).

    ``tau = 0`` is greedy: a one-hot vector at the argmax of each row (the
    limit of the formula as ``tau -> 0``; dividing by 0 gives nan). The
    answer has the shape of ``logits`` and each row adds up to 1. The logits
    must be left as they were.
    """
    for seed, (shape, tau) in enumerate(_TEMPERATURE_CASES):
        gen = torch.Generator().manual_seed(200 + seed)
        logits = torch.randn(shape, generator=gen) * 3
        expected = _temperature_reference(logits, tau)
        given = logits.clone()
        call = f"temperature_probs(logits of shape {tuple(shape)}, tau={tau})"
        got = _call("temperature_probs", temperature_probs, given, tau,
                    shown=f"logits of shape {tuple(shape)}, tau={tau}")
        _expect_tensor(call, got, tuple(expected.shape),
                       "the shape of the logits, one probability per character")
        if not torch.equal(given, logits):
            raise ExerciseError(f"{call} changed its logits; compute a new tensor instead of modifying "
                                "the input in place.")
        got_f = got.detach().float()
        if not torch.allclose(got_f, expected, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}\nfor logits\n{logits}"
                                f"{_temperature_hint(got_f, logits, tau)}")
    print(f"✓ temperature_probs is correct: {len(_TEMPERATURE_CASES)} cases agree with the temperature softmax")


# ---------------------------------------------------------------------- top-p
# (probabilities, p): distinct probabilities so the order is unambiguous; one
# token above p, p = 1 (keep all), a small p, and a batch of rows.
_TOP_P_CASES = (((0.05, 0.4, 0.1, 0.25, 0.15, 0.05 - 1e-3, 1e-3), 0.9),
                ((0.3, 0.05, 0.35, 0.2, 0.1), 0.5),
                ((0.02, 0.95, 0.03), 0.9),
                ((0.1, 0.2, 0.3, 0.4), 1.0),
                ((0.5, 0.3, 0.2), 0.05))


def _top_p_reference(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the most likely tokens while the mass before each is below p, renormalised."""
    sorted_probs, order = probs.sort(-1, descending=True)
    drop_sorted = (sorted_probs.cumsum(-1) - sorted_probs) >= p
    kept = probs.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), 0.0)
    return kept / kept.sum(-1, keepdim=True)


def _top_p_hint(got: torch.Tensor, probs: torch.Tensor, p: float, expected: torch.Tensor) -> str:
    """Name the usual mistake when the wrong answer matches one."""
    kept_mass = probs[got > 0].sum().item() if got.ndim == 1 else None
    sums = got.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4) and torch.allclose(
            got / sums.unsqueeze(-1), expected, atol=1e-5):
        return ("\nHint: you kept the right tokens, but their probabilities add up to "
                f"{sums.flatten()[0].item():.3f}: after dropping the tail, the rest must again add up to 1.")
    if torch.allclose(got.sort(-1, descending=True).values, expected.sort(-1, descending=True).values, atol=1e-5):
        return ("\nHint: the right probabilities, in the wrong places: the answer must stay in vocabulary order "
                "(entry i is still token i), only the tail set to 0.")
    if kept_mass is not None and kept_mass < p - 1e-6:
        return (f"\nHint: the tokens you kept hold {kept_mass:.3f} of the mass, less than p = {p}. Top-p keeps "
                "the smallest set that REACHES p: is the token that crosses p in or out?")
    if torch.equal(got > 0, probs >= p) or torch.equal(got > 0, probs >= 1 - p):
        return ("\nHint: top-p is about the total mass of the most likely tokens, not about each token's own "
                "probability compared with p.")
    if got.ndim == 1 and bool((got > 0).any()) and probs[got > 0].min() < probs[(got == 0)].max(initial=0.0):
        return "\nHint: a less likely token was kept while a more likely one was dropped: keep the most likely."
    return ""


@_keeps_random_state
def check_top_p_probs(top_p_probs: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``top_p_probs(probs, p) -> probabilities``: nucleus sampling's
    filter. Keep the smallest set of most likely tokens whose probabilities
    add up to at least ``p``, set the others to 0, and renormalise so that
    the kept ones add up to 1. Works on the last dimension; the input must be
    left as it was."""
    for index, (values, p) in enumerate(_TOP_P_CASES):
        probs = torch.tensor(values, dtype=torch.float32)
        if index == 1:  # a batch of two rows: the rule applies to each row separately
            probs = torch.stack([probs, probs.flip(0)])
        expected = _top_p_reference(probs, p)
        given = probs.clone()
        call = f"top_p_probs(probs of shape {tuple(probs.shape)}, p={p})"
        got = _call("top_p_probs", top_p_probs, given, p, shown=f"probs of shape {tuple(probs.shape)}, p={p}")
        _expect_tensor(call, got, tuple(expected.shape), "the shape of probs, one probability per token")
        if not torch.equal(given, probs):
            raise ExerciseError(f"{call} changed its input; compute a new tensor instead of modifying it in place.")
        got_f = got.detach().float()
        if not torch.allclose(got_f, expected, atol=1e-5):
            raise ExerciseError(f"{call} returned\n{got_f}\nexpected\n{expected}\nfor probs\n{probs}"
                                f"{_top_p_hint(got_f, probs, p, expected)}")
    print(f"✓ top_p_probs is correct: {len(_TOP_P_CASES)} cases agree with nucleus filtering")


# ------------------------------------------------------------ the whole model
_MODEL_SIZES = {"vocab_size": 11, "embed_dim": 5, "hidden_size": 7}


def _model_parameter_counts(V: int, E: int, H: int) -> dict[str, int]:
    """Embedding V x E, one recurrent layer of k blocks of H(E + H + 2)
    (k = 1, 3, 4 for RNN, GRU, LSTM), output layer H x V + V."""
    return {cell: V * E + k * H * (E + H + 2) + H * V + V for cell, k in (("rnn", 1), ("gru", 3), ("lstm", 4))}


def _forward(model, x, state=None, what: str = "forward"):
    out = _call("char_model", model, x, state, shown=f"x{tuple(x.shape)}, {'state' if state is not None else 'None'}",
                label=f"{type(model).__name__}.forward")
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
        raise ExerciseError(f"the model's {what} returned {type(out).__name__}; expected (logits, state), "
                            "the logits a tensor of shape (batch, time, vocab_size).")
    return out


@_keeps_random_state
def check_char_model(model_class: Callable[..., torch.nn.Module]) -> None:
    """Check a language model written from parts: ``model_class(vocab_size,
    embed_dim, hidden_size)`` builds embedding -> one recurrent layer
    (``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``) -> linear, and ``forward(x,
    state=None)`` maps ids ``(batch, time)`` to ``(logits, state)``.
    Checked: the shapes, the parameter count, causality (a later character
    never changes an earlier logit), independence of the sequences of a
    batch, and that reading a text in two halves with the state equals
    reading it whole."""
    V, E, H = _MODEL_SIZES.values()
    torch.manual_seed(0)
    label = getattr(model_class, "__name__", "the model")
    model = _call("char_model", model_class, V, E, H, shown=f"vocab_size={V}, embed_dim={E}, hidden_size={H}",
                  label=label)
    count, counts = sum(p.numel() for p in model.parameters()), _model_parameter_counts(V, E, H)
    if count not in counts.values():
        raise ExerciseError(f"the model has {count} parameters; with vocab_size={V}, embed_dim={E}, "
                            f"hidden_size={H} an RNN, GRU or LSTM model has {counts['rnn']}, {counts['gru']} or "
                            f"{counts['lstm']}.\nHint: count each part: the embedding table, the recurrent "
                            "layer, and an output layer with one score (and one bias) per token.")
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
    print(f"✓ the model is correct: {count} parameters, causal, batch rows independent, state carried")


def _check_model_structure(model, x: torch.Tensor, logits: torch.Tensor) -> None:
    changed = x.clone()
    changed[:, 5] = (changed[:, 5] + 1) % _MODEL_SIZES["vocab_size"]
    later, _ = _forward(model, changed)
    if not torch.allclose(later[:, :5], logits[:, :5], atol=1e-6):
        raise ExerciseError("changing the character at position 5 changed the logits at positions 0-4: the model "
                            "looks ahead.\nHint: a prediction may only depend on the characters before it. Does "
                            "the recurrent layer read the time steps in the order you think?")
    other_row = x.clone()
    other_row[0] = (other_row[0] + 1) % _MODEL_SIZES["vocab_size"]
    mixed, _ = _forward(model, other_row)
    if not torch.allclose(mixed[1:], logits[1:], atol=1e-6):
        raise ExerciseError("changing the first sequence of the batch changed the logits of the others: the "
                            "sequences are mixed.\nHint: the input is (batch, time). Which dimension does your "
                            "recurrent layer treat as time? (Look up its batch_first option.)")
    first, state = _forward(model, x[:, :4], what="forward on the first half")
    if state is None:
        raise ExerciseError("forward returned no state, so a text cannot be continued.\nHint: return the "
                            "recurrent layer's final state next to the logits.")
    second, _ = _forward(model, x[:, 4:], state, what="forward on the second half")
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
    if h.grad_fn is None:
        raise ExerciseError(f"{call} returned h_t cut off from autograd (no grad_fn), so it could not be trained."
                            "\nHint: compute with torch operations on the given tensors, without .detach() or "
                            "torch.no_grad().")
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


# ------------------------------------------------------------------ surprisal
@_keeps_random_state
def check_surprisal_bits(surprisal_bits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``surprisal_bits(logits, targets) -> (n,)``: for each position,
    ``-log2`` of the probability the softmax of ``logits (n, V)`` gives the
    character ``targets (n,)`` that really came next."""
    import math

    generator = torch.Generator().manual_seed(0)
    for n, vocab_size in ((6, 5), (1, 3), (20, 40)):
        logits = torch.randn(n, vocab_size, generator=generator) * 3
        targets = torch.randint(vocab_size, (n,), generator=generator)
        nats = -torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0]
        expected = nats / math.log(2)
        shown = f"logits of shape {tuple(logits.shape)}, targets {targets.tolist()}"
        got = _call("surprisal_bits", surprisal_bits, logits.clone(), targets.clone(), shown=shown)
        _expect_tensor(f"surprisal_bits({shown})", got, tuple(expected.shape), "one value per position")
        got = got.detach().float()
        if not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            hint = ""
            if torch.allclose(got, nats, atol=1e-4, rtol=1e-4):
                hint = "these are nats (natural log); the question asks for bits. How do the two units relate?"
            elif torch.allclose(got, -expected, atol=1e-4, rtol=1e-4):
                hint = "the sign is flipped: surprisal is MINUS the log-probability, so it is >= 0."
            elif bool((got < 0).any()):
                hint = "surprisal is never negative: -log2 of a probability (at most 1) is >= 0."
            else:
                hint = ("surprisal is about the character that really came next: which probability of each "
                        "row do you need, and in which unit?")
            raise ExerciseError(f"for targets {targets.tolist()} expected {[round(v, 3) for v in expected.tolist()]}, "
                                f"got {[round(v, 3) for v in got.tolist()]}\nHint: {hint}")
    print("✓ surprisal_bits is correct: 3 cases agree with the surprisal in bits")
