"""The random-number state of a run, so that a resumed run draws the same
numbers an uninterrupted one would have drawn.

Training draws from torch's generator (dropout masks), from each GPU's
generator, and from Python's ``random``. A checkpoint keeps all three
(:func:`capture_rng_state`); loading it puts them back
(:func:`restore_rng_state`). The batches need none of this: each batch is
drawn from its own generator seeded by the data seed and the step.
"""

from __future__ import annotations

import random

import torch


def capture_rng_state() -> dict:
    """Every random-number state training draws from (torch, Python, CUDA),
    as plain values a checkpoint can hold."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back what :func:`capture_rng_state` saved. The CUDA states come
    back only when this machine has as many GPUs: on another machine the
    run goes on, with other dropout masks on the GPU."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]  # tuple(): a file may give back a list
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
