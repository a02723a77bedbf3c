"""The training loop: Adam on the masked cross-entropy, with gradient
clipping, periodic validation, a progress bar, checkpoints and resume.

Fixes over the origin notebook's loop: the clipping threshold actually clips
(1.0, not 1e5), validation loss is measured, a Ctrl-C stops cleanly keeping
the model and history (and writes a checkpoint when a path is set), and a
resumed run continues with the same batches, optimizer state and random
state, so on the CPU it reproduces the uninterrupted run's losses exactly.

Under ``torchrun`` (a :class:`~charrnn.distributed.DistributedContext` with
several ranks) every rank trains a DistributedDataParallel copy on its own
shard of the batches; the logged loss is the mean over ranks, validation is
split over the ranks and summed, and rank 0 alone prints and writes
checkpoints (of the unwrapped model, so they load anywhere). A checkpoint
resumes on any number of processes: step, optimizer state and history carry
over; the batches continue exactly when the world size is the same, and
differ from the uninterrupted run's when it changes (rank 0 keeps its stream,
the other ranks' shares come and go).
"""

from __future__ import annotations

import math
import random
import warnings
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from itertools import chain, islice
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .dashboard import LiveLossPlot
from .distributed import DistributedContext
from .errors import CheckpointError
from .metrics import LossReport, evaluate, masked_cross_entropy
from .model import CharRNN
from .vocab import PAD_ID, CharVocab


