"""``notebooks``, ``student`` and ``grade``: the course's notebooks for
anyone who installed charrnn, and the tools for a teacher. ``student`` and
``grade`` need the ``course`` extra (nbformat, nbgrader), so
:mod:`charrnn.course` is imported only once
:func:`~charrnn.errors.require` has said what is missing; ``notebooks`` only
copies files, so it needs nothing."""

from __future__ import annotations

import os
from pathlib import Path

from ..course.grading import NOTEBOOK_TIMEOUT_S  # a number: importing it needs neither nbgrader nor nbformat
from ..errors import CharRNNError
from ..optional import require
from .flags import with_default

NOTEBOOKS_OUT = "charrnn-notebooks"


def add_notebooks_parser(sub) -> None:
    """The ``notebooks`` command and its flags."""
    text = "copy the course's notebooks into a folder, to work through them (no clone needed)"
    p = sub.add_parser("notebooks", help=text, description=text + (
        ": the student edition (exercises to do, no outputs) unless --solved; they come with the "
        "installed package, or from the clone charrnn runs in"))
    p.add_argument("--out", type=Path, default=Path(NOTEBOOKS_OUT),
                   help=with_default("folder to write the notebooks into", NOTEBOOKS_OUT + "/"))
    p.add_argument("--solved", action="store_true",
                   help="the instructors' edition instead: solutions and outputs included")
    p.add_argument("--overwrite", action="store_true",
                   help="replace notebooks already in --out (default: refuse, they may hold your work)")
    p.set_defaults(func=cmd_notebooks)


def cmd_notebooks(args) -> None:
    """``notebooks``: write one edition of the notebooks where the user asks,
    and say how to open them."""
    from ..course.student import write_notebooks

    written = write_notebooks(args.out, solved=args.solved, overwrite=args.overwrite)
    notebooks = [p for p in written if p.suffix == ".ipynb"]
    edition = "solved (instructors')" if args.solved else "student"
    print(f"wrote {len(notebooks)} notebooks, {edition} edition, to {args.out}{os.sep}")
    print(f"open them with: jupyter lab {args.out}   (Jupyter and the notebooks' packages: "
          "pip install 'charrnn-course[notebooks]')")


def _solved_notebooks_default() -> Path:
    """The solved notebooks this installation holds (the clone's or the
    package's), or ``notebooks`` when it holds none (the command then says so)."""
    from ..course.student import notebooks_home

    return notebooks_home() or Path("notebooks")


def add_student_parser(sub) -> None:
    """The ``student`` command and its flags."""
    text = "write exercise versions of the notebooks for students"
    p = sub.add_parser("student", help=text, description=text + (
        ": the code between solution markers becomes `raise NotImplementedError`, outputs are cleared"))
    p.add_argument("--notebooks", type=Path, default=None,
                   help=with_default("folder of solved notebooks", "the notebooks charrnn holds: the clone's "
                                     "notebooks/, or those installed with the package"))
    p.add_argument("--out", type=Path, default=Path("student"),
                   help=with_default("folder to write, not the --notebooks one", "student/"))
    p.add_argument("--overwrite", action="store_true",
                   help="replace notebooks already in --out (default: refuse, they may hold a student's work)")
    p.set_defaults(func=cmd_student)


def cmd_student(args) -> None:
    """``student``: exercise versions of the solved notebooks, solutions
    replaced by ``raise NotImplementedError``, for handing out."""
    require("nbformat", "course", "charrnn student")
    require("nbgrader", "course", "charrnn student")
    from ..course.student import make_student_versions

    args.notebooks = args.notebooks or _solved_notebooks_default()
    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    # refuses to write over the solved ones, or (without --overwrite) over a student's
    written = make_student_versions(args.notebooks, args.out, overwrite=args.overwrite)
    if not written:
        raise CharRNNError(f"{args.notebooks}: holds no .ipynb notebook")
    for path in written:
        print(f"wrote {path}")
    notebooks = sum(p.suffix == ".ipynb" for p in written)
    print(f"{notebooks} student notebook(s): solutions replaced by `raise NotImplementedError`, "
          "outputs, widget state and test markers removed")


def add_grade_parser(sub) -> None:
    """The ``grade`` command and its flags."""
    text = "grade a folder of submitted notebooks into a CSV of points (with nbgrader)"
    p = sub.add_parser("grade", help=text, description=text + (
        ": SUBMISSIONS holds one folder per student, named by the student's id, with the notebooks they "
        "handed in (renamed ones are matched by name suffix or number); each notebook runs in a fresh kernel "
        "and every exercise whose check passes scores its points. One student's broken or endless notebook "
        "costs that notebook: the CSV is always written, its `problems` column says what went wrong"))
    p.add_argument("submissions", type=Path, help="folder with one subfolder of notebooks per student")
    p.add_argument("--out", type=Path, default=Path("scores.csv"),
                   help=with_default("CSV to write: one row per student, one column per exercise", "scores.csv"))
    p.add_argument("--notebooks", type=Path, default=None,
                   help="folder of solved notebooks (the answer key and the points); default: notebooks/ here, "
                        "else the clone charrnn was installed from")
    p.add_argument("--jobs", type=int, default=1,
                   help=with_default("students graded at once; each takes a CPU core or two", "1"))
    p.add_argument("--timeout", type=float, default=NOTEBOOK_TIMEOUT_S,
                   help=with_default("seconds one handed-in notebook may run; past it, its remaining cells score 0",
                                     f"{NOTEBOOK_TIMEOUT_S}"))
    p.add_argument("--feedback", type=Path, default=None,
                   help="folder for the feedback to hand back: <student>.md (exercise, points, the hint) and "
                        "<student>/ (nbgrader's feedback per notebook, cleaned); default: feedback/ beside --out")
    p.add_argument("--course-dir", type=Path, default=None,
                   help="keep nbgrader's course folder here (gradebook.db, the executed notebooks with every "
                        "check's message); default: a temporary folder")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args) -> None:
    """``grade``: autograde a folder of student submissions with nbgrader and
    write the points per exercise to a CSV, and the feedback."""
    require("nbformat", "course", "charrnn grade")
    require("nbgrader", "course", "charrnn grade")
    from ..course.grading import grade_submissions

    if args.notebooks is not None and not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks; pass --notebooks DIR, the "
                           "notebooks/ folder of a clone of the course")
    if args.jobs < 1 or args.timeout <= 0:
        raise CharRNNError(f"--jobs must be 1 or more and --timeout above 0; got {args.jobs} and {args.timeout:g}")
    rows = grade_submissions(args.submissions, args.out, args.notebooks, course_dir=args.course_dir,
                             jobs=args.jobs, timeout=args.timeout, feedback_dir=args.feedback)
    troubled = sum(1 for row in rows if row["problems"])
    feedback = args.feedback or args.out.parent / "feedback"
    print(f"wrote {args.out}: {len(rows)} student(s), points per exercise, total, max and problems "
          f"({troubled} with a problem); feedback in {feedback}/")
