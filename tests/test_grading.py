"""Grading a class with nbgrader: ``python -m charrnn grade`` on fabricated
submissions gives the expected points, exercise by exercise.

Four students hand in:

- ``solved``: the solved notebooks (the reference answers), all of them;
- ``untouched``: the student versions exactly as handed out;
- ``one_mistake``: notebooks 02 and 03 solved, except that ``masked_loss``
  takes the softmax without the log;
- ``tamperer``: notebook 02 with a wrong ``rnn_layer``, the check replaced from
  their own cell and the check cell emptied; notebook 01 with a right
  ``encode`` and its check cell deleted.

Grading runs every notebook in a fresh kernel, so this is the slowest test
file (about two minutes on two cores).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from grading_class import _own_text  # notebook 09 on a made-up text of the student's own
from helpers import student_versions

from charrnn.cli import main
from charrnn.course.grading import score_columns

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
GRADED = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if '"grade": true' in p.read_text(encoding="utf-8")]
NB09 = NOTEBOOKS / "09_train_your_own.ipynb"  # the homework: its check counts only on the student's own text
NB01, NB02, NB03 = (NOTEBOOKS / n for n in ("01_data_and_tokenization.ipynb", "02_rnn_cell_from_scratch.ipynb",
                                            "03_the_language_model.ipynb"))


def _edit(src: Path, dst: Path, edit) -> None:
    nb = nbformat.read(src, as_version=4)
    nb.cells = [c for c in (edit(cell) for cell in nb.cells) if c is not None]
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


def _without_log(cell):
    if cell.source.startswith("def masked_loss("):
        assert "log_softmax(" in cell.source
        cell.source = cell.source.replace("log_softmax(", "softmax(")
    return cell


def _tampered_rnn_layer(cell):
    if cell.source.startswith("def rnn_layer("):
        cell.source = cell.source.replace('raise NotImplementedError("your turn")',
                                          "return torch.stack([h0] * e.shape[1], dim=1), h0  # never steps\n\n"
                                          "checks.check_rnn_layer = lambda f: None  # no check, no failure")
    elif cell.source.startswith("checks.check_rnn_layer("):
        cell.source = "pass"
    return cell


def _encode_without_its_check(cell):
    if cell.source.startswith("def encode("):
        stubs = cell.source.split('raise NotImplementedError("your turn")')
        assert len(stubs) == 4, "encode, decode and lost_chars: one stub each"
        bodies = ['return [stoi.get(c, stoi["<unk>"]) for c in text]', 'return "".join(itos[i] for i in ids if i > 3)',
                  "return sorted({c for c in text if c not in stoi})"]
        cell.source = stubs[0] + "".join(body + rest for body, rest in zip(bodies, stubs[1:], strict=True))
    elif cell.source.startswith("checks.check_encode("):
        return None
    return cell


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> dict[str, dict[str, float]]:
    submissions = tmp_path_factory.mktemp("submissions")
    for student in ("solved", "untouched", "one_mistake", "tamperer"):
        (submissions / student).mkdir()
    for path in GRADED:
        shutil.copy(path, submissions / "solved" / path.name)
        shutil.copy(student_versions() / path.name, submissions / "untouched" / path.name)
    _edit(NB09, submissions / "solved" / NB09.name, _own_text(submissions.parent / "own_text.txt"))
    shutil.copy(NB02, submissions / "one_mistake" / NB02.name)
    _edit(NB03, submissions / "one_mistake" / NB03.name, _without_log)
    _edit(student_versions() / NB02.name, submissions / "tamperer" / NB02.name, _tampered_rnn_layer)
    _edit(student_versions() / NB01.name, submissions / "tamperer" / NB01.name, _encode_without_its_check)
    out = submissions.parent / "scores.csv"
    assert main(["grade", str(submissions), "--out", str(out), "--notebooks", str(NOTEBOOKS), "--jobs", "2",
                 "--course-dir", str(submissions.parent / "course")]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(row.pop("problems") == "" for row in rows), rows  # each handed in only what is graded, all readable
    return {row.pop("student"): {k: float(v) for k, v in row.items()} for row in rows}


def _points() -> dict[str, float]:
    return {column: points for column, _, _, points in score_columns(GRADED)}


def test_every_exercise_has_points_and_a_column():
    points = _points()
    assert len(points) == 20 and all(p >= 1 for p in points.values())
    assert list(points)[-1] == "09.saved_model"
    assert list(points)[:3] == ["01.encode", "01.pad_batch", "02.rnn_layer"]


def test_a_solved_notebook_scores_full_marks(scores):
    points = _points()
    assert scores["solved"] == {**points, "total": sum(points.values()), "max": sum(points.values())}


def test_the_untouched_student_version_scores_zero(scores):
    assert scores["untouched"]["total"] == 0
    assert all(v == 0 for k, v in scores["untouched"].items() if k != "max")


def test_one_mistake_loses_exactly_that_exercises_points(scores):
    points = _points()
    handed_in = {k: v for k, v in points.items() if k.startswith(("02.", "03."))}
    expected = {k: (0.0 if k == "03.masked_loss" else v) for k, v in handed_in.items()}
    got = {k: v for k, v in scores["one_mistake"].items() if k in points}
    assert got == {**dict.fromkeys(points, 0.0), **expected}
    assert scores["one_mistake"]["total"] == sum(handed_in.values()) - points["03.masked_loss"]


def test_a_check_replaced_or_deleted_by_the_student_still_grades(scores):
    """The tamperer's own `checks.check_rnn_layer = ...` and emptied check
    cell do not save a wrong answer; a deleted check cell is put back and
    grades a right one."""
    got = scores["tamperer"]
    assert got["02.rnn_layer"] == 0
    assert got["01.encode"] == _points()["01.encode"]
    assert got["total"] == _points()["01.encode"]


def test_grading_keeps_the_executed_notebooks_with_the_checks_messages(scores, tmp_path_factory):
    course = next(p for p in tmp_path_factory.getbasetemp().rglob("course") if p.is_dir())
    graded = json.loads((course / "autograded" / "one_mistake" / "charrnn" / NB03.name).read_text(encoding="utf-8"))
    text = json.dumps(graded["cells"])
    assert "masked_loss" in text and "Hint" in text


def test_the_kept_course_folder_has_the_whole_class_in_one_gradebook(scores, tmp_path_factory):
    """Each student is graded in a private course folder; with --course-dir
    their grades end up in one gradebook, as nbgrader's tools expect."""
    from nbgrader.api import Gradebook

    course = next(p for p in tmp_path_factory.getbasetemp().rglob("course") if p.is_dir())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "charrnn") as gradebook:
        got = {s.student.id: s.score for s in gradebook.assignment_submissions("charrnn")}
    assert got == {name: row["total"] for name, row in scores.items()}


