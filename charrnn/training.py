"""The training loop: Adam on the masked cross-entropy, with gradient
clipping, periodic validation, checkpoints and resume.

One step is :func:`train_step`: zero the gradients, forward, masked
cross-entropy, backward, clip, update. The loop is :meth:`Trainer.fit`, on
one screen: fetch a batch, take the step, record it, validate now and then,
tell the callbacks, stop on a signal. Everything else (the progress bar,
checkpoint files, samples while training, the live plot of notebooks) is a
callback from :mod:`charrnn.callbacks`; how a signal stops the loop is
:mod:`charrnn.signals`, and the random state a checkpoint keeps is
:mod:`charrnn.rng`.

Fixes over the origin notebook's loop: the clipping threshold actually clips
(1.0, not 1e5), validation loss is measured, a Ctrl-C stops cleanly keeping
the model and history (and writes a checkpoint when a path is set), and a
resumed run continues with the same batches, optimizer state and random
state, so on the CPU it reproduces the uninterrupted run's losses exactly.

Under ``torchrun`` the trainer is given a
:class:`~charrnn.scale.distributed.DistributedContext`: every rank trains a
DistributedDataParallel copy on its own shard of the batches, the logged loss
is the mean over ranks, validation is split over the ranks, and rank 0 alone
prints and writes checkpoints (of the unwrapped model, so they load
anywhere). A checkpoint resumes on any number of processes: step, optimizer
state and history carry over; the batches continue exactly when the world
size is the same.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .callbacks import Checkpoints, ProgressBar, call_event, due_at_this_step
from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import SavedAsDict, TrainConfig
from .devices import SingleProcess, device_to_resume_on
from .errors import ConfigError, ModelError
from .metrics import masked_cross_entropy
from .model import CharRNN, State, map_state
from .rng import capture_rng_state, restore_rng_state
from .signals import StopSignals
from .vocab import PAD_ID, CharVocab


@dataclass
class History(SavedAsDict):
    """Per-step training loss and gradient norm (before clipping), and the
    validation loss at each check, all in nats. ``seconds`` counts the time
    spent in training steps only (not validation, checkpoints or callbacks),
    so ``chars_per_second`` is the training throughput."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    chars_trained: int = 0
    seconds: float = 0.0

    @property
    def chars_per_second(self) -> float:
        """Characters trained on per second of training steps."""
        return self.chars_trained / self.seconds if self.seconds else 0.0

    def record_step(self, step: int, loss: float, grad_norm: float, chars: int, seconds: float) -> None:
        """Add one finished step."""
        self.steps.append(step)
        self.train_loss.append(loss)
        self.grad_norm.append(grad_norm)
        self.chars_trained += chars
        self.seconds += seconds


_ADVICE = "lower the learning rate (--lr) or keep gradient clipping on (--clip-norm)"


def _finite(model: torch.nn.Module) -> bool:
    """True when every weight is a finite number: one nan spreads to every
    output, so a checkpoint holding one is worthless."""
    return all(bool(torch.isfinite(p).all()) for p in model.state_dict().values() if p.is_floating_point())


