"""The model that ships with the package: an LSTM trained on real arXiv
titles + abstracts, for the notebooks that need a model that already writes
convincing text (sampling, looking inside the RNN). Its model card is
``charrnn/assets/pretrained/README.md``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from .checkpoint import load_model
from .errors import CheckpointError
from .model import CharRNN
from .vocab import CharVocab

PRETRAINED = {"arxiv-lstm": "arxiv-lstm.pt"}


def pretrained_path(name: str = "arxiv-lstm") -> Path:
    """Where the packaged weights of ``name`` are."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained model called {name!r}; available: {sorted(PRETRAINED)}")
    return Path(str(resources.files("charrnn") / "assets" / "pretrained" / PRETRAINED[name]))


def load_pretrained(name: str = "arxiv-lstm",
                    device: str | torch.device = "cpu") -> tuple[CharRNN, CharVocab]:
    """``model, vocab = charrnn.load_pretrained()``: the shipped arXiv model
    (float32, eval mode) and its vocabulary."""
    path = pretrained_path(name)
    if not path.is_file():
        raise CheckpointError(f"{path}: the pretrained weights are missing from this installation "
                              "(reinstall charrnn with its package data)")
    return load_model(path, device)