def test_grading_names_a_missing_folder(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nobody"), "--out", str(tmp_path / "s.csv"),
                 "--notebooks", str(NOTEBOOKS)]) == 2
    assert "no such folder of submissions" in capsys.readouterr().err


def test_the_readme_table_lists_the_points_of_the_notebooks():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| notebook | exercises (points) |"):]
    table = table[:table.index("\n\n")]
    listed = {}
    for number, exercises in re.findall(r"^\| (\d\d) \| (.+) \|$", table, flags=re.M):
        for name, points in re.findall(r"`(\w+)` \((\d+)\)", exercises):
            listed[f"{number}.{'char_model' if name == 'RNNLanguage' else name}"] = float(points)
    assert listed == _points()


def test_student_versions_lock_the_checks_and_leave_the_exercises_open():
    for path in GRADED:
        nb = nbformat.read(student_versions() / path.name, as_version=4)
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert graded, path.name
        assert len(graded) == len(answers) or (path == NB09 and not answers), path.name  # 09 checks a file
        assert all(c.metadata.get("editable") is False and c.metadata.get("deletable") is False for c in graded)
        assert all(c.metadata.get("editable", True) for c in answers)
        assert not any("HIDDEN TESTS" in c.source or "_graders_checks" in c.source for c in nb.cells), path.name
