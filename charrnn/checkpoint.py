"""Saving and loading checkpoints: model, optimizer, vocabulary, config,
step, history and random-number state in one file.

Writes go to a temporary file that is renamed over the target only once it is
complete, so a run killed mid-save leaves the previous checkpoint intact.
Loads are ``weights_only`` (no arbitrary code from a downloaded file) and
check that the file really is a charrnn checkpoint before anything uses it.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import CharRNNError, CheckpointError, ConfigError
from .model import CharRNN
from .vocab import CharVocab

FORMAT = "charrnn-checkpoint"
VERSION = 1


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same folder."""
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: str | os.PathLike, model: CharRNN, vocab: CharVocab, *,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                    history: dict | None = None, train_config: dict | None = None,
                    data_config: dict | None = None, rng: dict | None = None,
                    weights_dtype: torch.dtype | None = None) -> None:
    """Write everything needed to sample from the model or resume training.

    ``weights_dtype=torch.float16`` halves the file for a model that is only
    shipped for inference (the optimizer state is then best left out)."""
    if len(vocab) != model.config.vocab_size:
        raise ConfigError(f"vocabulary has {len(vocab)} tokens but the model expects "
                              f"{model.config.vocab_size}")
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        weights = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in weights.items()}
    atomic_torch_save({
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "model_state": weights,
        "vocab": vocab.to_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "history": history or {},
        "train_config": train_config or {},
        "data_config": data_config or {},
        "rng": rng or {},
    }, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and validate a checkpoint; raise :class:`CheckpointError` naming
    the file and the problem when it is missing, truncated or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"{path}: not a checkpoint (not a file written by torch.save)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot be read as a checkpoint - it is truncated or "
                              f"damaged ({reason[:160]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is a PyTorch file but not a charrnn checkpoint "
                              "(no 'format': 'charrnn-checkpoint' entry)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt['version']} is newer "
                              f"than this charrnn understands ({VERSION}); upgrade charrnn")
    missing = [k for k in ("model_config", "model_state", "vocab") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> tuple[CharRNN, CharVocab]:
    """Rebuild the model (in float32, eval mode) and its vocabulary from a
    loaded checkpoint dict."""
    try:
        vocab = CharVocab.from_dict(ckpt["vocab"])
        config = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError, CharRNNError) as e:
        raise CheckpointError(f"checkpoint metadata is invalid: {e}") from None
    if len(vocab) != config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {len(vocab)} tokens but its model "
                              f"expects {config.vocab_size}")
    model = CharRNN(config)
    load_weights(model, {k: v.float() if v.is_floating_point() else v
                        for k, v in ckpt["model_state"].items()})
    return model.to(device).eval(), vocab


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[CharRNN, CharVocab]:
    """``model, vocab = load_model("run.pt")``: ready to sample or evaluate."""
    try:
        return model_from_checkpoint(load_checkpoint(path), device)
    except CheckpointError as e:
        if str(e).startswith(str(path)):
            raise
        raise CheckpointError(f"{path}: {e}") from None


def load_weights(model: CharRNN, state_dict: dict) -> None:
    """``model.load_state_dict`` with a message that names a vocabulary or
    shape mismatch instead of a wall of tensor sizes."""
    theirs = state_dict.get("embedding.weight")
    if theirs is not None and theirs.shape[0] != model.config.vocab_size:
        raise CheckpointError(f"the weights are for a vocabulary of {theirs.shape[0]} tokens, "
                              f"this model has {model.config.vocab_size}")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError("the weights do not fit this model: "
                              + " ".join(line.strip() for line in first[1:3] or first)) from None


def capture_rng_state() -> dict:
    """Every random-number state training draws from (torch, Python, CUDA),
    saved in checkpoints so a resumed run draws the same numbers."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back what :func:`capture_rng_state` saved (CUDA only when the same
    number of GPUs is there)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
