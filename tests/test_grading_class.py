"""Grading a messy class: renamed files, a notebook that is not JSON, an
endless loop (one that stops when interrupted, one that does not), a blank
hand-in. Each costs what it breaks and no more; the CSV is written with a
``problems`` column; the feedback is fit to hand back; the kernels keep
quiet.

The class (``grading_class.py``) hands in notebooks 01 and 02 only, five
students, two at a time, with a 15-second limit per notebook: about a
minute on two cores. The thirty-student run is ``benchmarks/grade_class.py``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_class import fabricate
from helpers import student_versions

from charrnn.cli import main
from charrnn.course import grading
from charrnn.course.feedback import CleanFeedback, clean_text
from charrnn.course.submissions import match_submissions

ROOT = Path(__file__).resolve().parents[1]
NB01, NB02 = (ROOT / "notebooks" / f"{stem}.ipynb" for stem in ("01_data_and_tokenization", "02_rnn_cell_from_scratch"))
STEMS = ["01_data_and_tokenization", "02_rnn_cell_from_scratch", "03_the_language_model"]
KINDS = ["renamed", "endless", "stubborn", "broken", "blank"]
TIMEOUT_S = 15


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}", encoding="utf-8")


def test_files_are_matched_by_name_then_suffix_then_number(tmp_path):
    _touch(tmp_path, "01_data_and_tokenization.ipynb", "carol_12345_02_rnn_cell_from_scratch.ipynb",
           "lms/nb03 final.ipynb", ".ipynb_checkpoints/01_data_and_tokenization-checkpoint.ipynb")
    found = match_submissions(tmp_path, STEMS)
    assert found.notebooks == {"01_data_and_tokenization": tmp_path / "01_data_and_tokenization.ipynb",
                               "02_rnn_cell_from_scratch": tmp_path / "carol_12345_02_rnn_cell_from_scratch.ipynb",
                               "03_the_language_model": tmp_path / "lms" / "nb03 final.ipynb"}
    assert found.problems == []


def test_an_exact_name_beats_a_number_and_a_student_id_is_no_number(tmp_path):
    _touch(tmp_path, "02_rnn_cell_from_scratch.ipynb", "02 draft.ipynb", "carol_12345.ipynb")
    found = match_submissions(tmp_path, STEMS)
    assert found.notebooks == {"02_rnn_cell_from_scratch": tmp_path / "02_rnn_cell_from_scratch.ipynb"}
    assert found.problems == ["carol_12345.ipynb: matches no graded notebook; skipped"]


def test_ambiguous_files_are_reported_and_graded_as_neither(tmp_path):
    _touch(tmp_path, "week 01.ipynb", "01 final.ipynb", "01_02.ipynb")
    found = match_submissions(tmp_path, STEMS)
    assert found.notebooks == {}
    assert found.problems == ["01_02.ipynb: could be 01_data_and_tokenization or 02_rnn_cell_from_scratch; "
                              "graded as neither, rename it",
                              "01_data_and_tokenization: 2 files match it by number (01 final.ipynb, "
                              "week 01.ipynb); graded none, keep one"]


def test_clean_text_drops_paths_colours_and_long_dumps():
    text = "\x1b[31mValueError\x1b[0m in /home/ta/course/autograded/bob/charrnn/x.py, see https://a.b/c/d\n"
    assert clean_text(text) == "ValueError in x.py, see https://a.b/c/d\n"
    assert clean_text("\n".join(map(str, range(30))), max_lines=3) == "0\n1\n2\n... (27 more lines)"


def test_the_feedback_cleaner_keeps_the_hint_and_drops_the_rest():
    cell = nbformat.v4.new_code_cell("checks.check_encode(encode)\n### BEGIN HIDDEN TESTS\n"
                                     "import importlib\n### END HIDDEN TESTS")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "check_encode", "points": 2, "solution": False,
                                 "locked": True, "schema_version": 3}
    cell.outputs = [nbformat.v4.new_output("error", ename="ExerciseError", evalue="Hint: look at /srv/x/y.py",
                                           traceback=["Traceback (most recent call last)", "  File ..."] * 20)]
    nb, _ = CleanFeedback().preprocess(nbformat.v4.new_notebook(cells=[cell]), {})
    assert nb.cells[0].source == "checks.check_encode(encode)"
    assert nb.cells[0].outputs[0].traceback == ["ExerciseError: Hint: look at y.py"]


def test_a_notebook_that_will_not_stop_is_killed_with_its_children(tmp_path, monkeypatch):
    """The last resort, when even the kernel's time limit does not end a
    notebook: the worker and what it started are killed, the notebook is
    reported, and the student's other notebooks are graded again."""
    monkeypatch.setattr(grading, "KILL_GRACE_S", 0)
    student = grading._Student("dave", tmp_path, ["01_data_and_tokenization", "02_rnn_cell_from_scratch"])
    student.progress.write_text(json.dumps({"t": time.time() - 5, "start": "01_data_and_tokenization"}) + "\n",
                                encoding="utf-8")
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    import psutil

    for _ in range(200):  # its child, once started (seconds on a busy machine)
        children = psutil.Process(process.pid).children()
        if children:
            break
        time.sleep(0.1)
    child = children[0]
    assert grading._overdue(student, 1, time.time()) == "01_data_and_tokenization"
    grading._kill(process)
    grading._after_kill(student, "01_data_and_tokenization", 1)
    assert process.returncode is not None
    for _ in range(100):  # SIGKILL lands in its own time; dead is gone, or a zombie no one is left to collect
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the worker's child is still running")
    assert student.todo == ["02_rnn_cell_from_scratch"]
    assert "01_data_and_tokenization: still running after 1 s" in student.problems[0]
    assert grading._overdue(student, 1, time.time()) is None  # the killed notebook is not killed again


