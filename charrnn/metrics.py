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
from .model import evaluating
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


def evaluate(model: torch.nn.Module, data, device: torch.device | str | None = None,
             max_batches: int | None = None, progress: bool = False,
             total_chars: int | None = None) -> LossReport:
    """Mean cross-entropy of ``model`` over ``data``: a batcher (anything with
    ``eval_batches()``) or an iterable of ``(inputs, targets)``. Each batch
    starts from a fresh state. The model is put back in the mode it was in.

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
            logits, _ = model(inputs.to(device))
            targets = targets.to(device)
            total += masked_cross_entropy(logits, targets, reduction="sum").item()
            scored = int((targets != PAD_ID).sum())
            count += scored
            bar.update(scored)
    if count == 0:
        raise DataError("nothing to evaluate: the data holds no non-pad target")
    return LossReport(total / count, count)
