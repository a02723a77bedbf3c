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

from .vocab import PAD_ID


def bits_per_char(nats: float) -> float:
    return nats / math.log(2)


def perplexity(nats: float) -> float:
    return math.exp(nats) if nats < 700 else math.inf


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over every non-pad target: ``logits (B, T, V)``, ``targets (B, T)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=PAD_ID, reduction=reduction)


@dataclass(frozen=True)
class LossReport:
    """Mean loss over ``tokens`` scored characters, in three units."""

    nats: float
    tokens: int

    @property
    def bits_per_char(self) -> float:
        return bits_per_char(self.nats)

    @property
    def perplexity(self) -> float:
        return perplexity(self.nats)

    def __str__(self) -> str:
        return (f"{self.nats:.4f} nats | {self.bits_per_char:.4f} bits/char | "
                f"perplexity {self.perplexity:.2f} | {self.tokens:,} characters")


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, device: torch.device | str | None = None,
             max_batches: int | None = None) -> LossReport:
    """Mean cross-entropy of ``model`` over ``data``: a batcher (anything with
    ``eval_batches()``) or an iterable of ``(inputs, targets)``. Each batch
    starts from a fresh state. The model is put back in the mode it was in."""
    batches: Iterable = data.eval_batches() if hasattr(data, "eval_batches") else data
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for i, (inputs, targets) in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            logits, _ = model(inputs.to(device))
            targets = targets.to(device)
            total += masked_cross_entropy(logits, targets, reduction="sum").item()
            count += int((targets != PAD_ID).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("nothing to evaluate: the data holds no non-pad target")
    return LossReport(total / count, count)