def test_without_notebooks_outside_a_clone_the_message_says_what_to_pass(tmp_path, monkeypatch, capsys):
    import charrnn.course.student as student

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(student, "notebooks_home", lambda: None)
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    assert main(["grade", "subs"]) == 2
    assert "pass --notebooks DIR" in capsys.readouterr().err


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded, with what the terminal showed (file descriptors
    included: the kernels write there, not to sys.stderr)."""
    tmp = tmp_path_factory.mktemp("class")
    ids = fabricate(tmp / "submissions", KINDS, [NB01, NB02], student_versions())
    out = tmp / "scores.csv"
    result = subprocess.run([sys.executable, "-m", "charrnn", "grade", str(tmp / "submissions"), "--out", str(out),
                             "--notebooks", str(ROOT / "notebooks"), "--jobs", "2", "--timeout", str(TIMEOUT_S)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(out, newline="", encoding="utf-8") as f:
        rows = {row["student"].rsplit("_", 1)[0]: row for row in csv.DictReader(f)}
    assert len(rows) == len(ids)
    return tmp, rows, result.stdout + result.stderr


def test_each_failure_costs_what_it_breaks(graded):
    _, rows, _ = graded
    total = {kind: float(row["total"]) for kind, row in rows.items()}
    assert total == {"renamed": 9, "endless": 7, "stubborn": 6, "broken": 6, "blank": 0}
    assert rows["endless"]["01.pad_batch"] == "1"  # the loop cost encode; the checks before the deadline kept theirs
    assert rows["stubborn"]["02.rnn_backward"] == rows["broken"]["02.rnn_backward"] == "4"


def test_the_problems_column_says_what_went_wrong(graded):
    _, rows, _ = graded
    problems = {kind: row["problems"] for kind, row in rows.items()}
    assert problems["renamed"] == "notes.ipynb: matches no graded notebook; skipped"
    assert problems["endless"].startswith(f"01_data_and_tokenization: ran out of its {TIMEOUT_S} s")
    assert problems["stubborn"].startswith(f"01_data_and_tokenization: ran out of its {TIMEOUT_S} s and did not "
                                           "stop when interrupted")
    assert problems["broken"].startswith("01_data_and_tokenization.ipynb: not a readable notebook")
    assert problems["blank"] == ""


def test_the_kernels_keep_quiet(graded):
    _, _, shown = graded
    assert "Kernel is running over TCP" not in shown and "WARNING" not in shown
    assert "renamed_01: 9 of 46 points (notes.ipynb" in shown


def test_the_feedback_file_gives_exercise_points_and_hint_and_nothing_else(graded):
    tmp, _, _ = graded
    text = (tmp / "feedback" / "blank_05.md").read_text(encoding="utf-8")
    assert "| 02.rnn_layer | 0 / 2 | rnn_layer is not implemented yet:" in text
    assert "Not handed in (0 points): 03_the_language_model" in text
    endless = (tmp / "feedback" / "endless_02.md").read_text(encoding="utf-8")
    assert "| 01.pad_batch | 1 / 1 | ✓ pad_batch is correct" in endless and "What went wrong:" in endless
    for path in (tmp / "feedback").rglob("*.*"):
        shown = path.read_text(encoding="utf-8")
        for leak in ("BEGIN HIDDEN TESTS", "_graders_checks", "Traceback (most", str(tmp), str(ROOT)):
            assert leak not in shown, (path.name, leak)
    assert sorted(p.name for p in (tmp / "feedback" / "renamed_01").iterdir()) == [NB01.stem + ".html",
                                                                                  NB02.stem + ".html"]
