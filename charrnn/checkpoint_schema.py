"""What a charrnn checkpoint file must hold, and the checks that make sure
it does before anything is built from it.

A checkpoint is a zip written by ``torch.save`` and read back with
``weights_only=True``, so loading it runs no code; but a damaged or hostile
file can still hold anything plain data can express. Each entry is checked
by type and range, in the order of :data:`_OPTIONAL_ENTRIES` after the
required ones, and a problem is one :class:`~charrnn.errors.CheckpointError`
naming the entry (``'model_config.hidden_size' must be from 1 to 65,536``),
never a traceback from deep inside torch or an allocation of gigabytes.
"""

from __future__ import annotations

import pickle
import random
import re
import typing
import zipfile
from dataclasses import fields
from pathlib import Path

import torch

from .config import DataConfig, ModelConfig, TrainConfig
from .errors import CharRNNError, CheckpointError
from .model import CharRNN
from .vocab import CharVocab

FORMAT = "charrnn-checkpoint"
VERSION = 1
# Sizes a checkpoint may declare. Far above any model this course trains, far
# below what would exhaust a machine: checked before anything is allocated.
MAX_SIZES = {"vocab_size": 1 << 21, "embed_dim": 1 << 16, "hidden_size": 1 << 16, "num_layers": 64}
# torch.save stores every member uncompressed, so a checkpoint unpacks to about
# its own size; a file that would unpack to far more is damaged or a zip bomb.
MAX_INFLATION, INFLATION_SLACK = 4, 1 << 20
# The fields of training.History (a layer above this module; a test keeps them
# in step) and what each holds: a running count or total, or one number per step.
HISTORY_FIELDS = ("steps", "train_loss", "grad_norm", "val_steps", "val_loss", "chars_trained", "seconds")
_HISTORY_TOTALS = {"chars_trained": int, "seconds": float}


def check_archive(path: Path) -> None:
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


def read_weights_only(path: Path, map_location) -> object:
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
    _expect_dict(data, name)
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


def check_model(ckpt: dict) -> tuple[ModelConfig, CharVocab, CharRNN]:
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


def _check_history(history: object, meta: CharRNN) -> None:
    """Lists of numbers and two totals under the names History knows
    (entries of other versions are ignored, as History.from_dict does)."""
    _expect_dict(history, "history")
    for key, value in history.items():
        if key not in HISTORY_FIELDS:
            continue
        total = _HISTORY_TOTALS.get(key)
        if total is not None:
            ok, kind = _fits(value, total) and value >= 0, "a number >= 0"
        else:
            ok, kind = isinstance(value, list) and all(_fits(x, float) for x in value), "a list of numbers"
        if not ok:
            raise CheckpointError(f"'history.{key}' must be {kind}, got {_short_repr(value)}")


def _check_rng(rng: object, meta: CharRNN) -> None:
    """Random-number states that a scratch generator accepts, so restoring
    them into the real ones cannot fail half-way."""
    _expect_dict(rng, "rng")
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


def _check_step(step: object, meta: CharRNN) -> None:
    if not _is_int(step) or step < 0:
        raise CheckpointError(f"'step' must be an integer >= 0, got {_short_repr(step)}")


def _expect_dict(value: object, name: str) -> None:
    if not isinstance(value, dict):
        raise CheckpointError(f"'{name}' must be a dict, got {type(value).__name__}")


# The entries a checkpoint may leave out: the value a file without it stands
# for, and the check of each (given the weightless model, for the optimizer).
_OPTIONAL_ENTRIES = (
    ("optimizer_state", None, _check_optimizer),
    ("step", 0, _check_step),
    ("history", {}, _check_history),
    ("train_config", {}, lambda value, meta: _check_fields(TrainConfig, value, "train_config")),
    ("data_config", {}, lambda value, meta: _check_fields(DataConfig, value, "data_config")),
    ("rng", {}, _check_rng),
)


def check_contents(ckpt: object) -> None:
    """Every entry of a loaded checkpoint, by type and range: the format and
    its version, the required model, weights and vocabulary, then each of
    :data:`_OPTIONAL_ENTRIES`."""
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
    meta = check_model(ckpt)[2]
    for entry, absent, check in _OPTIONAL_ENTRIES:
        check(ckpt.get(entry, absent), meta)
