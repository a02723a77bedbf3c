"""Notebook 04's exercises: ``train_step`` (one step of the training loop)
and ``tbptt_step`` (the same step carrying the recurrent state across
batches), both checked against :func:`charrnn.training.train_step`, the
step the library's own Trainer takes."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...metrics import masked_cross_entropy
from ...model import CharRNN
from ...training import train_step as _library_train_step
from ...vocab import PAD_ID
from .common import ExerciseError, _call, _keeps_random_state

__all__ = ["check_tbptt_step", "check_train_step"]


# ------------------------------------------------------------------ training
def _train_step_models(seed: int):
    """A small GRU model and a twin with identical weights."""
    torch.manual_seed(seed)
    model = CharRNN(vocab_size=20, cell="gru", embed_dim=8, hidden_size=16)
    twin = CharRNN(model.config)
    twin.load_state_dict(model.state_dict())
    return model, twin


def _same_weights(model: torch.nn.Module, other: torch.nn.Module) -> bool:
    return all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.parameters(), other.parameters(), strict=True))


@_keeps_random_state
def check_train_step(train_step: Callable[..., float], clip: float = 0.05) -> None:
    """Check ``train_step(model, optimizer, inputs, targets, clip) -> float``
    against :func:`charrnn.training.train_step` for three Adam steps.

    One step is: zero the gradients, forward, masked cross-entropy, backward,
    clip the global gradient norm to ``clip``, one optimizer step, and return
    the loss as a Python float. The small ``clip`` makes clipping matter, so
    a step that forgets it ends with different weights.
    """
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(4, 20, (4, 13), generator=generator) for _ in range(3)]
    for tokens in batches:
        tokens[0, 9:] = PAD_ID  # one padded row: the loss must skip it
    yours, reference = _train_step_models(seed=1)
    unclipped, _ = _train_step_models(seed=1)
    optimizer, reference_optimizer, unclipped_optimizer = (
        torch.optim.Adam(model.parameters(), lr=1e-2) for model in (yours, reference, unclipped))
    for step, tokens in enumerate(batches):
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        loss = _call("train_step", train_step, yours, optimizer, inputs, targets, clip,
                     shown="model, optimizer, inputs, targets, clip")
        expected, _, _ = _library_train_step(reference, reference_optimizer, inputs, targets, clip)
        _library_train_step(unclipped, unclipped_optimizer, inputs, targets, None)
        if not isinstance(loss, float):
            raise ExerciseError(f"train_step should return the loss as a Python float, not a tensor, "
                                f"got {type(loss).__name__}")
        if abs(loss - expected) > 1e-5 * max(1.0, abs(expected)):
            raise ExerciseError(f"step {step}: train_step returned loss {loss:.5f}, expected {expected:.5f}\n"
                                "Hint: return the masked loss of this batch as the model scored it before "
                                "the update.")
        if not _same_weights(yours, reference):
            hint = ("the weights match an update without clipping: where in the step must the gradient's "
                    "norm be limited, after the gradients exist and before they are used?"
                    if _same_weights(yours, unclipped) else
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


