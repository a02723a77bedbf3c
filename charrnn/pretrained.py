"""The model that ships with the package: an LSTM trained on real arXiv
titles + abstracts, for the notebooks that need a model that already writes
convincing text (sampling, looking inside the RNN). Its model card is
``charrnn/assets/pretrained/README.md``.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_model
from .errors import CheckpointError, ConfigError
from .model import CharRNN
from .vocab import CharVocab

PRETRAINED = {"arxiv-lstm": "arxiv-lstm.pt"}


def pretrained_path(name: str = "arxiv-lstm") -> Path:
    """Where the packaged weights of ``name`` are."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained model called {name!r}; available: {sorted(PRETRAINED)}")
    return Path(str(resources.files("charrnn") / "assets" / "pretrained" / PRETRAINED[name]))


def load_pretrained(name: str = "arxiv-lstm", device: str | torch.device = "cpu",
                    int8: bool = False) -> tuple[CharRNN, CharVocab]:
    """``model, vocab = charrnn.load_pretrained()``: the shipped arXiv model
    (float32, eval mode) and its vocabulary.

    ``int8=True`` (CPU only) gives the model with its LSTM and output layer
    quantized to int8 (:func:`quantize_int8`): a quarter of the memory, text
    written 3-4x faster on a 2-core CPU (about 3x with another program
    holding a core), and held-out text scored at 1.4364 bits/char instead
    of 1.4297 (``benchmarks/README.md``). Notebook 05 writes with it. Float32
    stays the default: it is the model the card's numbers describe, the one
    to train on or move to a GPU, and the one notebook 06 looks inside."""
    path = pretrained_path(name)
    if not path.is_file():
        raise CheckpointError(f"{path}: the pretrained weights are missing from this installation "
                              "(reinstall charrnn with its package data)")
    if int8 and torch.device(device).type != "cpu":
        raise ConfigError(f"int8=True is for the CPU; on {device} load the float32 model")
    model, vocab = load_model(path, device)
    return (quantize_int8(model) if int8 else model), vocab


def quantize_int8(model: CharRNN) -> CharRNN:
    """A copy of ``model`` for CPU inference with PyTorch's dynamic int8
    quantization of its ``nn.LSTM`` (or ``nn.GRU``) and ``nn.Linear`` layers:
    weights stored as int8, activations quantized on the fly. Int8 matrix
    products move a quarter of the bytes of float32 ones, which is what one
    character at a time on a CPU waits for. Inference only (no gradients).
    torchao, PyTorch's successor tool, quantizes only ``nn.Linear`` layers,
    and the LSTM is nearly all of this model's work."""
    from torch.ao.quantization import quantize_dynamic

    device = next(model.parameters()).device
    if device.type != "cpu":
        raise ConfigError(f"int8 quantization is for the CPU; this model is on {device} (move it with "
                          ".cpu(), or keep float32 there)")
    with warnings.catch_warnings():
        # torch.ao.quantization's notices that it is moving to torchao (which
        # has no LSTM): they concern the conversion, not the model it returns.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8).eval()
