"""The crash-safe transaction around a prepare: a lock, a work directory,
and a rename that swaps the old dataset for the new one.

Everything is written into a ``.NAME.partial-*`` directory beside
``out_dir`` and renamed into place only when complete, ``meta.json`` last:
an interrupted run (Ctrl-C, a crash, a full disk) never leaves a directory
that looks prepared. An overwrite renames the old dataset aside
(``.NAME.partial-old-*``) and the new one in: a run killed between the two
leaves both whole, and the next run (:func:`_recover`) moves the finished
one into place; it deletes only partials that are unfinished or replaced.

``.NAME.lock`` beside ``out_dir`` keeps a second run from working on the
same ``out_dir`` at the same time. It is a :class:`filelock.FileLock`
(``flock`` on Linux and macOS, ``LockFileEx`` on Windows), which the
operating system drops when a run ends however it ends, so a killed run
leaves no stale lock.
"""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ...errors import DataError
from .layout import META, OLD, lock_path, partial_prefix
from .read import is_complete


@contextmanager
def replacing(out_dir: Path, source: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty work directory beside ``out_dir`` to write a dataset
    into; when the block ends, move it into place as ``out_dir`` (the old
    dataset there, if any, is replaced only with ``overwrite``). The lock
    is held throughout, and what a killed run left is recovered first. An
    error in the block deletes the work; Ctrl-C keeps it only when it is
    finished (``meta.json`` written), for the next run to move into place.

    ``out_dir`` never holding ``source`` is checked before anything is
    written, even the lock file."""
    _check_target(out_dir, source)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        _recover(out_dir)
        _check_out_dir(out_dir, source, overwrite)  # again: recovery may have changed it
        work = _make_partial(out_dir)
        try:
            yield work
            _move_into_place(work, out_dir)
        except Exception:
            _remove_tree(work)
            raise
        except BaseException:  # Ctrl-C: a finished dataset is kept for the next run
            if not (work / META).exists():
                _remove_tree(work)
            raise


# ------------------------------------------------------------- the target
def _check_target(out_dir: Path, source: Path) -> None:
    """What rules ``out_dir`` out whatever a killed run left: it holds the
    input (replacing it would delete it), or it is a file (the input itself?)."""
    if _holds(out_dir, source):
        raise DataError(f"{out_dir}: holds the input {source}, which replacing it would delete; "
                        "choose another --out, or move the input out first")
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a directory")


def _check_out_dir(out_dir: Path, source: Path, overwrite: bool) -> None:
    _check_target(out_dir, source)
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not (out_dir / META).exists():
        raise DataError(f"{out_dir}: exists and is not a prepared dataset (no {META}); "
                        "choose another --out, or remove it yourself")
    if not overwrite:
        raise DataError(f"{out_dir}: a prepared dataset is already there; "
                        "pass overwrite=True (--overwrite) to replace it")


def _holds(folder: Path, path: Path) -> bool:
    """True when ``path`` (after links are resolved) lies inside ``folder``."""
    try:
        return folder.resolve() in path.resolve().parents
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): let opening it report that
        return False


# ---------------------------------------------------------- work directories
def _new_partial(out_dir: Path, kind: str = "") -> Path:
    """A fresh, not yet existing ``.NAME.partial-[kind]XXXXXXXX`` path beside ``out_dir``."""
    while True:
        path = out_dir.parent / f"{partial_prefix(out_dir)}{kind}{secrets.token_hex(4)}"
        if not path.exists():
            return path


def _make_partial(out_dir: Path) -> Path:
    """The work directory of a run, made with ``os.mkdir`` so that it gets
    the umask's permissions like any other output (``tempfile.mkdtemp``
    makes it 0700, and the renamed dataset would keep that)."""
    while True:
        path = _new_partial(out_dir)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _rename(source: Path, target: Path) -> None:
    """``os.replace``: one place to make the renames of an overwrite fail in tests."""
    os.replace(source, target)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------- the lock
@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``out_dir`` for a whole prepare: a second
    run on the same ``out_dir`` stops at once (a zero timeout), naming the
    first, instead of waiting for it or deleting its work directory. The
    small file itself stays (deleting it would let two runs lock two
    different files)."""
    path = lock_path(out_dir)
    lock = _file_lock(path)
    try:
        lock.acquire()
    except Timeout:
        raise DataError(f"{out_dir}: another prepare is writing it (process {_holder(path)}, lock "
                        f"{path}); wait for it to end or stop it, then run this again") from None
    try:
        yield
    finally:
        lock.release()


