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
import pickle
import random
import re
import typing
import zipfile
from dataclasses import fields
from pathlib import Path

import torch

from .config import DataConfig, ModelConfig, TrainConfig
from .errors import CharRNNError, CheckpointError, ConfigError
from .files import atomic_write, is_disk_full, os_reason
from .model import CharRNN
from .vocab import CharVocab

FORMAT = "charrnn-checkpoint"
VERSION = 1
TEMP_SUFFIX = ".charrnn-tmp"  # ".run.pt.<pid>.charrnn-tmp": a save in progress, or one killed mid-way
# Sizes a checkpoint may declare. Far above any model this course trains, far
# below what would exhaust a machine: checked before anything is allocated.
MAX_SIZES = {"vocab_size": 1 << 21, "embed_dim": 1 << 16, "hidden_size": 1 << 16, "num_layers": 64}
# torch.save stores every member uncompressed, so a checkpoint unpacks to about
# its own size; a file that would unpack to far more is damaged or a zip bomb.
MAX_INFLATION, INFLATION_SLACK = 4, 1 << 20
# The fields of training.History (a layer above this module; a test keeps them in step).
HISTORY_FIELDS = ("steps", "train_loss", "grad_norm", "val_steps", "val_loss", "chars_trained", "seconds")


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
        _check_archive(path)
        ckpt = _read(path, map_location)
        _check_contents(ckpt)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return ckpt


def _check_archive(path: Path) -> None:
    """Refuse, before ``torch.load`` allocates it, an archive whose members
    unpack to far more than the file's size (torch.save never compresses)."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError("cannot be read as a checkpoint - it is truncated or damaged "
                              f"({_first_sentence(e)})") from None
    if unpacked > MAX_INFLATION * size + INFLATION_SLACK:
        raise CheckpointError(f"refused: its {size:,} bytes would unpack to {unpacked:,} bytes uncompressed, "
                              "far more than a checkpoint of this size holds (torch.save does not compress); "
                              "the file is damaged or built to exhaust memory")


def _first_sentence(error: BaseException) -> str:
    """The first sentence of an error's message, without terminal colours:
    enough to say what failed, never cut mid-word."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    first = re.split(r"(?<=[.!?])\s", text.splitlines()[0] if text else "", maxsplit=1)[0].strip()
    return (first if len(first) <= 200 else first[:200].rsplit(" ", 1)[0] + " ...") or type(error).__name__


