"""What a student sees when a check fails: the check's message, not its code.

A failed check raises :class:`~.common.ExerciseError`. Python would show the
traceback through the check's own frames (thirty lines that end in the
reference solution's lines) before the one line that matters. In a notebook
IPython asks an exception for its lines through ``_render_traceback_``, and
:meth:`ExerciseError._render_traceback_ <.common.ExerciseError>` answers with
:func:`render` below: the message and its hint, and, when the student's own
function raised, that error's traceback through the student's frames only.

The exception is still raised as before, so the cell still fails: the kernel
still answers "error" (Run All stops there), nbgrader still scores the cell
0, nbval still sees the error. Plain Python (pytest, a script) never calls
``_render_traceback_`` and prints the full traceback as always.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType

CHECKS_DIR = os.path.dirname(os.path.abspath(__file__))


def _in_checks(tb: TracebackType) -> bool:
    """Whether ``tb``'s frame runs the code of a module of this package."""
    return os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == CHECKS_DIR


def students_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without the frames of the checks' own code: what is left is
    the student's function and whatever it called. A new chain; ``tb``
    itself is unchanged."""
    kept = []
    while tb is not None:
        if not _in_checks(tb):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for frame in reversed(kept):
        chain = TracebackType(chain, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return chain


def _formatter():
    """The running IPython's traceback formatter (its colours, its
    ``%xmode``), or None outside IPython; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "InteractiveTB", None)


def _text(error: BaseException, tb: TracebackType | None = None, *, message_only: bool = False) -> str:
    """``error`` (with traceback ``tb``, or its message alone) as IPython
    would show it, or as the ``traceback`` module would outside IPython."""
    formatter = _formatter()
    if formatter is not None:
        if message_only:
            return formatter.stb2text(formatter.get_exception_only(type(error), error))
        return formatter.stb2text(formatter.structured_traceback(type(error), error, tb, tb_offset=0))
    if message_only:
        return f"{type(error).__name__}: {error}"
    return "".join(traceback.format_exception(type(error), error, tb))


def render(error: BaseException) -> list[str]:
    """What a notebook shows for a failed check's ``error``, as one text:
    its message (which holds the hint), then, if the student's function
    raised it (``_call`` chains that error as the cause), the student's part
    of that error's traceback. Never raises: IPython would then show an
    error of its own instead."""
    try:
        parts = [_text(error, message_only=True).rstrip("\n")]
        cause = error.__cause__
        theirs = students_frames(cause.__traceback__) if cause is not None else None
        if theirs is not None:
            parts += ["", f"Your code raised the {type(cause).__name__} here:",
                      _text(cause, theirs).rstrip("\n")]
        return ["\n".join(parts)]
    except Exception:  # noqa: BLE001 - a failed rendering must not hide the failed check
        return [f"{type(error).__name__}: {error}"]