def _file_lock(path: Path) -> FileLock:
    """A lock on ``path`` that never waits. filelock 4 hands the locked file
    to ``on_acquired``, which writes this process's id into it for the
    message a second run gives; older versions lack the hook, and the
    message then says "unknown"."""
    try:
        return FileLock(path, timeout=0, on_acquired=_write_pid)
    except TypeError:  # filelock < 4
        return FileLock(path, timeout=0)


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))


def _holder(path: Path) -> str:
    """The process id the holder of the lock wrote, or "unknown" (Windows
    refuses to read a locked file)."""
    try:
        return path.read_bytes()[:200].decode("ascii", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


# ---------------------------------------------------------------- recovery
def _recover(out_dir: Path) -> None:
    """Finish or undo what a killed run left beside ``out_dir`` (called
    with the lock held, so no live run owns any of it). A finished dataset
    (complete, ``meta.json`` written) is moved into place, as the run that
    made it was about to; a dataset an overwrite had moved aside comes back
    when nothing else is at ``out_dir``; only then are the rest deleted:
    unfinished work, and old copies that a newer dataset has replaced."""
    partials = sorted((p for p in out_dir.parent.glob(partial_prefix(out_dir) + "*") if p.is_dir()),
                      key=lambda p: p.stat().st_mtime)
    old = [p for p in partials if p.name.startswith(partial_prefix(out_dir) + OLD)]
    for work in (p for p in partials if p not in old and is_complete(p)):
        if out_dir.exists() and not _replaceable(out_dir):
            warnings.warn(f"{work} holds a finished dataset, but {out_dir} is not a prepared dataset; "
                          "left both as they are", stacklevel=5)
            continue
        _move_into_place(work, out_dir)
        warnings.warn(f"{out_dir}: moved into place the dataset of an interrupted prepare", stacklevel=5)
    for aside in reversed(old):  # the newest first
        if not out_dir.exists() and is_complete(aside):
            _rename(aside, out_dir)
            warnings.warn(f"{out_dir}: restored the dataset an interrupted prepare had moved aside",
                          stacklevel=5)
    for stale in out_dir.parent.glob(partial_prefix(out_dir) + "*"):
        if stale.is_dir() and _is_leftover(stale, out_dir):
            _remove_tree(stale)


def _is_leftover(partial: Path, out_dir: Path) -> bool:
    """Whether a partial of a dead run may be deleted: unfinished work, or
    an old copy whose place a prepared dataset has taken; never a finished
    dataset that is nowhere else."""
    if not is_complete(partial):
        return True
    return partial.name.startswith(partial_prefix(out_dir) + OLD) and (out_dir / META).exists()


def _replaceable(out_dir: Path) -> bool:
    """``out_dir`` is an empty directory or a prepared dataset."""
    return out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / META).exists())


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Rename the finished directory to ``out_dir``. A dataset already there
    is first renamed aside (``.NAME.partial-old-*``), then deleted, so there
    is never a half-written ``out_dir``; a run killed between the two
    renames leaves both datasets whole, and the next run's :func:`_recover`
    moves the new one into place. A rename that fails puts the old one back."""
    old = None
    if out_dir.exists():
        old = _new_partial(out_dir, OLD)
        _rename(out_dir, old)
    try:
        _rename(work, out_dir)
    except Exception:
        if old is not None:
            _rename(old, out_dir)
        raise
    if old is not None:
        _remove_tree(old)
