"""From cross-entropy to the numbers people quote.

The training loss is the mean negative log-likelihood of the real next
character, in nats (natural log)::

    L = -1/N * sum_i ln p(x_t | x_<t)

Divided by ln 2 it is bits per character, the usual figure for character
models and compressors; ``exp(L)`` is the perplexity, the number of equally
likely characters the model is as unsure as. Pad targets are left out of N.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import DataError
from .model import CharRNN, evaluating, map_state
from .vocab import PAD_ID


def bits_per_char(nats: float) -> float:
    """A loss in nats per character, in bits per character."""
    return nats / math.log(2)


def perplexity(nats: float) -> float:
    """``exp(loss)``: how many equally likely characters the model is as unsure as."""
    return math.exp(nats) if nats < 700 else math.inf


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over every non-pad target: ``logits (B, T, V)``, ``targets (B, T)``."""
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()  # (B, T, V) -> (B*T, V)
    flat_targets = targets.reshape(-1)                           # (B, T) -> (B*T,)
    return F.cross_entropy(flat_logits, flat_targets, ignore_index=PAD_ID, reduction=reduction)


def surprisal_bits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The surprisal of each target in bits, notebook 06's formula
    ``s_t = -log2 p(x_t+1 | x_<=t) = -ln p / ln 2`` with ``p = softmax(l_t)``:
    ``logits (n, V)``, ``targets (n,)`` -> ``(n,)``. Its mean is the masked
    cross-entropy of the same positions, in bits instead of nats."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # ln p of every token: (n, V)
    nats = -log_probs.gather(1, targets[:, None])[:, 0]    # of the one that came next: (n,)
    return nats / math.log(2)


@dataclass(frozen=True)
class LossReport:
    """Mean loss over ``tokens`` scored characters, in three units."""

    nats: float
    tokens: int

    @property
    def bits_per_char(self) -> float:
        """The loss in bits per character."""
        return bits_per_char(self.nats)

    @property
    def perplexity(self) -> float:
        """The perplexity, ``exp(nats)``."""
        return perplexity(self.nats)

    def __str__(self) -> str:
        return (f"{self.nats:.4f} nats | {self.bits_per_char:.4f} bits/char | "
                f"perplexity {self.perplexity:.2f} | {self.tokens:,} characters")


# Time steps per forward call when scoring. Between chunks the rows whose
# record has ended leave the batch, so the shorter records of a batch stop
# costing soon after their end instead of running on padding to the longest
# one's; and memory stays bounded: 64 records of 2,000 characters read in one
# call make the 800-unit LSTM hold 64 x 2,000 x 3,200 gate values (1.6 GB).
# On two CPU cores the pretrained LSTM reads 64 x 512 tokens as fast in
# chunks of 32, 64 or 256 steps; 64 leaves 4% of the work to padding on the
# benchmark's records where 256 leaves 12% (benchmarks/evaluate_speed.py).
EVAL_CHUNK = 64


def evaluate(model: torch.nn.Module, data, device: torch.device | str | None = None,
             max_batches: int | None = None, progress: bool = False,
             total_chars: int | None = None, chunk_len: int | None = EVAL_CHUNK) -> LossReport:
    """Mean cross-entropy of ``model`` over ``data``: a batcher (anything with
    ``eval_batches()``) or an iterable of ``(inputs, targets)``. Each batch
    starts from a fresh state. The model is put back in the mode it was in.

    A :class:`~charrnn.model.CharRNN` reads long batches in chunks of
    ``chunk_len`` steps (:data:`EVAL_CHUNK`) with its state carried over,
    and stops reading a row once no scored target is left in it (see
    :func:`score_batch`): the same loss, less time on long records and
    padding. ``chunk_len=None`` reads each batch in one call.

    ``progress=True`` shows a bar in scored characters (of ``total_chars``
    when given): on a large file and a large model this takes minutes, and a
    silent terminal looks like a hang."""
    from tqdm.auto import tqdm

    batches: Iterable = data.eval_batches() if hasattr(data, "eval_batches") else data
    total, count = 0.0, 0
    with evaluating(model) as model_device, tqdm(total=total_chars, unit="char", unit_scale=True,
                                                 desc="evaluating", disable=not progress) as bar:
        device = device or model_device
        for i, (inputs, targets) in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            nats, scored = score_batch(model, inputs.to(device), targets.to(device), chunk_len)
            total += nats
            count += scored
            bar.update(scored)
    if count == 0:
        raise DataError("nothing to evaluate: the data holds no non-pad target")
    return LossReport(total / count, count)


def score_batch(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                chunk_len: int | None = EVAL_CHUNK) -> tuple[float, int]:
    """Summed cross-entropy (nats) and the number of scored targets of one
    batch, from a fresh state; call it under ``torch.no_grad()``.

    For a :class:`~charrnn.model.CharRNN` the time axis is read ``chunk_len``
    steps at a time with the recurrent state carried, which computes the same
    logits (a recurrent net is causal: position t sees only inputs up to t),
    and rows with no scored target left are dropped before the next chunk,
    so the short records of a batch stop costing once they are done. Other
    models, or ``chunk_len=None``, get the whole batch in one call."""
    if chunk_len is None or not isinstance(model, CharRNN) or inputs.shape[1] <= chunk_len:
        logits, _ = model(inputs)
        return masked_cross_entropy(logits, targets, reduction="sum").item(), int((targets != PAD_ID).sum())
    scored = targets != PAD_ID
    # Row r is read up to its last scored target, ends[r] (0: nothing to score).
    positions = torch.arange(1, targets.shape[1] + 1, device=targets.device)
    ends = (scored * positions).amax(dim=1)
    total, state = torch.zeros((), device=inputs.device), None  # summed on the device, read once at the end
    rows = torch.arange(inputs.shape[0], device=inputs.device)
    for start in range(0, inputs.shape[1], chunk_len):
        alive = ends[rows] > start
        if not bool(alive.all()):
            rows = rows[alive]
            if len(rows) == 0:
                break
            state = map_state(state, lambda s, keep=alive: s[:, keep])  # (layers, B, H) -> (layers, B', H)
        stop = start + chunk_len
        logits, state = model(inputs[rows, start:stop], state)
        total += masked_cross_entropy(logits, targets[rows, start:stop], reduction="sum")
    return total.item(), int(scored.sum())
