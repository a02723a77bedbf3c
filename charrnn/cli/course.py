"""``student`` and ``grade``: the course tools, for a teacher. They need the
``course`` extra (nbformat, nbgrader), so :mod:`charrnn.course` is imported
only once :func:`~charrnn.errors.require` has said what is missing."""

from __future__ import annotations

from pathlib import Path

from ..errors import CharRNNError
from ..optional import require
from .flags import with_default


def add_student_parser(sub) -> None:
    """The ``student`` command and its flags."""
    text = "write exercise versions of the notebooks for students"
    p = sub.add_parser("student", help=text, description=text + (
        ": the code between solution markers becomes `raise NotImplementedError`, outputs are cleared"))
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                   help=with_default("folder of solved notebooks", "notebooks/"))
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

    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    # refuses to write over the solved ones, or (without --overwrite) over a student's
    written = make_student_versions(args.notebooks, args.out, overwrite=args.overwrite)
    if not written:
        raise CharRNNError(f"{args.notebooks}: holds no .ipynb notebook")
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook(s): solutions replaced by `raise NotImplementedError`, "
          "outputs, widget state and test markers removed")


def add_grade_parser(sub) -> None:
    """The ``grade`` command and its flags."""
    text = "grade a folder of submitted notebooks into a CSV of points (with nbgrader)"
    p = sub.add_parser("grade", help=text, description=text + (
        ": SUBMISSIONS holds one folder per student, named by the student's id, with the notebooks "
        "handed in under their original names; each notebook runs in a fresh kernel and every "
        "exercise whose check passes scores its points"))
    p.add_argument("submissions", type=Path, help="folder with one subfolder of notebooks per student")
    p.add_argument("--out", type=Path, default=Path("scores.csv"),
                   help=with_default("CSV to write: one row per student, one column per exercise", "scores.csv"))
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                   help=with_default("folder of solved notebooks (the answer key and the points)", "notebooks/"))
    p.add_argument("--course-dir", type=Path, default=None,
                   help="keep nbgrader's course folder here (gradebook.db, the executed notebooks with every "
                        "check's message); default: a temporary folder")
    p.set_defaults(func=cmd_grade)


def cmd_grade(args) -> None:
    """``grade``: autograde a folder of student submissions with nbgrader and
    write the points per exercise to a CSV."""
    require("nbformat", "course", "charrnn grade")
    require("nbgrader", "course", "charrnn grade")
    from ..course.grading import grade_submissions

    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    rows = grade_submissions(args.submissions, args.out, args.notebooks, course_dir=args.course_dir)
    print(f"wrote {args.out}: {len(rows)} student(s), points per exercise, total and max")
