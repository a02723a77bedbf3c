"""Notebook 04's exercises: ``train_step`` (one step of the training loop)
and ``tbptt_step`` (the same step carrying the recurrent state across
batches), both checked against :func:`charrnn.training.train_step`, the
step the library's own Trainer takes."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import torch

from ...metrics import masked_cross_entropy
from ...model import CharRNN
from ...training import train_step as _library_train_step
from ...vocab import PAD_ID
from .common import ExerciseError, _call, _keeps_random_state

__all__ = ["check_tbptt_step", "check_train_step"]


# ------------------------------------------------------------------ training
# (cell, model seed, batch shape, clip): small models and a clip far below their gradient norms, so that a
# step that does not clip ends with other weights. Row 0 of every batch ends in padding.
_STEP_CASES = (("gru", 1, (4, 13), 0.05), ("lstm", 2, (3, 10), 0.05))
_STEPS = 3

# The mistakes of notebook 04's broken_train_step, and the other usual ones, as options of _variant_step
# (the first value of each is the right one), each with the hint that names it without giving the line.
_STEP_OPTIONS = {
    "clears": (True, False),
    "clip_at": ("before the update", "after the update", "never"),
    "loss_on": ("targets", "inputs", "every position"),
    "loss_read": ("before the update", "after the update"),
}
_UNCLIPPED = ("the updates used gradients longer than clip. Clipping protects an update only if it shortens the "
              "gradient that update reads: when do the gradients exist, and when is it too late to change them?")
_STEP_HINTS = {
    ("clears", False): "the updates used the gradients of this batch and of every batch before it, added up: "
                       "PyTorch adds the gradients of each backward pass to what a parameter's .grad already "
                       "holds. What must .grad hold when this batch's backward pass starts?",
    ("clip_at", "after the update"): _UNCLIPPED,
    ("clip_at", "never"): _UNCLIPPED,
    ("loss_on", "inputs"): "the loss matches one scored against the inputs: at each position the model was asked "
                           "for the token it has just read, an answer it can see. Which tensor holds the token that "
                           "comes next?",
    ("loss_on", "every position"): "the loss matches one that also scores the <pad> positions. Which positions "
                                   "does notebook 03's loss leave out, and why?",
    ("loss_read", "after the update"): "the returned loss matches the batch's loss after the update, when the "
                                       "weights have already moved. Which loss did the update act on?",
}


def _step_model(cell: str, seed: int) -> CharRNN:
    """A small model; the same seed gives the same weights, so every run of a case starts alike."""
    torch.manual_seed(seed)
    return CharRNN(vocab_size=20, cell=cell, embed_dim=8, hidden_size=16)


def _same_weights(model: torch.nn.Module, other: torch.nn.Module) -> bool:
    return all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.parameters(), other.parameters(), strict=True))


def _step_batches(seed: int, shape: tuple[int, int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``_STEPS`` batches of (inputs, targets), the targets shifted by one, row 0 ending in <pad>."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(_STEPS):
        tokens = torch.randint(4, 20, (shape[0], shape[1] + 1), generator=generator)
        tokens[0, shape[1] - 3:] = PAD_ID
        batches.append((tokens[:, :-1], tokens[:, 1:]))
    return batches


def _variant_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_on: str) -> torch.Tensor:
    logits = model(inputs)[0]
    if loss_on == "every position":
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    return masked_cross_entropy(logits, inputs if loss_on == "inputs" else targets)


def _variant_step(model, optimizer, inputs, targets, clip, *, clears, clip_at, loss_on, loss_read) -> float:
    """One training step, right or with the mistakes the options name."""
    if clears:
        optimizer.zero_grad()
    loss = _variant_loss(model, inputs, targets, loss_on)
    loss.backward()
    if clip_at == "before the update":
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    if clip_at == "after the update":
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if loss_read == "after the update":
        with torch.no_grad():
            return _variant_loss(model, inputs, targets, loss_on).item()
    return loss.item()


def _trajectory(step: Callable, cell: str, seed: int, batches, clip: float) -> list[tuple[float, torch.Tensor]]:
    """``(returned loss, all weights after the step)`` for each batch, from the case's initial weights."""
    model = _step_model(cell, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    found = []
    for inputs, targets in batches:
        loss = step(model, optimizer, inputs, targets, clip)
        found.append((loss, torch.cat([p.detach().flatten() for p in model.parameters()])))
    return found


def _agree(a: tuple[float, torch.Tensor], b: tuple[float, torch.Tensor]) -> bool:
    return abs(a[0] - b[0]) <= 1e-5 * max(1.0, abs(b[0])) and torch.allclose(a[1], b[1], atol=1e-5)


def _step_mistakes(yours: list, cell: str, seed: int, batches, clip: float) -> list[str] | None:
    """The hints of the fewest usual mistakes that reproduce the student's
    losses and weights at every step, or None if no combination does."""
    names = list(_STEP_OPTIONS)
    combinations = sorted(itertools.product(*_STEP_OPTIONS.values()),
                          key=lambda c: sum(v != _STEP_OPTIONS[n][0] for n, v in zip(names, c, strict=True)))
    for values in combinations[1:]:
        options = dict(zip(names, values, strict=True))
        variant = _trajectory(functools.partial(_variant_step, **options), cell, seed, batches, clip)
        if all(_agree(y, v) for y, v in zip(yours, variant, strict=True)):
            return list(dict.fromkeys(_STEP_HINTS[n, v] for n, v in options.items() if v != _STEP_OPTIONS[n][0]))
    return None


def _step_error(step: int, yours: tuple[float, torch.Tensor], expected: tuple[float, torch.Tensor],
                hints: list[str] | None) -> ExerciseError:
    """What differs at the first step that differs, and what to think about."""
    differs = (f"train_step returned loss {yours[0]:.5f}, expected {expected[0]:.5f}"
               if abs(yours[0] - expected[0]) > 1e-5 * max(1.0, abs(expected[0])) else "the loss is right")
    gap = float((yours[1] - expected[1]).abs().max())
    weights = ("the weights after it are right" if torch.allclose(yours[1], expected[1], atol=1e-5) else
               f"the weights after it differ from charrnn.Trainer.train_step's by up to {gap:.2g}")
    message = f"step {step}: {differs}; {weights}."
    if hints is None:
        return ExerciseError(message + "\nHint: this is none of the usual mistakes the check knows. Go through the "
                             "goal of one step: which gradient does the update use, how long may it be, what is the "
                             "loss scored against, and when is it read?")
    if len(hints) == 1:
        return ExerciseError(f"{message}\nHint: {hints[0]}")
    listed = "\n".join(f"  {i}. {hint}" for i, hint in enumerate(hints, 1))
    return ExerciseError(f"{message}\nHint: {len(hints)} things to fix, it seems:\n{listed}")


@_keeps_random_state
def check_train_step(train_step: Callable[..., float]) -> None:
    """Check ``train_step(model, optimizer, inputs, targets, clip) -> float``
    against :func:`charrnn.training.train_step` for three Adam steps on
    each of two small models (a GRU and an LSTM).

    After one step the weights have moved once, by the optimizer, along
    this batch's gradient alone (nothing left from earlier batches) of the
    masked loss against the targets, shortened to a global norm of at most
    ``clip`` before the update read it; the function returns that loss, as
    the model scored the batch before the update, as a Python float. The
    small ``clip`` makes clipping matter. When the losses or weights differ,
    the check replays the usual mistakes (those of notebook 04's
    ``broken_train_step`` among them) and names each one that, together,
    reproduce the student's numbers.
    """
    for cell, seed, shape, clip in _STEP_CASES:
        batches = _step_batches(seed, shape)
        yours = _trajectory(_checked_step(train_step, shape), cell, seed, batches, clip)
        reference = _trajectory(lambda *args: _library_train_step(*args)[0], cell, seed, batches, clip)
        for step, (got, expected) in enumerate(zip(yours, reference, strict=True)):
            if not _agree(got, expected):
                raise _step_error(step, got, expected, _step_mistakes(yours, cell, seed, batches, clip))
    print(f"✓ train_step is correct: {len(_STEP_CASES)} models, {_STEPS} steps each, agree with "
          "charrnn.Trainer.train_step")


def _checked_step(train_step: Callable[..., float], shape: tuple[int, int]) -> Callable[..., float]:
    """The student's step, called safely, its answer required to be a float."""
    def step(*args):
        loss = _call("train_step", train_step, *args,
                     shown=f"model, optimizer, inputs{shape}, targets{shape}, clip={args[-1]}")
        if not isinstance(loss, float):
            graph = " that still holds this step's graph" if getattr(loss, "grad_fn", None) is not None else ""
            raise ExerciseError(f"train_step should return the loss as a Python float, got "
                                f"{type(loss).__name__}{graph}.\nHint: a loop that keeps such values keeps "
                                "every step's graph alive with them. How do you turn a one-number tensor into "
                                "a plain number?")
        return loss
    return step


# ------------------------------------------------------- truncated BPTT step
def _tbptt_setup(seed: int):
    """A small GRU model, its optimizer, a batch, and an incoming state that
    is still attached to the graph of an earlier batch (as it would be if
    nobody detached it)."""
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
    reference, reference_optimizer, *_ = _tbptt_setup(0)
    result = _call("tbptt_step", tbptt_step, yours, optimizer, inputs, targets, state, 1.0,
                   shown="model, optimizer, inputs(3, 5), targets(3, 5), state, clip=1.0")
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], torch.Tensor)):
        raise ExerciseError(f"tbptt_step returned {type(result).__name__}; expected (loss, new_state).")
    loss, new_state = result
    with torch.no_grad():  # what a step that dropped the state would have scored
        zero_loss = masked_cross_entropy(reference(inputs)[0], targets).item()
    reference_loss, _, reference_state = _library_train_step(reference, reference_optimizer, inputs, targets, 1.0,
                                                             state)
    _check_tbptt_result(float(loss), reference_loss, zero_loss, earlier, new_state, reference_state)
    if not _same_weights(yours, reference):
        raise ExerciseError("the weights after your step differ from one clipped update from the carried state."
                            "\nHint: go through the parts of a training step; the state changes what the model "
                            "reads, not how it is updated.")
    print("✓ tbptt_step is correct: the state carries over, the gradient stops at the batch, the update matches")


def _check_tbptt_result(loss: float, ref_loss: float, zero_loss: float, earlier: torch.Tensor,
                        new_state: torch.Tensor, ref_state: torch.Tensor) -> None:
    """Name what went wrong with the state or the loss, in the order a student would fix it."""
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