def _read(path: Path, map_location) -> object:
    """The one ``torch.load``, ``weights_only``: a pickle that would have to
    run code is refused, never executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointError(f"cannot be read as a checkpoint - it is damaged ({_first_sentence(e)})") from None
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"such as {found.group(1)}" if found else "other than tensors and plain data"
        raise CheckpointError(f"refused: it holds Python objects ({what}) that only a full unpickle, which "
                              "can run arbitrary code, would build; a charrnn checkpoint holds only tensors "
                              "and plain data. Load it only if you trust it, with torch.load(weights_only=False)."
                              ) from None
    except (EOFError, OSError, RuntimeError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError("cannot be read as a checkpoint - it is truncated or damaged "
                              f"({_first_sentence(e)})") from None


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: object, kind: type) -> bool:
    """Whether a saved value has the type a config field declares (an int
    is a float, a bool is not a number)."""
    if kind is int:
        return _is_int(value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_fields(cls, data: object, name: str, caps: dict | None = None):
    """``cls.from_dict(data)`` with every field checked by type (and the
    sizes in ``caps`` by range) first; a problem names ``name.field``."""
    if not isinstance(data, dict):
        raise CheckpointError(f"'{name}' must be a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    for field in fields(cls):
        if field.name not in data:
            continue
        value, kinds = data[field.name], typing.get_args(hints[field.name]) or (hints[field.name],)
        if not (value is None and type(None) in kinds) and not any(_fits(value, k) for k in kinds):
            raise CheckpointError(f"'{name}.{field.name}' must be {' or '.join(k.__name__ for k in kinds)}, "
                                  f"got {_short_repr(value)}")
        high = (caps or {}).get(field.name)
        if high is not None and not 1 <= value <= high:
            raise CheckpointError(f"'{name}.{field.name}' must be from 1 to {high:,}, got {value:,}")
    try:
        return cls.from_dict(data)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"'{name}' is invalid: {e}") from None


def _check_model(ckpt: dict) -> tuple[ModelConfig, CharVocab, CharRNN]:
    """The config, vocabulary and a weightless (meta-device) model of a
    checkpoint, its weights checked against that model's names and shapes:
    nothing the size of the model is allocated before the file is trusted."""
    config = _check_fields(ModelConfig, ckpt["model_config"], "model_config", MAX_SIZES)
    try:
        vocab = CharVocab.from_dict(ckpt["vocab"])
    except CharRNNError as e:
        raise CheckpointError(f"'vocab' is damaged: {e}") from None
    if len(vocab) != config.vocab_size:
        raise CheckpointError(f"its vocabulary ('vocab') has {len(vocab)} tokens but its "
                              f"model_config.vocab_size is {config.vocab_size}")
    with torch.device("meta"):
        meta = CharRNN(config)
    _check_weights(ckpt["model_state"], meta)
    return config, vocab, meta


def _check_weights(state: object, meta: CharRNN) -> None:
    """Weights with exactly the names and shapes of the (meta) model."""
    if not isinstance(state, dict):
        raise CheckpointError(f"'model_state' must be a dict of tensors, got {type(state).__name__}")
    expected, config = meta.state_dict(), meta.config
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(f"'model_state' holds {_short_repr(key)}, which its model_config's "
                                  f"{config.cell} model does not have")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"'model_state' entry {key!r} is a {type(value).__name__}, not a tensor")
    missing = [key for key in expected if key not in state]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CheckpointError(f"'model_state' lacks {', '.join(map(repr, missing[:3]))}{more}")
    for key, want in expected.items():
        have = tuple(state[key].shape)
        if have == tuple(want.shape):
            continue
        if key == "embedding.weight" and have[1:] == tuple(want.shape[1:]):
            raise CheckpointError(f"the weights are for a vocabulary of {have[0]} tokens, "
                                  f"its model_config.vocab_size is {config.vocab_size}")
        raise CheckpointError(f"'model_state' entry {key!r} has shape {have} but its model_config (cell "
                              f"{config.cell}, embed_dim {config.embed_dim}, hidden_size {config.hidden_size}, "
                              f"num_layers {config.num_layers}) needs {tuple(want.shape)}")


def _check_optimizer(state: object, meta: CharRNN) -> None:
    """An optimizer ``state_dict`` for exactly the model's parameters: each
    moment the shape of its parameter."""
    if state is None:
        return
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not (isinstance(groups, list) and isinstance(state.get("state"), dict)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)):
        raise CheckpointError("'optimizer_state' is not an optimizer's state_dict "
                              "(a dict of 'state' and a list of 'param_groups')")
    shapes = [tuple(p.shape) for p in meta.parameters()]
    ids = [i for group in groups for i in group["params"]]
    if sorted(ids, key=repr) != sorted(range(len(shapes)), key=repr):
        raise CheckpointError(f"'optimizer_state' is for {len(ids)} parameter tensors, the model has {len(shapes)}")
    for group in groups:
        for key in ("lr", "eps", "weight_decay"):
            if key in group and not _fits(group[key], float):
                raise CheckpointError(f"'optimizer_state' {key} must be a number, got {_short_repr(group[key])}")
    for i, moments in state["state"].items():
        if i not in ids or not isinstance(moments, dict):
            raise CheckpointError(f"'optimizer_state' has a state for parameter {_short_repr(i)}, "
                                  "which the model lacks")
        for key, value in moments.items():
            if key != "step" and (not isinstance(value, torch.Tensor) or tuple(value.shape) != shapes[i]):
                raise CheckpointError(f"'optimizer_state' {key} of parameter {i} has shape "
                                      f"{tuple(getattr(value, 'shape', ()))}, the parameter has {shapes[i]}")


def _check_history(history: object) -> None:
    """Lists of numbers and two counters under the names History knows
    (entries of other versions are ignored, as History.from_dict does)."""
    if not isinstance(history, dict):
        raise CheckpointError(f"'history' must be a dict, got {type(history).__name__}")
    for key, value in history.items():
        if key not in HISTORY_FIELDS:
            continue
        if key in ("chars_trained", "seconds"):
            ok, kind = _fits(value, int if key == "chars_trained" else float) and value >= 0, "a number >= 0"
        else:
            ok, kind = isinstance(value, list) and all(_fits(x, float) for x in value), "a list of numbers"
        if not ok:
            raise CheckpointError(f"'history.{key}' must be {kind}, got {_short_repr(value)}")


def _check_rng(rng: object) -> None:
    """Random-number states that a scratch generator accepts, so restoring
    them into the real ones cannot fail half-way."""
    if not isinstance(rng, dict):
        raise CheckpointError(f"'rng' must be a dict, got {type(rng).__name__}")
    try:
        if "torch" in rng:
            torch.Generator().set_state(rng["torch"])
        if "python" in rng:
            version, internal, gauss = rng["python"]
            random.Random().setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"'rng' holds a damaged random-number state ({_first_sentence(e)})") from None
    cuda = rng.get("cuda", [])
    if not (isinstance(cuda, list) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)):
        raise CheckpointError("'rng' holds a damaged CUDA random-number state")


def _check_contents(ckpt: object) -> None:
    """Every field of a loaded checkpoint, by type and range."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("is a PyTorch file but not a charrnn checkpoint "
                              "(no 'format': 'charrnn-checkpoint' entry)")
    version = ckpt.get("version", VERSION)
    if not _is_int(version) or version < 1:
        raise CheckpointError(f"'version' must be a positive integer, got {_short_repr(version)}")
    if version > VERSION:
        raise CheckpointError(f"checkpoint format version {version} is newer than this charrnn "
                              f"understands ({VERSION}); upgrade charrnn")
    missing = [k for k in ("model_config", "model_state", "vocab") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint lacks {', '.join(missing)}")
    meta = _check_model(ckpt)[2]
    _check_optimizer(ckpt.get("optimizer_state"), meta)
    step = ckpt.get("step", 0)
    if not _is_int(step) or step < 0:
        raise CheckpointError(f"'step' must be an integer >= 0, got {_short_repr(step)}")
    _check_history(ckpt.get("history", {}))
    _check_fields(TrainConfig, ckpt.get("train_config", {}), "train_config")
    _check_fields(DataConfig, ckpt.get("data_config", {}), "data_config")
    _check_rng(ckpt.get("rng", {}))


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
    config, vocab, _ = _check_model(ckpt)
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
