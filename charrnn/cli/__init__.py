"""Command line: ``python -m charrnn {demo,download,prepare,train,sample,evaluate,export,notebooks,student,grade}``.

One module per command (or pair of commands), each with the builder of its
parser beside the function it runs: :mod:`.train` (``train``, ``demo``),
:mod:`.sample`, :mod:`.evaluate`, :mod:`.prepare`, :mod:`.download`,
:mod:`.export` and :mod:`.course` (``notebooks``, ``student``, ``grade``).
The flags of ``train`` and ``demo`` (and the data flags of ``prepare`` and
``evaluate``) are built from the fields of the configs in
:mod:`charrnn.config` by :mod:`.flags`: the flag is the field name with
dashes, its help and default are the field's, so no default is written
twice. Every problem a user can cause is reported as one line on stderr
with exit status 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .. import __version__
from ..errors import CharRNNError
from . import course, download, evaluate, export, prepare, sample, train
from .flags import config_from_args
from .train import DEMO_STEPS
from .train import _training_corpora as _training_corpora  # tests read the corpora `train` reads

__all__ = ["DEMO_STEPS", "build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``charrnn`` parser, one small builder per command (the tests and
    the docs read it too)."""
    parser = argparse.ArgumentParser(prog="charrnn", description=(
        "Character-level RNN language models on arXiv titles + abstracts, or on any text of your own."))
    parser.add_argument("--version", action="version", version=f"charrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare.add_prepare_parser(sub)
    download.add_download_parser(sub)
    train.add_train_parser(sub, "train")
    train.add_train_parser(sub, "demo")
    sample.add_sample_parser(sub)
    evaluate.add_evaluate_parser(sub)
    export.add_export_parser(sub)
    course.add_notebooks_parser(sub)
    course.add_student_parser(sub)
    course.add_grade_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"charrnn: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command. A mistake the user can fix (a :class:`CharRNNError`,
    a file the operating system cannot open) is one line on stderr and exit
    status 2; any other exception is a bug and keeps its traceback. A
    command may return its own status: a training run stopped by SIGINT or
    SIGTERM returns 130 or 143 once its checkpoint is written."""
    args = build_parser().parse_args(argv)
    previous_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        status = args.func(args)
    except BrokenPipeError:  # output piped into `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CharRNNError, OSError) as e:
        print(f"charrnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("charrnn: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format
    return status or 0
