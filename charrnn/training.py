"""The training loop: Adam on the masked cross-entropy, with gradient
clipping, periodic validation, a progress bar, checkpoints and resume.

Fixes over the origin notebook's loop: the clipping threshold actually clips
(1.0, not 1e5), validation loss is measured, a Ctrl-C stops cleanly keeping
the model and history (and writes a checkpoint when a path is set), and a
resumed run continues with the same batches, optimizer state and random
state, so on the CPU it reproduces the uninterrupted run's losses exactly.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .dashboard import LiveLossPlot
from .errors import CheckpointError
from .metrics import evaluate, masked_cross_entropy
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


@contextmanager
def _sigint_deferred() -> Iterator[Callable[[], bool]]:
    """Hold back SIGINT (Ctrl-C, or Jupyter's interrupt button) for the
    duration of the block; yields a function telling whether one came."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False  # signal handlers can only be set in the main thread
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


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
    """

    def __init__(self, model: CharRNN, vocab: CharVocab, train_data, val_data=None,
                 config: TrainConfig | None = None, checkpoint_path: str | Path | None = None,
                 data_config: dict | None = None):
        if len(vocab) != model.config.vocab_size:
            raise CheckpointError(f"vocabulary has {len(vocab)} tokens, model expects "
                                  f"{model.config.vocab_size}")
        self.config = config or TrainConfig()
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device)
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
                        **config_overrides) -> "Trainer":
        """Continue a saved run: same model, optimizer, step, history and RNG.
        The batchers must be built with the checkpoint's vocabulary
        (``ckpt['vocab']``) and data settings for an exact continuation."""
        ckpt = load_checkpoint(path)
        model, vocab = model_from_checkpoint(ckpt)
        if config is None:
            config = TrainConfig.from_dict({**ckpt.get("train_config", {}), **config_overrides})
        trainer = cls(model.train(), vocab, train_data, val_data, config,
                      checkpoint_path=checkpoint_path or path, data_config=ckpt.get("data_config"))
        if ckpt.get("optimizer_state"):
            trainer.optimizer.load_state_dict(ckpt["optimizer_state"])
        trainer.step = int(ckpt.get("step", 0))
        trainer.history = History(**ckpt.get("history", {}))
        _set_rng_state(ckpt.get("rng", {}))
        return trainer

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path or self.checkpoint_path or "checkpoint.pt")
        save_checkpoint(path, self.model, self.vocab, optimizer=self.optimizer, step=self.step,
                        history=asdict(self.history), train_config=asdict(self.config),
                        data_config=self.data_config, rng=_rng_state())
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
            logits, _ = self.model(inputs)
            loss = masked_cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward()
        self._scaler.unscale_(self.optimizer)
        max_norm = self.config.clip_norm if self.config.clip_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self._scaler.step(self.optimizer)
        self._scaler.update()
        return loss.item(), float(grad_norm)

    def validate(self) -> float | None:
        if self.val_data is None:
            return None
        report = evaluate(self.model, self.val_data, self.device, max_batches=self.config.eval_batches)
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
        interrupted or not).

        Ctrl-C stops after the current step: the model and history stay as
        they are, a checkpoint is written if a path was given, and
        ``trainer.interrupted`` is set. Call ``fit`` again to go on.
        """
        target = self.config.steps if steps is None else steps
        c, h = self.config, self.history
        checkpoint_every = c.checkpoint_every or c.eval_every
        self.interrupted = False
        callbacks = list(callbacks)
        if live_plot:
            callbacks.append(LiveLossPlot())
        on_step = [cb.on_step for cb in callbacks if hasattr(cb, "on_step")]
        self.model.train()
        bar = tqdm(total=target, initial=self.step, desc="training", unit="step",
                   disable=not progress, dynamic_ncols=True)
        started = time.perf_counter()
        try:
            while self.step < target:
                inputs, targets = self.train_data.batch(self.step)
                inputs = inputs.to(self.device, non_blocking=True)
                targets = targets.to(self.device, non_blocking=True)
                # A Ctrl-C in the middle of an update would leave weights and
                # step count out of step; it is acted on once the step is done.
                with _sigint_deferred() as ctrl_c_pressed:
                    loss, grad_norm = self.train_step(inputs, targets)
                    self.step += 1
                    h.steps.append(self.step)
                    h.train_loss.append(loss)
                    h.grad_norm.append(grad_norm)
                    h.chars_trained += int((targets != PAD_ID).sum())
                if ctrl_c_pressed():
                    raise KeyboardInterrupt
                bar.update(1)
                if self.step % c.eval_every == 0 or self.step == target:
                    self.validate()
                    self.model.train()
                postfix = {"loss": f"{loss:.3f}"}
                if h.val_loss:
                    postfix["val"] = f"{h.val_loss[-1]:.3f}"
                bar.set_postfix(postfix, refresh=False)
                for callback in on_step:
                    callback(self)
                if self.checkpoint_path and (self.step % checkpoint_every == 0 or self.step == target):
                    h.seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save()
        except KeyboardInterrupt:
            self.interrupted = True
            bar.write(f"Interrupted at step {self.step}: model and history kept"
                      + (f", checkpoint written to {self.checkpoint_path}" if self.checkpoint_path else "")
                      + ".")
        finally:
            h.seconds += time.perf_counter() - started
            bar.close()
        if self.interrupted and self.checkpoint_path:
            self.save()
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