class MixedPrecision:
    """Autocast and gradient scaling on CUDA when ``enabled`` (bf16 where the
    GPU has it, else fp16 with a scaler); plain float32 everywhere else."""

    def __init__(self, device: torch.device, enabled: bool):
        use = enabled and device.type == "cuda"
        self.dtype = (torch.bfloat16 if use and torch.cuda.is_bf16_supported()
                      else torch.float16 if use else None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def autocast(self):
        """The context to run the forward pass in."""
        return torch.autocast("cuda", dtype=self.dtype) if self.dtype else nullcontext()


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate at ``step``: linear warm-up, then constant or a
    cosine decay to a tenth of ``config.lr`` by the last step."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "cosine" and config.steps > config.warmup_steps:
        progress = min(1.0, (step - config.warmup_steps) / (config.steps - config.warmup_steps))
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return config.lr


FLOAT32 = MixedPrecision(torch.device("cpu"), enabled=False)  # no autocast, no gradient scaling


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor, clip_norm: float | None, state: State | None = None, *,
               precision: MixedPrecision = FLOAT32) -> tuple[float, float, State | None]:
    """One optimisation step on one batch; the rest of training is bookkeeping.

    Clear the old gradients, score the batch (starting from ``state``, or
    from zeros when it is None), backpropagate the masked cross-entropy,
    shorten the gradient to at most ``clip_norm`` (None: no clipping), and
    let the optimizer take its step. ``state`` is detached first: its
    numbers carry the context of the batches before, but no gradient flows
    back into them (truncated backpropagation through time).

    Returns ``(loss, grad_norm, state)``: the loss the model had on this
    batch before the update, as a Python float; the global gradient norm
    before clipping (large values warn of an exploding gradient); and the
    model's final state, detached, to carry into the next batch.
    ``precision`` is the trainer's mixed precision on CUDA; its scaler keeps
    float16 gradients from underflowing and does nothing in float32.
    """
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        logits, state = model(inputs, map_state(state, torch.Tensor.detach))  # logits: (batch, time, vocab)
        loss = masked_cross_entropy(logits, targets)
    precision.scaler.scale(loss).backward()  # DDP averages the gradients over ranks here
    precision.scaler.unscale_(optimizer)  # the true gradients, before they are measured
    max_norm = math.inf if clip_norm is None else clip_norm
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    precision.scaler.step(optimizer)
    precision.scaler.update()
    return loss.item(), float(grad_norm), map_state(state, torch.Tensor.detach)


