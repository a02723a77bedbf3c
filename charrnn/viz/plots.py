"""Matplotlib figures the notebooks and the model card show.

matplotlib is imported inside each function, so ``import charrnn`` stays
light for command-line use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass


def _moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_history(history, ax=None, bits: bool = True, smooth: int | None = None, title: str | None = None,
                 baselines: dict[str, float] | None = None):
    """Training loss (smoothed over ``smooth`` steps, default ~1% of the run)
    and validation loss against the step, in bits per character (or nats).

    ``baselines`` (``{"bigram": 3.71, ...}``, in bits per character) are
    drawn as dashed horizontal lines: where the model stands against simpler
    predictors scored on the same validation text."""
    import matplotlib.pyplot as plt

    h = asdict(history) if is_dataclass(history) else dict(history)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    scale = 1 / math.log(2) if bits else 1.0
    train = [x * scale for x in h["train_loss"]]
    smooth = smooth or max(1, len(train) // 100)
    ax.plot(h["steps"], train, color="tab:blue", alpha=0.25, linewidth=0.8, label="train (per step)")
    if smooth > 1:
        ax.plot(h["steps"], _moving_average(train, smooth), color="tab:blue",
                label=f"train (mean of {smooth} steps)")
    if h.get("val_loss"):
        ax.plot(h["val_steps"], [x * scale for x in h["val_loss"]], "o-", color="tab:orange",
                label="validation")
    for (name, value), style in zip((baselines or {}).items(), ("--", ":", "-.", (0, (5, 1))), strict=False):
        level = value if bits else value * math.log(2)
        ax.axhline(level, color="0.35", linestyle=style, linewidth=1.2, label=f"{name} ({value:.2f} bits/char)")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character" if bits else "nats per character")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