@dataclass
class TrainConfig:
    """Optimisation settings (the data settings live with the batcher)."""

    steps: int = 1000
    lr: float = 3e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0    # max global gradient norm; None: no clipping
    schedule: str = "constant"       # or "cosine": decay to lr/10 by the last step
    warmup_steps: int = 0
    eval_every: int = 100            # validation every so many steps (and at the end)
    eval_batches: int | None = 20    # cap on validation batches per check; None: all
    checkpoint_every: int | None = None  # default: at every validation
    device: str = "auto"             # "auto" picks CUDA, then MPS, then CPU
    amp: bool = True                 # mixed precision on CUDA (bf16 where supported)

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None, got {self.clip_norm}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be positive, got {self.eval_every}")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class History:
    """Per-step training loss and gradient norm (before clipping), and the
    validation loss at each check, all in nats."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    chars_trained: int = 0
    seconds: float = 0.0

    @property
    def chars_per_second(self) -> float:
        return self.chars_trained / self.seconds if self.seconds else 0.0


class _StopSignals:
    """While ``fit`` runs: SIGINT (Ctrl-C, Jupyter's interrupt button) and
    SIGTERM (sent by torchrun, batch schedulers, ``kill``) ask training to
    stop. Inside :meth:`holding` (an update in progress) or with
    ``hold_always`` (a distributed run, where the ranks must agree on the
    step they stop after) the signal is only noted in ``received``;
    elsewhere it raises ``KeyboardInterrupt`` at once, as Ctrl-C does."""

    def __init__(self, hold_always: bool = False):
        self.received = False
        self._holding = hold_always
        self._hold_always = hold_always
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.received = True
        if not self._holding:
            raise KeyboardInterrupt

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers: main thread only
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    @contextmanager
    def holding(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = self._hold_always


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Trains a :class:`CharRNN` on a batcher (``WindowBatches`` or
    ``RecordBatches``: anything with ``batch(step)`` and ``eval_batches()``).

    ``trainer.fit()`` runs up to ``config.steps`` steps in total and returns
    the :class:`History`; calling it again with more steps continues.

    ``context`` (from :func:`charrnn.distributed.init_distributed`) makes it
    one rank of a DistributedDataParallel run; ``train_data`` must then be
    built with the context's ``rank`` and ``world_size``. ``self.model`` is
    always the plain model; ``self.module`` the one trained (DDP-wrapped).
    """

    def __init__(self, model: CharRNN, vocab: CharVocab, train_data, val_data=None,
                 config: TrainConfig | None = None, checkpoint_path: str | Path | None = None,
                 data_config: dict | None = None, context: DistributedContext | None = None):
        if len(vocab) != model.config.vocab_size:
            raise CheckpointError(f"vocabulary has {len(vocab)} tokens, model expects "
                                  f"{model.config.vocab_size}")
        self.config = config or TrainConfig()
        self.context = context or DistributedContext()
        shard = (getattr(train_data, "rank", 0), getattr(train_data, "world_size", 1))
        if self.context.is_distributed and shard != (self.context.rank, self.context.world_size):
            raise ValueError(f"rank {self.context.rank} of {self.context.world_size} needs its own "
                             f"share of the batches, but train_data has rank, world_size = {shard}; "
                             "build it with rank=context.rank, world_size=context.world_size")
        self.device = self.context.device(self.config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # pick the fastest kernels for the batch shape
        self.model = model.to(self.device)
        self.module = self.context.wrap(self.model, self.device)
        self.vocab, self.train_data, self.val_data = vocab, train_data, val_data
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.data_config = data_config or {}
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr,
                                          weight_decay=self.config.weight_decay)
        self.step = 0
        self.history = History()
        self.interrupted = False
        use_amp = self.config.amp and self.device.type == "cuda"
        self._amp_dtype = (torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported()
                           else torch.float16 if use_amp else None)
        self._scaler = torch.amp.GradScaler("cuda", enabled=self._amp_dtype == torch.float16)

    # ----------------------------------------------------------------- resume
    @classmethod
    def from_checkpoint(cls, path: str | Path, train_data, val_data=None,
                        config: TrainConfig | None = None, checkpoint_path: str | Path | None = None,
                        context: DistributedContext | None = None, **config_overrides) -> "Trainer":
        """Continue a saved run: same model, optimizer, step, history and RNG.
        The batchers must be built with the checkpoint's vocabulary
        (``ckpt['vocab']``) and data settings for an exact continuation, and
        on the same number of processes: another world size carries on from
        the same step with other batches (a warning says so)."""
        ckpt = load_checkpoint(path)
        model, vocab = model_from_checkpoint(ckpt)
        if config is None:
            config = TrainConfig.from_dict({**ckpt.get("train_config", {}), **config_overrides})
        data_config = dict(ckpt.get("data_config") or {})
        saved_world = data_config.pop("world_size", 1)
        trainer = cls(model.train(), vocab, train_data, val_data, config,
                      checkpoint_path=checkpoint_path or path, data_config=data_config,
                      context=context)
        if saved_world != trainer.context.world_size and trainer.context.is_main:
            warnings.warn(f"{path} was trained on {saved_world} process(es), resuming on "
                          f"{trainer.context.world_size}: step, optimizer state and history carry "
                          "over, but the batches differ from an uninterrupted run", stacklevel=2)
        if ckpt.get("optimizer_state"):
            trainer.optimizer.load_state_dict(ckpt["optimizer_state"])
        trainer.step = int(ckpt.get("step", 0))
        trainer.history = History(**ckpt.get("history", {}))
        _set_rng_state(ckpt.get("rng", {}))
        return trainer

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint. In a distributed run call it on every rank:
        rank 0 writes (the plain model: no DDP ``module.`` prefixes) while
        the others wait, so none runs ahead of a half-written file."""
        path = Path(path or self.checkpoint_path or "checkpoint.pt")
        if self.context.is_main:
            save_checkpoint(path, self.model, self.vocab, optimizer=self.optimizer, step=self.step,
                            history=asdict(self.history), train_config=asdict(self.config),
                            data_config={**self.data_config, "world_size": self.context.world_size},
                            rng=_rng_state())
        self.context.barrier()
        return path

    # --------------------------------------------------------------- training
    def _lr_at(self, step: int) -> float:
        c = self.config
        if c.warmup_steps and step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        if c.schedule == "cosine" and c.steps > c.warmup_steps:
            progress = min(1.0, (step - c.warmup_steps) / (c.steps - c.warmup_steps))
            return c.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        return c.lr

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
        """One forward/backward/update; returns (loss, gradient norm before clipping)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr_at(self.step)
        autocast = (torch.autocast("cuda", dtype=self._amp_dtype) if self._amp_dtype else nullcontext())
        with autocast:
            logits, _ = self.module(inputs)  # DDP averages the gradients over ranks in backward()
            loss = masked_cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward()
        self._scaler.unscale_(self.optimizer)
        max_norm = self.config.clip_norm if self.config.clip_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self._scaler.step(self.optimizer)
        self._scaler.update()
        return loss.item(), float(grad_norm)

    def _evaluate_shard(self) -> LossReport:
        """Validation loss over the first ``eval_batches`` batches; in a
        distributed run each rank scores every ``world_size``-th of them and
        the sums are added up, so all ranks get the same number."""
        ctx = self.context
        if not ctx.is_distributed:
            return evaluate(self.model, self.val_data, self.device, max_batches=self.config.eval_batches)
        batches = islice(self.val_data.eval_batches(), ctx.rank, self.config.eval_batches, ctx.world_size)
        first = next(batches, None)
        total, count = 0.0, 0
        if first is not None:  # fewer batches than ranks: this one has none
            local = evaluate(self.model, chain([first], batches), self.device)
            total, count = local.nats * local.tokens, local.tokens
        total, count = ctx.all_reduce_sum([total, count])
        if count == 0:
            raise ValueError("nothing to evaluate: the validation data holds no non-pad target")
        return LossReport(total / count, int(count))

    def validate(self) -> float | None:
        if self.val_data is None:
            return None
        report = self._evaluate_shard()
        self.history.val_steps.append(self.step)
        self.history.val_loss.append(report.nats)
        return report.nats

    def fit(self, steps: int | None = None, progress: bool = True, live_plot: bool = False,
            callbacks: Sequence = ()) -> History:
        """Train until ``steps`` total steps (default ``config.steps``).

        ``live_plot=True`` redraws a loss plot under the progress bar while
        training in a notebook (and does nothing elsewhere). ``callbacks``
        are objects with ``on_step(trainer)`` (called after every step and its
        validation) and/or ``on_end(trainer)`` (called when ``fit`` returns,
        interrupted or not); in a distributed run, on rank 0 only.

        Ctrl-C (or SIGTERM) stops after the current step: the model and
        history stay as they are, a checkpoint is written if a path was
        given, and ``trainer.interrupted`` is set. Call ``fit`` again to go
        on. The progress bar shows the throughput in characters per second
        (of all ranks together), and a line with it is printed at the end.
        """
        target = self.config.steps if steps is None else steps
        c, h, ctx = self.config, self.history, self.context
        checkpoint_every = c.checkpoint_every or c.eval_every
        self.interrupted = False
        callbacks = list(callbacks) if ctx.is_main else []
        if live_plot and ctx.is_main:
            callbacks.append(LiveLossPlot())
        on_step = [cb.on_step for cb in callbacks if hasattr(cb, "on_step")]
        self.module.train()
        show = progress and ctx.is_main
        bar = tqdm(total=target, initial=self.step, desc="training", unit="step",
                   disable=not show, dynamic_ncols=True)
        pin = self.device.type == "cuda"  # page-locked host memory: asynchronous copies to the GPU
        first_step, first_chars = self.step, h.chars_trained
        fit_started = started = time.perf_counter()
        try:
            with _StopSignals(hold_always=ctx.is_distributed) as stop:
                while self.step < target:
                    inputs, targets = self.train_data.batch(self.step)
                    if pin:
                        inputs, targets = inputs.pin_memory(), targets.pin_memory()
                    inputs = inputs.to(self.device, non_blocking=True)
                    targets = targets.to(self.device, non_blocking=True)
                    # A stop signal in the middle of an update would leave weights
                    # and step count out of step; it is acted on once the step is done.
                    with stop.holding():
                        loss, grad_norm = self.train_step(inputs, targets)
                        chars = int((targets != PAD_ID).sum())
                        # One collective per step: the mean loss, all ranks' characters,
                        # and whether any rank was asked to stop (all stop together).
                        loss, chars, stops = ctx.all_reduce_sum([loss, chars, stop.received])
                        loss /= ctx.world_size
                        self.step += 1
                        h.steps.append(self.step)
                        h.train_loss.append(loss)
                        h.grad_norm.append(grad_norm)
                        h.chars_trained += int(chars)
                    if stops:
                        raise KeyboardInterrupt
                    bar.update(1)
                    if self.step % c.eval_every == 0 or self.step == target:
                        self.validate()
                        self.module.train()
                    postfix = {"loss": f"{loss:.3f}"}
                    if h.val_loss:
                        postfix["val"] = f"{h.val_loss[-1]:.3f}"
                    if show:
                        rate = (h.chars_trained - first_chars) / (time.perf_counter() - fit_started)
                        postfix["chars/s"] = f"{rate:,.0f}"
                    bar.set_postfix(postfix, refresh=False)
                    for callback in on_step:
                        callback(self)
                    if self.checkpoint_path and (self.step % checkpoint_every == 0 or self.step == target):
                        h.seconds += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save()
        except KeyboardInterrupt:
            self.interrupted = True
            if ctx.is_main:
                bar.write(f"Interrupted at step {self.step}: model and history kept"
                          + (f", checkpoint written to {self.checkpoint_path}" if self.checkpoint_path else "")
                          + ".")
        finally:
            h.seconds += time.perf_counter() - started
            bar.close()
        if self.interrupted and self.checkpoint_path:
            self.save()
        if show and self.step > first_step:
            elapsed = time.perf_counter() - fit_started
            ranks = f" on {ctx.world_size} processes" if ctx.is_distributed else ""
            tqdm.write(f"{self.step - first_step} steps in {elapsed:.1f} s{ranks}: "
                       f"{(h.chars_trained - first_chars) / elapsed:,.0f} characters/second")
        for callback in callbacks:
            if hasattr(callback, "on_end"):
                callback.on_end(self)
        return h


def train(model: CharRNN, vocab: CharVocab, train_data, val_data=None, progress: bool = True,
          live_plot: bool = False, **config) -> Trainer:
    """Shortcut: ``trainer = train(model, vocab, batches, val, steps=300, lr=3e-3)``."""
    trainer = Trainer(model, vocab, train_data, val_data, TrainConfig(**config))
    trainer.fit(progress=progress, live_plot=live_plot)
    return trainer