class Trainer:
    """Trains a :class:`CharRNN` on a batcher (``WindowBatches`` or
    ``RecordBatches``: anything with ``batch(step)`` and ``eval_batches()``).

    ``trainer.fit()`` runs up to ``config.steps`` steps in total and returns
    the :class:`History`; calling it again with more steps continues.
    ``context`` (from :func:`charrnn.scale.distributed.init_distributed`)
    makes it one rank of a multi-process run. ``self.model`` is always the
    plain model; ``self.module`` the one trained (DDP-wrapped there).
    """

    def __init__(self, model: CharRNN, vocab: CharVocab, train_data, val_data=None,
                 config: TrainConfig | None = None, checkpoint_path: str | Path | None = None,
                 data_config: dict | None = None, context: SingleProcess | None = None):
        if len(vocab) != model.config.vocab_size:
            raise ConfigError(f"vocabulary has {len(vocab)} tokens, model expects {model.config.vocab_size}")
        self.config = config or TrainConfig()
        self.context = context or SingleProcess()
        self.context.check_shard(train_data)
        self.device = self.context.device(self.config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # pick the fastest kernels for the batch shape
        self.model = model.to(self.device)
        self.module = self.context.wrap(self.model, self.device)
        self.vocab, self.train_data, self.val_data = vocab, train_data, val_data
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.data_config = dict(data_config or {})
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr,
                                          weight_decay=self.config.weight_decay)
        self.precision = MixedPrecision(self.device, self.config.amp)
        self.step, self.target_step = 0, self.config.steps
        self.history = History()
        self.interrupted = False  # the last fit was stopped (Ctrl-C, SIGTERM)
        self.completed = False    # the last fit reached its target step
        self.stop_signal: int | None = None  # the signal that stopped it, if one did
        self._saved: tuple[int, int] | None = None  # (step, validations) of the checkpoint file

    @property
    def unsaved(self) -> bool:
        """True when ``checkpoint_path`` lacks steps or validations done since."""
        return self._saved != (self.step, len(self.history.val_steps))

    @classmethod
    def from_checkpoint(cls, path: str | Path, train_data, val_data=None,
                        config: TrainConfig | None = None, checkpoint_path: str | Path | None = None,
                        context: SingleProcess | None = None, data_config: dict | None = None,
                        **config_overrides) -> Trainer:
        """Continue a saved run: same model, optimizer, step, history and RNG.
        The batchers must be built with the checkpoint's vocabulary
        (``ckpt['vocab']``) and data settings for an exact continuation, and
        on the same number of processes: another world size carries on from
        the same step with other batches (a warning says so)."""
        ckpt = load_checkpoint(path)
        model, vocab = model_from_checkpoint(ckpt)
        if not _finite(model):
            raise ModelError(f"{path}: its weights are not finite (nan or inf), so training cannot go on "
                             "from it; resume from an earlier checkpoint, or start again with a lower --lr")
        if config is None:
            saved = {**ckpt.get("train_config", {}), **config_overrides}
            if "device" in saved and "device" not in config_overrides:  # the saved device is a default
                saved["device"] = device_to_resume_on(saved["device"], path)
            config = TrainConfig.from_dict(saved)
        saved_data = dict(ckpt.get("data_config") or {})
        saved_world = saved_data.pop("world_size", 1)
        trainer = cls(model.train(), vocab, train_data, val_data, config,
                      checkpoint_path=checkpoint_path or path, data_config=data_config or saved_data,
                      context=context)
        if saved_world != trainer.context.world_size and trainer.context.is_main:
            warnings.warn(f"{path} was trained on {saved_world} process(es), resuming on "
                          f"{trainer.context.world_size}: step, optimizer state and history carry "
                          "over, but the batches differ from an uninterrupted run", stacklevel=2)
        if ckpt.get("optimizer_state"):
            trainer.optimizer.load_state_dict(ckpt["optimizer_state"])
        trainer.step = int(ckpt.get("step", 0))
        trainer.history = History.from_dict(ckpt.get("history"))
        if trainer.checkpoint_path == Path(path):
            trainer._saved = (trainer.step, len(trainer.history.val_steps))
        restore_rng_state(ckpt.get("rng", {}))
        return trainer

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint. In a distributed run call it on every rank:
        rank 0 writes (the plain model: no DDP ``module.`` prefixes) while
        the others wait, so none runs ahead of a half-written file."""
        path = Path(path or self.checkpoint_path or "checkpoint.pt")
        if not _finite(self.model):  # the same weights on every rank: all raise together
            raise ModelError(f"the weights are not finite (nan or inf) at step {self.step}, so no "
                             f"checkpoint is written; {self._kept(path)}; {_ADVICE}")
        if self.context.is_main:
            save_checkpoint(path, self.model, self.vocab, optimizer=self.optimizer, step=self.step,
                            history=self.history.to_dict(), train_config=self.config.to_dict(),
                            data_config={**self.data_config, "world_size": self.context.world_size},
                            rng=capture_rng_state())
        self.context.barrier()
        if path == self.checkpoint_path:
            self._saved = (self.step, len(self.history.val_steps))
        return path

    def _kept(self, path: Path | None) -> str:
        """What a stopped run leaves on disk, for the message that says why."""
        if path is None:
            return "no checkpoint path was set"
        if self._saved is None or path != self.checkpoint_path:
            return f"nothing was written to {path} by this run"
        return f"{path} keeps step {self._saved[0]}, the last good one"

    def _diverged(self, what: str, value: float, step: int) -> ModelError:
        lr = learning_rate(self.config, max(step - 1, 0))
        return ModelError(f"the {what} became {value} at step {step} (learning rate {lr:g}), so training "
                          f"stopped; {self._kept(self.checkpoint_path)}; {_ADVICE}")

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
        """One step of :func:`train_step` at this step's learning rate, each
        batch from zeros; returns (loss, gradient norm before clipping)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.step)
        loss, grad_norm, _ = train_step(self.module, self.optimizer, inputs, targets, self.config.clip_norm,
                                        precision=self.precision)
        return loss, grad_norm

    def validate(self) -> float | None:
        """Validation loss (nats) on up to ``config.eval_batches`` batches,
        added to the history; None without validation data."""
        if self.val_data is None:
            return None
        report = self.context.evaluate(self.model, self.val_data, self.device, self.config.eval_batches)
        if not math.isfinite(report.nats):
            raise self._diverged("validation loss", report.nats, self.step)
        self.history.val_steps.append(self.step)
        self.history.val_loss.append(report.nats)
        return report.nats

    def fit(self, steps: int | None = None, progress: bool = True, callbacks: Sequence = ()) -> History:
        """Train until ``steps`` steps in total (default ``config.steps``).

        ``callbacks`` are told of each step (see :mod:`charrnn.callbacks`);
        a progress bar and, with a ``checkpoint_path``, checkpoint files are
        callbacks added here. Ctrl-C (or SIGTERM) stops after the current
        step, or after the validation pass under way (a second signal stops
        that at once, and the next ``fit`` or a resumed run redoes it): model
        and history stay, ``trainer.interrupted`` and ``trainer.stop_signal``
        are set, and calling ``fit`` again goes on. A loss that becomes nan
        or inf raises :class:`ModelError`; no checkpoint is written then.
        """
        self.target_step = self.config.steps if steps is None else steps
        self.interrupted, self.completed, self.stop_signal = False, False, None
        callbacks = self._callbacks(progress, callbacks)  # the progress bar, checkpoints, yours
        stop = StopSignals(hold_always=self.context.is_distributed)
        self.module.train()
        call_event(callbacks, "on_fit_start", self)
        try:
            with stop:
                if self._validation_cut_short():
                    self._validate(callbacks, stop)
                while self.step < self.target_step:
                    started = time.perf_counter()
                    inputs, targets = self._batch_on_device()
                    with stop.holding():  # a signal waits for the update and its record: they go together
                        loss, grad_norm = self.train_step(inputs, targets)
                        chars = int((targets != PAD_ID).sum())
                        loss, chars, stop_asked = self.context.step_totals(loss, chars, stop.received)
                        if not math.isfinite(loss):  # the weights are lost too: stop before anything is saved
                            raise self._diverged("loss", loss, self.step + 1)
                        self.step += 1
                        self.history.record_step(self.step, loss, grad_norm, chars, time.perf_counter() - started)
                    if stop_asked:
                        raise KeyboardInterrupt
                    if due_at_this_step(self, self.config.eval_every):
                        self._validate(callbacks, stop)
                    call_event(callbacks, "on_step_end", self)  # checkpoints are written here, when due
                    stop.stop_if_noted()  # a signal that came during validation
            self.completed = True
        except KeyboardInterrupt:
            self.interrupted, self.stop_signal = True, stop.signum
            self._say_interrupted()
        finally:
            call_event(callbacks, "on_fit_end", self)  # an interrupted run's checkpoint is written here
        return self.history

    def _validate(self, callbacks: list, stop: StopSignals) -> None:
        """:meth:`validate`, which a first signal lets finish, then the callbacks."""
        with stop.holding("validation"):
            report = self.validate()
        if report is not None:
            call_event(callbacks, "on_validation_end", self)

    def _validation_cut_short(self) -> bool:
        """True when a stop cut short the validation of the step the run is
        at (a second Ctrl-C during the pass, an exception in it): the
        checkpoint lacks it, so ``fit`` does it first, and the history reads
        as an uninterrupted run's. Nothing needs saving for this in the file."""
        return (self.val_data is not None and self.step > 0 and due_at_this_step(self, self.config.eval_every)
                and self.history.val_steps[-1:] != [self.step])

    def _say_interrupted(self) -> None:
        if self.context.is_main:
            saved = f", checkpoint written to {self.checkpoint_path}" if self.checkpoint_path else ""
            tqdm.write(f"Interrupted at step {self.step}: model and history kept{saved}.")

    def _callbacks(self, progress: bool, extra: Sequence) -> list:
        every = self.config.checkpoint_every or self.config.eval_every
        hooks = [Checkpoints(every)] if self.checkpoint_path else []
        hooks += ([ProgressBar()] if progress else []) + list(extra)
        if not self.context.is_main:
            hooks = [hook for hook in hooks if getattr(hook, "all_ranks", False)]
        return hooks

    def _batch_on_device(self) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.train_data.batch(self.step)
        if self.device.type == "cuda":  # page-locked host memory: asynchronous copies to the GPU
            inputs, targets = inputs.pin_memory(), targets.pin_memory()
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


def train(model: CharRNN, vocab: CharVocab, train_data, val_data=None, progress: bool = True,
          callbacks: Sequence = (), **config) -> Trainer:
    """Shortcut: ``trainer = train(model, vocab, batches, val, steps=300, lr=3e-3)``."""
    trainer = Trainer(model, vocab, train_data, val_data, TrainConfig(**config))
    trainer.fit(progress=progress, callbacks=callbacks)
    return trainer
