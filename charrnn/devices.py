"""Where training runs: the device, and the process it runs in.

:func:`pick_device` chooses CUDA, Apple's MPS or the CPU. :class:`SingleProcess`
is the context of an ordinary run (a notebook, a script, the CLI without
``torchrun``): the trainer asks it for the device, the module to train, and
the totals of a step, and here each answer is the trivial one. The
multi-process version, :class:`charrnn.scale.distributed.DistributedContext`,
answers the same questions across ranks, so the training loop reads the same
whether it runs on one process or many, and the core never imports DDP.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from .errors import ConfigError
from .metrics import LossReport, evaluate

DEVICE_TYPES = ("cpu", "cuda", "mps")  # what the trainer, sampling and mixed precision know


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> list[str]:
    """The device names this machine can run on, for messages: ``cpu``, one
    ``cuda:N`` per GPU PyTorch sees, ``mps`` on Apple silicon."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def check_device(name: str) -> torch.device:
    """``name`` as a ``torch.device``, or a one-line :class:`ConfigError`
    naming the devices this machine has: torch itself would fail only at the
    first tensor moved there, with an ``AssertionError`` or a traceback."""
    def available() -> str:  # only for the messages: it asks the drivers
        return f"available: {', '.join(available_devices())}"

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps; {available()}") from None
    if device.type not in DEVICE_TYPES:
        raise ConfigError(f"charrnn does not run on {name!r}: use auto, cpu, cuda, cuda:N or mps; {available()}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        usable = (device.index or 0) < count
    else:
        usable = device.type == "cpu" or _mps_available()
    if not usable:
        raise ConfigError(f"{name} is not available on this machine; {available()}")
    return device


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU; any other
    name (``"cpu"``, ``"cuda:1"``) is checked against this machine
    (:func:`check_device`)."""
    if name != "auto":
        return check_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_to_resume_on(saved: str, source: object) -> str:
    """The device setting a resumed run uses when none is given: the saved
    one, or ``"auto"`` (with a warning) when this machine lacks it, so a run
    trained on a GPU can go on on a laptop. Weights load onto the CPU first
    (``map_location``), so the checkpoint itself fits any device."""
    try:
        check_device(saved)
    except ConfigError as e:
        warnings.warn(f"{source} was trained with device {saved}, but {e}; resuming on "
                      f"{pick_device('auto')} (choose with --device)", stacklevel=2)
        return "auto"
    return saved


class SingleProcess:
    """The one process of an ordinary run: rank 0 of a world of 1."""

    rank = 0
    world_size = 1
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, draws the progress bar and writes checkpoints."""
        return self.rank == 0

    def device(self, name: str = "auto") -> torch.device:
        """The device this process trains on."""
        return pick_device(name)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module to train: the model itself in a single process."""
        return model

    def check_shard(self, train_data) -> None:
        """Nothing to check: a single process trains on all the batches."""

    def step_totals(self, loss: float, chars: int, stop: bool) -> tuple[float, int, bool]:
        """One step's loss, characters and stop request, over all processes."""
        return loss, chars, stop

    def evaluate(self, model: torch.nn.Module, data, device: torch.device,
                 max_batches: int | None) -> LossReport:
        """Validation loss over the first ``max_batches`` batches of ``data``."""
        return evaluate(model, data, device, max_batches=max_batches)

    def all_reduce_sum(self, values: Iterable[float]) -> list[float]:
        """Element-wise sums over all processes: the values themselves here."""
        return [float(v) for v in values]

    def barrier(self) -> None:
        """Wait for the other processes: there are none."""

    def cleanup(self) -> None:
        """Leave the process group: there is none."""
