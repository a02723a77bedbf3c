"""Command-line flags made from the config dataclasses, and the argparse
types and checks the commands share.

:func:`add_config_flags` turns each field of a config in
:mod:`charrnn.config` into a flag: the flag is the field name with dashes,
its help, choices and default are the field's, so no default is written
twice. The flags remember how the user spelled them (``--clip`` or
``--clip-norm``), and :func:`config_from_args` turns what was typed back
into a config, with an error that names the flag as typed.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from ..checkpoint import check_writable
from ..errors import CheckpointError, ConfigError


def flag_name(name: str) -> str:
    """``clip_norm`` -> ``--clip-norm``."""
    return "--" + name.replace("_", "-")


def _as_help_text(value) -> str:
    """A default as the help text shows it: none, true/false, or the value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def with_default(text: str, default) -> str:
    """A help text ending with its default, as every flag's does."""
    # argparse %-formats help strings: a literal % must be doubled
    return f"{text} (default: {_as_help_text(default)})".replace("%", "%%")


def typed_flags(args) -> dict[str, str]:
    """``{field name: the spelling the user typed}`` for every config flag on the command line."""
    return getattr(args, "typed_flags", {})


def _remember(namespace, dest: str, option_string: str | None) -> None:
    namespace.typed_flags = {**typed_flags(namespace), dest: option_string}


class _Typed(argparse.Action):
    """Stores the value and remembers how the flag was spelled (``--clip``
    or ``--clip-norm``), so an error can name the flag the user wrote."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _remember(namespace, self.dest, option_string)


class _TypedSwitch(argparse.BooleanOptionalAction):
    """``--amp``/``--no-amp``, remembering which was typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _remember(namespace, self.dest, option_string)


# ------------------------------------------------------------- argparse types
def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _or_none(convert):
    """``convert``, but the word ``none`` gives None (``--eval-batches none``: all)."""
    def parse(text: str):
        return None if text.strip().lower() == "none" else convert(text)
    parse.__name__ = convert.__name__  # argparse names the type in "invalid int value"
    return parse


def device_name(text: str) -> str:
    """argparse type of ``--device``: the name as typed. The command checks
    it with :func:`charrnn.devices.check_device`, whose error is one line
    naming the devices this machine has (argparse would add its usage)."""
    return text.strip()


def _seed(text: str) -> int | str:
    """argparse type of ``--seed``: an integer, or the text as typed, which
    :class:`DataConfig` refuses in one line naming the range (0 to 2**63 - 1)."""
    try:
        return int(text)
    except ValueError:
        return text


# Fields whose flag needs more than the type of the annotation.
_FLAG_TYPES = {"device": device_name, "seed": _seed}


def _flag_type(name: str, hint):
    """The argparse type of a field: its annotation, ``X | None`` as X (or the word none)."""
    if name in _FLAG_TYPES:
        return _FLAG_TYPES[name]
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    optional = len(kinds) < len(typing.get_args(hint))
    return _or_none(kinds[0]) if optional and kinds[0] in (int, float) else kinds[0]


# -------------------------------------------------------- configs <-> flags
def add_config_flags(parser, cls, only: typing.Collection[str] | None = None,
                     base: dict | None = None) -> None:
    """Add a ``--field-name`` flag (and its old spellings) for each field of
    the config class ``cls``, so the command line never repeats a default:
    help, choices, type and the default shown all come from the field
    (``base`` overrides the default a command shows, as demo's steps).
    Flags default to ``SUPPRESS``: only what the user typed reaches
    :func:`config_from_args`. Fields without a default (``vocab_size``) are
    not flags."""
    hints = typing.get_type_hints(cls)
    base = base or {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING or (only is not None and f.name not in only):
            continue
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS,
                  "help": with_default(f.metadata["help"], base.get(f.name, f.default))}
        if hints[f.name] is bool:
            kwargs["action"] = _TypedSwitch
        else:
            kwargs.update(action=_Typed, type=_flag_type(f.name, hints[f.name]),
                          choices=f.metadata.get("choices"))
        parser.add_argument(flag_name(f.name), *f.metadata.get("aliases", ()), **kwargs)


def config_from_args(cls, args, saved: dict | None = None, **fixed):
    """The ``cls`` config a command runs with: the flags the user typed, over
    ``saved`` (a resumed run's settings), over the command's own defaults
    (``demo``'s steps), over the dataclass defaults; ``fixed`` values (the
    ``vocab_size``) win. The one place a command line becomes a config, so
    the commands and the tests agree. A bad value is a one-line
    :class:`ConfigError` naming the flag as typed."""
    names = {f.name for f in dataclasses.fields(cls)}
    typed = {name: getattr(args, name) for name in typed_flags(args) if name in names}
    values = {**getattr(args, "config_base", {}), **(saved or {}), **typed, **fixed}
    try:
        return cls.from_dict(values)
    except ConfigError as e:
        message = str(e)
        flag = typed_flags(args).get(message.split(" ", 1)[0])
        raise ConfigError(f"{flag}: {message}" if flag else message) from None


# ------------------------------------------------------------------- --out
def check_out(out: Path, overwrite: bool, replaceable: bool = False) -> Path:
    """Refuse, before any work, an ``--out`` that cannot be written or that
    would replace an existing file the user did not ask to replace."""
    check_writable(out)
    if out.exists() and not (overwrite or replaceable):
        raise CheckpointError(f"{out}: already exists; add --overwrite to replace it, or choose another --out")
    return out
