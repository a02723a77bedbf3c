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

from collections.abc import Iterable

import torch

from .metrics import LossReport, evaluate


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU; any other
    name (``"cpu"``, ``"cuda:1"``) is taken as it is."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
