"""What every exercise check shares: the error a student sees, the shortcuts
each exercise refuses, the safe call of the student's function, and the one
wording of each failure that several checks report.

A message written once here reads the same in every notebook, so a student
who met "changed its input in place" in notebook 01 recognises it in 05.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import wraps
from importlib import import_module
from unittest import mock

import torch

from . import display

# True only inside nbgrader's hidden re-check (see charrnn.course.nbgrader_course._hidden_recheck): a check
# may then ask for what only a handed-in homework has (notebook 09: a model of the student's own text),
# while the same cell still runs as shipped in the notebook.
GRADING = False


class ExerciseError(AssertionError):
    """A student's exercise function gave a wrong answer (or none yet)."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error in a notebook: the message and
        its hint, not the check's code (:mod:`.display`). Plain Python
        ignores this and prints the whole traceback."""
        return display.render(self)


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
# The checks compute their own reference outside that window, often with the
# very function refused here.
SHORTCUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "encode": (("charrnn.vocab", "CharVocab.encode"), ("charrnn.vocab", "CharVocab.encode_array"),
               ("charrnn.vocab", "CharVocab.decode"), ("charrnn.vocab", "CharVocab.unknown_chars")),
    "pad_batch": (("charrnn.batches", "pad_sequences"), ("charrnn", "pad_sequences"),
                  ("torch.nn.utils.rnn", "pad_sequence")),
    "rnn_layer": (("torch.nn", "RNN.forward"), ("torch", "rnn_tanh"), ("charrnn.layers", "ScratchRNN.forward")),
    "masked_loss": (("torch.nn.functional", "cross_entropy"), ("torch.nn.functional", "nll_loss"),
                    ("torch.nn", "CrossEntropyLoss.forward"), ("torch.nn", "NLLLoss.forward"),
                    ("charrnn.metrics", "masked_cross_entropy"), ("charrnn", "masked_cross_entropy")),
    "train_step": (("charrnn.training", "Trainer.train_step"), ("charrnn.training", "train_step"),
                   ("charrnn", "train_step")),
    "temperature_probs": (("charrnn.sample", "next_char_probs"), ("charrnn", "next_char_probs"),
                          ("charrnn.sample", "temperature_probs"), ("charrnn.sample", "scale_by_temperature"),
                          ("charrnn.sample", "SamplingRule.probs"),
                          # PyTorch's softmax already guards against overflow: that is part of the exercise
                          ("torch", "softmax"), ("torch", "log_softmax"), ("torch", "Tensor.softmax"),
                          ("torch", "Tensor.log_softmax"), ("torch.nn.functional", "softmax"),
                          ("torch.nn.functional", "log_softmax"), ("torch.special", "softmax"),
                          ("torch.special", "log_softmax")),
    # the notebook's own surprisal helpers (charrnn.viz.surprisal) as well as the metric they wrap
    "most_surprising": (("charrnn.viz.surprisal", "char_surprisal"), ("charrnn.viz.surprisal", "surprisal_bits"),
                        ("charrnn.metrics", "surprisal_bits"), ("charrnn", "surprisal_bits"),
                        ("torch.nn.functional", "cross_entropy"), ("torch.nn.functional", "nll_loss")),
    "top_p_probs": (("charrnn.sample", "next_char_probs"), ("charrnn", "next_char_probs"),
                    ("charrnn.sample", "top_p_filter"), ("charrnn.sample", "SamplingRule.probs")),
    "char_model": (("charrnn.model", "CharRNN.forward"),),
    # counted on paper from the shapes: building any layer (and asking it) is the shortcut
    "count_parameters": (("torch.nn", "Module.__init__"),),
    "tbptt_step": (("charrnn.training", "Trainer.train_step"), ("charrnn.training", "train_step"),
                   ("charrnn", "train_step")),
    "lstm_step": (("torch.nn", "LSTM.forward"), ("torch.nn", "LSTMCell.forward"), ("torch.nn", "GRUCell.forward"),
                  ("torch", "lstm_cell")),
    "rnn_backward": (("torch.autograd", "grad"), ("torch.autograd", "backward"), ("torch", "Tensor.backward"),
                     ("torch.func", "grad"), ("torch.func", "vjp")),
    # notebooks 07 and 08: the origin notebook's bugs, fixed by hand
    "training_windows": (("charrnn.batches", "WindowBatches.eval_batches"), ("charrnn.batches", "WindowBatches.batch")),
    "build_stoi": (("charrnn.vocab", "CharVocab.__init__"), ("charrnn.vocab", "CharVocab.from_texts")),
    "frame_record": (("charrnn.vocab", "CharVocab.encode"), ("charrnn.vocab", "CharVocab.encode_array")),
    "clip_gradients": (("torch.nn.utils", "clip_grad_norm_"), ("torch.nn.utils.clip_grad", "clip_grad_norm_"),
                       ("torch.nn.utils", "clip_grad_norm")),
    "epoch_mean": (("charrnn.metrics", "evaluate"), ("charrnn", "evaluate"), ("numpy", "average"),
                   ("statistics", "fmean")),
    "greedy_carrying_state": (("charrnn", "generate"), ("charrnn", "generate_batch"),
                              ("charrnn.sample", "stream_batch")),
}


@contextmanager
def refusing_shortcuts(exercise: str) -> Iterator[None]:
    """While the block runs, every function in ``SHORTCUTS[exercise]`` raises
    an :class:`ExerciseError` saying the exercise is to be done by hand."""
    entries = SHORTCUTS.get(exercise, ())
    # Import every module first: one imported for the first time while another is patched would bind the
    # refusal with `from ... import ...` and keep it after the check.
    modules = [import_module(module_name) for module_name, _ in entries]
    with ExitStack() as stack:
        for module, (module_name, path) in zip(modules, entries, strict=True):
            *owners, attribute = path.split(".")
            owner = module
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
    solve exercise ``name`` are refused meanwhile (and only meanwhile)."""
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


