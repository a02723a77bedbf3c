"""Saving and loading checkpoints: model, optimizer, vocabulary, config,
step, history and random-number state in one file.

Writes go to a temporary file that is renamed over the target only once it is
complete, so a run killed mid-save leaves the previous checkpoint intact.
Loads are ``weights_only`` (no arbitrary code from a downloaded file) and
check that the file really is a charrnn checkpoint before anything uses it.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import torch

from .checkpoint_schema import (
    FORMAT,
    VERSION,
    check_archive,
    check_contents,
    check_model,
    read_weights_only,
)
from .errors import CheckpointError, ConfigError
from .files import atomic_write, is_disk_full, os_reason
from .model import CharRNN
from .vocab import CharVocab

TEMP_SUFFIX = ".charrnn-tmp"  # ".run.pt.<pid>.charrnn-tmp": a save in progress, or one killed mid-way


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary file a save to ``path`` writes first: hidden, next to
    it, named after it and the writing process, so a later save can
    recognise (and remove) what a killed one left."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return False  # Windows refuses to delete a file another process has open
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files of earlier saves to ``path`` whose process is
    gone (killed with -9 mid-save): only names :func:`temp_path` makes."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+){re.escape(TEMP_SUFFIX)}")
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if found and (int(found.group(1)) == os.getpid() or not _process_alive(int(found.group(1)))):
            with contextlib.suppress(OSError):
                entry.unlink()


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` via :func:`~charrnn.files.atomic_write`
    (a temporary file in the same folder, renamed over ``path`` only once
    complete): a full disk or a killed process leaves the previous file
    intact. A failure is one :class:`CheckpointError` naming ``path`` and
    the operating system's reason.

    torch.save is handed an open file, not the name: given a name, torch
    writes through its own C++ writer, which reports a full disk as a
    RuntimeError ("unexpected pos ..."); through a Python file it is the
    OSError caught here."""
    path = Path(path)
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        with atomic_write(path, "wb", temp=temp_path(path)) as f:
            torch.save(obj, f)
    except OSError as e:
        kept = "the previous checkpoint there is unchanged" if path.is_file() else "nothing was written"
        advice = "free some space or write it elsewhere" if is_disk_full(e) else "write it elsewhere"
        raise CheckpointError(f"{path}: cannot write the checkpoint ({os_reason(e)}); {kept}; {advice}") from None


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming ``path`` when no checkpoint can
    be written there (a folder, a file in the way of its folder, a folder
    that refuses new files), so a run learns it before training, not at its
    first save. Creates nothing that stays."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give the checkpoint a file name, e.g. {path / 'run.pt'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders that save will create
    if not folder.is_dir():
        raise CheckpointError(f"{path}: cannot be written, {folder} is a file, not a folder")
    probe = folder / temp_path(path).name
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        probe.unlink()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write a checkpoint there ({os_reason(e)}); "
                              "choose a folder you can write to") from None


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
    the file and the problem when it is missing, truncated, foreign or
    damaged. Every field is checked by type and range before anything is
    built from it, so a bad file is one line, never a traceback or a huge
    allocation."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"{path}: not a checkpoint (not a file written by torch.save)")
    try:
        check_archive(path)
        ckpt = read_weights_only(path, map_location)
        check_contents(ckpt)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return ckpt


def resume_problem(ckpt: dict) -> str | None:
    """What keeps training from continuing exactly from ``ckpt`` (an export:
    no optimizer state, float16 weights), or None when nothing does."""
    lacks = [] if ckpt.get("optimizer_state") is not None else ["no optimizer state"]
    if any(v.dtype == torch.float16 for v in ckpt["model_state"].values()):
        lacks.append("float16 weights")
    return ", ".join(lacks) or None


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> tuple[CharRNN, CharVocab]:
    """Rebuild the model (in float32, eval mode) and its vocabulary from a
    loaded checkpoint dict (checked again: it may not come from
    :func:`load_checkpoint`)."""
    config, vocab, _ = check_model(ckpt)
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
