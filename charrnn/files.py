"""Writing files safely: a file is replaced whole or not at all, and a full
disk is one clear line.

Why a module of its own: checkpoints, JSON-lines samples, prepared datasets
and student notebooks are all written by code that can be stopped half way
(Ctrl-C, a crash, a full disk). Writing straight over the target would then
leave half a file where a good one was. :func:`atomic_write` writes to a
temporary file beside the target instead, forces it to disk (``fsync``) and
renames it over the target in one step (``os.replace``), so a reader only
ever sees the old file or the new one. One implementation, tested once,
instead of four copies that drift apart.

This module sits just above :mod:`charrnn.errors` in the library's layers:
it may import nothing else of charrnn, so every other module can use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import DataError

# errno values that mean "the disk (or the user's quota) is full".
# EDQUOT is missing on some platforms; ENOSPC then stands in for it.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(error: OSError) -> bool:
    """True when ``error`` says the disk or quota is full. numpy's ``tofile``
    reports a short write as an ``OSError`` without an errno ("N requested
    and M written"), which on a regular file only a full disk causes."""
    if error.errno in DISK_FULL_ERRNOS:
        return True
    return error.errno is None and "requested and" in str(error)


def disk_full_message(path: str | os.PathLike, error: OSError | None = None) -> str:
    """The one line a full disk gives for ``path``: the file's name, and
    numpy's own words when there is no errno to go by."""
    detail = f" ({error})" if error is not None and error.errno is None else ""
    return f"no space left on device while writing {path}{detail}"


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Around writes to ``path``: a full disk (or quota) becomes one
    :class:`~charrnn.errors.DataError` naming the file, instead of numpy's
    "N requested and M written" or an errno without a file name. Other
    errors pass through unchanged."""
    try:
        yield
    except OSError as e:
        if is_disk_full(e):
            raise DataError(disk_full_message(path, e)) from None
        raise


def os_reason(error: OSError) -> str:
    """What went wrong, in the operating system's words and without the
    temporary file's name ("No space left on device")."""
    return error.strerror or str(error) or type(error).__name__


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: hidden, named after it and
    this process, with a random part so that two writers never share one."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 temp: str | os.PathLike | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block
    ends without an error, flush it, ``fsync`` it and rename it over
    ``path`` in one step. When the block (or the rename) fails, the
    temporary file is deleted and ``path`` is left as it was, whatever it
    held. Errors pass through unchanged: callers decide how to word them
    (see :func:`writing` and :func:`is_disk_full`).

    ``mode`` is ``"w"`` or ``"wb"`` (text needs an ``encoding``). The
    temporary file is created exclusively (``"x"``), so it is never someone
    else's file; ``temp`` names it when the caller needs a name it can
    recognise later (a checkpoint removes what killed saves left). The new
    file gets the usual permissions (the umask's), like any file ``open``
    creates. Why the rename must stay in one folder: ``os.replace`` is one
    step only within a file system.
    """
    if not mode.startswith("w"):
        raise ValueError(f"atomic_write writes a new file: mode must start with 'w', got {mode!r}")
    path = Path(path)
    tmp = Path(temp) if temp is not None else temp_path_for(path)
    try:
        with open(tmp, "x" + mode[1:], encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