# ------------------------------------------------- failures several checks report
def _expect_tensor(call: str, got, shape: tuple, meaning: str, hint: str = "") -> None:
    """Raise if the student's answer is not a tensor of ``shape``; ``meaning``
    says what that shape stands for, ``hint`` how to fix a non-tensor."""
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a torch tensor "
                            f"of shape {shape}: {meaning}.{hint}")
    if tuple(got.shape) != tuple(shape):
        raise ExerciseError(f"{call} returned shape {tuple(got.shape)}, expected {shape}: {meaning}.")


def _expect_on_graph(call: str, got: torch.Tensor, needed_for: str, what: str = "a tensor") -> None:
    """Raise if ``got`` left the autograd graph: ``needed_for`` says what the
    rest of the course then could not do with it."""
    if got.grad_fn is None:
        raise ExerciseError(f"{call} returned {what} cut off from autograd (no grad_fn), so {needed_for}."
                            "\nHint: compute with torch operations on the tensors you were given; no .detach(), "
                            ".data, .numpy() or torch.no_grad().")


def _changed_in_place(call: str, what: str, now: object = None,
                      advice: str = "compute a new tensor instead of modifying what you were given") -> ExerciseError:
    """The error for a function that wrote into its input ``what`` (shown as
    it is ``now``, when given): the caller still needs its input as it was."""
    shown = "" if now is None else f" (it is now {now})"
    return ExerciseError(f"{call} changed its {what} in place{shown}; {advice}.")


def _expect_unchanged(call: str, given: dict[str, torch.Tensor], originals: dict[str, torch.Tensor]) -> None:
    """Raise if a tensor handed to the student's function (``given``, by the
    name a message calls it) no longer equals its copy in ``originals``."""
    for what, tensor in given.items():
        if not torch.equal(tensor.detach(), originals[what]):
            raise _changed_in_place(call, what)
