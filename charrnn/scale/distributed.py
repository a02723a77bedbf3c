"""Several processes training one model: PyTorch's DistributedDataParallel
under ``torchrun``.

``torchrun --nproc_per_node=N -m charrnn train ...`` starts N copies of the
program with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set; :func:`init_distributed` reads them and joins the
process group (NCCL between GPUs, gloo on the CPU). Each process (a *rank*)
trains the same model on its own share of the batches; DDP averages the
gradients during ``backward()``, so every rank applies the same update and
the weights stay identical, as if one process had trained on batches
``world_size`` times larger.

:class:`DistributedContext` answers the questions the trainer asks of
:class:`charrnn.devices.SingleProcess` (which device, which module to train,
the totals of a step, the validation loss) across the ranks. Without those
variables (a plain ``python`` run, a notebook) it is a single process and
each answer is the single-process one, so the training loop reads the same
either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, islice

import torch

from ..devices import SingleProcess
from ..errors import CharRNNError, ConfigError, DataError
from ..metrics import LossReport, evaluate

BACKENDS = ("nccl", "gloo")
_REQUIRED_ENV = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _dist():
    """``torch.distributed``, imported only when a run is distributed (some
    builds lack it, and a single process never needs it)."""
    import torch.distributed as dist
    return dist


@dataclass(frozen=True)
class DistributedContext(SingleProcess):
    """Who this process is among ``world_size`` cooperating ones; the
    default is the single process of an ordinary run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0      # rank among the processes of this machine: picks the GPU
    backend: str | None = None

    def device(self, name: str = "auto") -> torch.device:
        """The device for this rank: ``cuda:LOCAL_RANK`` for CUDA (each
        process its own GPU), else what ``name`` says. ``"auto"`` never picks
        Apple's MPS in a distributed run: DDP does not support it."""
        if not self.is_distributed:
            return super().device(name)
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(name)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.local_rank)
        if device.type not in ("cuda", "cpu"):
            raise CharRNNError(f"distributed training runs on CUDA or the CPU, not {device.type}; "
                               "use --device cuda or --device cpu")
        return device

    def _collective_device(self) -> torch.device:
        # NCCL only moves CUDA tensors; gloo is happiest with CPU ones.
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (the module to train with),
        or ``model`` itself in a single process. DDP copies rank 0's weights
        to every rank here, so all start from the same point."""
        if not self.is_distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def check_shard(self, train_data) -> None:
        """Each rank must draw its own share of the batches."""
        shard = (getattr(train_data, "rank", 0), getattr(train_data, "world_size", 1))
        if self.is_distributed and shard != (self.rank, self.world_size):
            raise ConfigError(f"rank {self.rank} of {self.world_size} needs its own share of the "
                              f"batches, but train_data has rank, world_size = {shard}; build it "
                              "with rank=context.rank, world_size=context.world_size")

    def step_totals(self, loss: float, chars: int, stop: bool) -> tuple[float, int, bool]:
        """One collective per step: the mean loss over ranks, all ranks'
        characters, and whether any rank was asked to stop (all stop together)."""
        if not self.is_distributed:
            return loss, chars, stop
        total_loss, total_chars, stops = self.all_reduce_sum([loss, chars, stop])
        return total_loss / self.world_size, int(total_chars), bool(stops)

    def evaluate(self, model: torch.nn.Module, data, device: torch.device,
                 max_batches: int | None) -> LossReport:
        """Validation over the first ``max_batches`` batches: each rank scores
        every ``world_size``-th of them and the sums are added up, so all
        ranks get the same number."""
        if not self.is_distributed:
            return super().evaluate(model, data, device, max_batches)
        batches = islice(data.eval_batches(), self.rank, max_batches, self.world_size)
        first = next(batches, None)
        total, count = 0.0, 0
        if first is not None:  # fewer batches than ranks: this one has none
            local = evaluate(model, chain([first], batches), device)
            total, count = local.nats * local.tokens, local.tokens
        total, count = self.all_reduce_sum([total, count])
        if count == 0:
            raise DataError("nothing to evaluate: the validation data holds no non-pad target")
        return LossReport(total / count, int(count))

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over all ranks (the same list on every rank)."""
        if not self.is_distributed:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64,
                              device=self._collective_device())
        _dist().all_reduce(tensor)
        return tensor.tolist()

    def all_reduce_mean(self, values: Sequence[float]) -> list[float]:
        """Element-wise means over all ranks."""
        return [v / self.world_size for v in self.all_reduce_sum(values)]

    def barrier(self) -> None:
        """Wait until every rank gets here (e.g. while rank 0 writes a file)."""
        if self.is_distributed:
            if self.backend == "nccl":
                _dist().barrier(device_ids=[self.local_rank])
            else:
                _dist().barrier()

    def cleanup(self) -> None:
        """Leave the process group (call once, at the end of the program)."""
        if self.is_distributed and _dist().is_initialized():
            _dist().destroy_process_group()


def init_distributed(backend: str | None = None, device: str = "auto") -> DistributedContext:
    """Join the process group ``torchrun`` set up in the environment, or
    return a single-process context when there is none (``WORLD_SIZE``
    unset or 1).

    ``backend`` defaults to NCCL when training on CUDA and gloo otherwise;
    ``device`` is the ``--device`` setting, used only for that choice.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return DistributedContext()
    missing = [name for name in _REQUIRED_ENV if name not in os.environ]
    if missing:
        raise CharRNNError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: "
                           "start distributed runs with torchrun")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    try:
        dist = _dist()
        available = dist.is_available()
    except ImportError:
        available = False
    if not available:
        raise CharRNNError("this PyTorch build has no torch.distributed: cannot train on "
                           f"{world_size} processes")
    on_cuda = torch.cuda.is_available() and device != "cpu" and not device.startswith("mps")
    backend = backend or ("nccl" if on_cuda else "gloo")
    if backend not in BACKENDS:
        raise CharRNNError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise CharRNNError("the NCCL backend needs CUDA GPUs; use --backend gloo on the CPU")
    if backend == "gloo" and not dist.is_gloo_available():
        raise CharRNNError("this PyTorch build lacks the gloo backend; use --backend nccl on GPUs")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # before init: NCCL binds each rank to its GPU
    if dist.is_initialized():  # joined already (by the caller): use its group as it is
        backend = dist.get_backend()
    else:
        dist.init_process_group(backend=backend, init_method="env://", rank=rank,
                                world_size=world_size)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank,
                              backend=backend)
