"""Grade a class: a folder of submitted notebooks in, a CSV of points out.

::

    python -m charrnn grade submissions/ --out scores.csv

``submissions/`` holds one folder per student, named by the student's id,
with the notebooks they hand in under their original names::

    submissions/alice/02_rnn_cell_from_scratch.ipynb
    submissions/alice/03_the_language_model.ipynb
    submissions/bob/02_rnn_cell_from_scratch.ipynb

nbgrader does the grading (see :mod:`charrnn.course.nbgrader_course` for why
and how): it puts back every locked check cell, runs each notebook top to
bottom in a fresh kernel, and gives an exercise its points when its check ran
without an error. A notebook a student did not hand in scores zero. The CSV has
one row per student and one column per exercise (``02.rnn_layer``), then
``total`` and ``max``; the executed notebooks, with every check's message, stay
in the course folder when ``course_dir`` is given.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError, DataError
from .nbgrader_course import ASSIGNMENT, exercises, generate_assignment, nbgrader_api, run_step

__all__ = ["grade_submissions", "score_columns"]


def score_columns(notebooks: list[Path]) -> list[tuple[str, str, str, float]]:
    """``(column, notebook, grade_id, points)`` for every exercise, in notebook
    order; the column is the notebook's number and the exercise
    (``02.rnn_layer``)."""
    import nbformat

    columns = []
    for path in notebooks:
        for name, points in exercises(nbformat.read(path, as_version=4)):
            columns.append((f"{path.stem.split('_')[0]}.{name}", path.stem, f"check_{name}", points))
    return columns


def _student_folders(submissions: Path) -> list[Path]:
    if not submissions.is_dir():
        raise ConfigError(f"{submissions}: no such folder of submissions")
    folders = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{submissions}: holds no student folders; put each student's notebooks in "
                        "a folder named by the student's id")
    return folders


def _hand_in(folder: Path, root: Path, known: set[str]) -> list[str]:
    """Copy one student's notebooks to nbgrader's ``submitted`` folder.
    Returns the names of notebooks that are not part of the assignment."""
    target = root / "submitted" / folder.name / ASSIGNMENT
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    unknown = []
    for path in sorted(folder.glob("*.ipynb")):
        if path.stem in known:
            shutil.copy(path, target / path.name)
        else:
            unknown.append(path.name)
    return unknown


def _scores(api, student: str, columns) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        scored = {(nb.name, grade.name): float(grade.score) for nb in submission.notebooks for grade in nb.grades}
    return {column: scored.get((notebook, grade_id), 0.0) for column, notebook, grade_id, _ in columns}


def grade_submissions(submissions: str | os.PathLike, out_csv: str | os.PathLike,
                      notebooks_dir: str | os.PathLike = "notebooks",
                      course_dir: str | os.PathLike | None = None, log=print) -> list[dict]:
    """Grade every student folder under ``submissions`` against the solved
    notebooks in ``notebooks_dir`` and write ``out_csv``. Returns its rows."""
    submissions, notebooks_dir = Path(submissions), Path(notebooks_dir)
    notebooks = sorted(notebooks_dir.glob("*.ipynb"))
    columns = score_columns(notebooks)
    if not columns:
        raise DataError(f"{notebooks_dir}: no notebook with autograded exercises")
    folders = _student_folders(submissions)
    graded = [p for p in notebooks if any(nb == p.stem for _, nb, _, _ in columns)]
    with tempfile.TemporaryDirectory(prefix="charrnn-grading-") as tmp:
        root = Path(course_dir) if course_dir is not None else Path(tmp)
        generate_assignment(graded, root)
        api = nbgrader_api(root)
        rows = []
        for folder in folders:
            for name in _hand_in(folder, root, {p.stem for p in graded}):
                log(f"{folder.name}: {name} is not one of the graded notebooks; skipped")
            run_step(lambda f=folder: api.autograde(ASSIGNMENT, f.name, force=True, create=True),
                     f"grading {folder.name}")
            scores = _scores(api, folder.name, columns)
            rows.append({"student": folder.name, **scores, "total": sum(scores.values()),
                         "max": sum(points for *_, points in columns)})
            log(f"{folder.name}: {rows[-1]['total']:g} of {rows[-1]['max']:g} points")
    _write_csv(rows, Path(out_csv))
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v) for k, v in row.items()})
