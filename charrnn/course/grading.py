"""Grade a class: a folder of submitted notebooks in, a CSV of points out.

::

    python -m charrnn grade submissions/ --out scores.csv --jobs 2

``submissions/`` holds one folder per student, named by the student's id,
with the notebooks they handed in, under their names or as a learning
management system renames them (:mod:`.submissions` matches them)::

    submissions/alice/02_rnn_cell_from_scratch.ipynb
    submissions/carol/carol_12345_01_data_and_tokenization.ipynb

nbgrader does the grading (see :mod:`charrnn.course.nbgrader_course` for why
and how): it puts back every locked check cell, runs each notebook top to
bottom in a fresh kernel, and gives an exercise its points when its check ran
without an error. Each student is graded by a process of their own
(:mod:`.grade_worker`), ``jobs`` at a time, each notebook against a time
limit, so a broken or endless notebook costs that notebook and nothing more.
A notebook not handed in scores zero.

The CSV has one row per student and one column per exercise
(``02.rnn_layer``), then ``total``, ``max`` and ``problems``: what went wrong
for that student, in words (a file matched to no notebook, a notebook that
ran out of time...), empty when nothing did. It is written whatever happens
to any one student. ``feedback/<student>.md`` says, for each exercise, the
points and what its check said; ``feedback/<student>/`` holds nbgrader's
own feedback per notebook, cleaned (:mod:`.feedback`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError
from .nbgrader_course import ASSIGNMENT, exercises, generate_assignment, read_source
from .submissions import match_submissions

__all__ = ["NOTEBOOK_TIMEOUT_S", "default_notebooks", "grade_submissions", "score_columns"]

NOTEBOOK_TIMEOUT_S = 300  # per handed-in notebook: the solved ones take seconds each, all nine about 40 s
KILL_GRACE_S = 60  # past its time, a notebook whose kernel ignores interrupts is killed with its process


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


def default_notebooks() -> Path:
    """The solved notebooks to grade against when ``--notebooks`` is not
    given: ``notebooks/`` here, else the ones this installation holds (the
    package's own, or the clone it was installed from)."""
    from .student import notebooks_home

    for candidate in (Path("notebooks"), notebooks_home()):
        if candidate is not None and candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    raise ConfigError("no folder of solved notebooks here, and this installation of charrnn holds none; pass "
                      "--notebooks DIR, the notebooks/ folder of a clone of the course (the answers and the points)")


def _student_folders(submissions: Path) -> list[Path]:
    if not submissions.is_dir():
        raise ConfigError(f"{submissions}: no such folder of submissions")
    folders = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{submissions}: holds no student folders; put each student's notebooks in "
                        "a folder named by the student's id")
    return folders


@dataclass
class _Student:
    """One student's run: their private course folder, what is left to
    grade, and what went wrong so far."""

    name: str
    root: Path
    todo: list[str]
    problems: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def progress(self) -> Path:
        return self.root / "progress.jsonl"

    def events(self) -> list[dict]:
        if not self.progress.exists():
            return []
        return [json.loads(line) for line in self.progress.read_text(encoding="utf-8").splitlines() if line]


def _prepare(folder: Path, base: Path, private: Path, graded: list[str]) -> _Student:
    """A private course folder for one student (nbgrader's layout, a copy of
    the class's gradebook), their matched notebooks handed in to it."""
    matched = match_submissions(folder, graded)
    student = _Student(folder.name, private, [], list(matched.problems))
    for sub in ("source", "release"):
        shutil.copytree(base / sub, private / sub)
    shutil.copy(base / "gradebook.db", private / "gradebook.db")
    target = private / "submitted" / folder.name / ASSIGNMENT
    target.mkdir(parents=True)
    for notebook, path in matched.notebooks.items():
        try:
            read_source(path)
        except DataError as e:  # its message names the file: by its name in the student's folder
            student.problems.append(f"{str(e).replace(str(path), str(path.relative_to(folder)))}; scored 0")
            continue
        shutil.copy(path, target / f"{notebook}.ipynb")
        student.todo.append(notebook)
    return student


def _start(student: _Student, timeout: float) -> None:
    spec = {"root": str(student.root), "student": student.name, "notebooks": student.todo,
            "timeout": timeout, "progress": str(student.progress)}
    (student.root / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    log = open(student.root / "worker.log", "ab")  # noqa: SIM115 - the child writes to it; closed by the OS at exit
    student.process = subprocess.Popen([sys.executable, "-m", "charrnn.course.grade_worker", str(student.root /
                                        "spec.json")], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=student.root, start_new_session=True)
    log.close()


def _kill(process: subprocess.Popen) -> None:
    """The worker and everything it started (its kernels run in sessions of their own)."""
    import psutil  # ipykernel's own dependency, so here wherever nbgrader is

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for proc in [*children, process]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()


def _overdue(student: _Student, timeout: float, started: float) -> str | None:
    """The notebook ``student``'s worker has been running past its time
    and the grace period, if any."""
    events = student.events()
    opened = {e["start"]: e["t"] for e in events if "start" in e}
    closed = {e.get("done") or e.get("failed") or e.get("killed") for e in events}
    running = [(t, nb) for nb, t in opened.items() if nb not in closed]
    # between two notebooks: the clock runs from the last thing the worker said
    since, notebook = max(running) if running else (max([started, *(e["t"] for e in events)]), "starting")
    return notebook if time.time() - since > timeout + KILL_GRACE_S else None


def _after_kill(student: _Student, notebook: str, timeout: float) -> None:
    student.problems.append(f"{notebook}: still running after {timeout:g} s and would not stop; scored as far as "
                            "it got (an endless loop?)")
    with open(student.progress, "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": time.time(), "killed": notebook}) + "\n")
    started = {e["start"] for e in student.events() if "start" in e}
    student.todo = [nb for nb in student.todo if nb not in started]


def _last_words(student: _Student) -> str:
    """The last line the worker wrote to its log (its exception, when it crashed)."""
    lines = (student.root / "worker.log").read_text(encoding="utf-8", errors="replace").split("\n")
    return next((line.strip() for line in reversed(lines) if line.strip()), "no message")[:200]


def _run_all(students: list[_Student], jobs: int, timeout: float, log) -> None:
    """Run the workers, ``jobs`` at a time; kill and restart one whose
    notebook will not stop. Workers run in sessions of their own (a Ctrl-C
    in the terminal does not reach them), so any way out of here kills
    those still running."""
    running: dict[str, tuple[_Student, float]] = {}
    try:
        _schedule(students, running, jobs, timeout, log)
    finally:
        for student, _ in running.values():
            _kill(student.process)


def _schedule(students: list[_Student], running: dict, jobs: int, timeout: float, log) -> None:
    """The loop of :func:`_run_all`; ``running`` is shared so that it can
    clean up after any exception here."""
    waiting = [s for s in students if s.todo]
    while waiting or running:
        while waiting and len(running) < jobs:
            student = waiting.pop(0)
            _start(student, timeout)
            running[student.name] = (student, time.time())
        time.sleep(0.2)
        for name, (student, started) in list(running.items()):
            if student.process.poll() is not None:
                del running[name]
                if student.process.returncode != 0:
                    student.problems.append(f"grading stopped (exit status {student.process.returncode}): "
                                            f"{_last_words(student)}")
                continue
            notebook = _overdue(student, timeout, started)
            if notebook is not None:
                _kill(student.process)
                del running[name]
                _after_kill(student, notebook, timeout)
                log(f"{name}: {notebook} killed after {timeout:g} s")
                if student.todo:
                    waiting.append(student)


def _scores(student: _Student, columns) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{student.root / 'gradebook.db'}", ASSIGNMENT) as gradebook:
        try:
            submission = gradebook.find_submission(ASSIGNMENT, student.name)
        except MissingEntry:
            return {column: 0.0 for column, *_ in columns}
        scored = {(nb.name, g.name): float(g.score or 0) for nb in submission.notebooks for g in nb.grades}
    return {column: scored.get((notebook, grade_id), 0.0) for column, notebook, grade_id, _ in columns}


def _failures(student: _Student, timeout: float) -> list[str]:
    """What the worker's progress file says failed, in words."""
    said = []
    for event in student.events():
        if "failed" in event and "CellTimeoutError" in event["why"]:  # nbgrader gives the notebook up
            said.append(f"{event['failed']}: ran out of its {timeout:g} s and did not stop when interrupted (an "
                        "endless loop that ignores interrupts?); scored 0")
        elif "failed" in event:
            said.append(f"{event['failed']}: {event['why']}; scored 0")
        elif event.get("out_of_time"):
            said.append(f"{event['done']}: ran out of its {timeout:g} s (an endless loop?); the cells after "
                        "that were stopped and their checks scored 0")
    return said


def _merge_gradebook(student: _Student, course_dir: Path) -> None:
    """Copy ``student``'s grades from their private gradebook into the
    class's in ``course_dir``, with their folders, so that nbgrader's own
    tools (formgrader, ``nbgrader export``) see the whole class."""
    from nbgrader.api import Gradebook, MissingEntry

    for sub in ("submitted", "autograded", "feedback"):
        if (student.root / sub / student.name).is_dir():
            shutil.copytree(student.root / sub / student.name, course_dir / sub / student.name, dirs_exist_ok=True)
    with (Gradebook(f"sqlite:///{student.root / 'gradebook.db'}", ASSIGNMENT) as mine,
          Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", ASSIGNMENT) as theirs):
        try:
            submission = mine.find_submission(ASSIGNMENT, student.name)
        except MissingEntry:
            return
        theirs.update_or_create_student(student.name)
        theirs.update_or_create_submission(ASSIGNMENT, student.name, timestamp=submission.timestamp)
        for nb in submission.notebooks:
            for grade in nb.grades:
                into = theirs.find_grade(grade.name, nb.name, ASSIGNMENT, student.name)
                into.auto_score, into.needs_manual_grade = grade.auto_score, grade.needs_manual_grade
            for comment in nb.comments:
                theirs.find_comment(comment.name, nb.name, ASSIGNMENT, student.name).auto_comment = comment.auto_comment
        theirs.db.commit()


def _hand_back(student: _Student, feedback_dir: Path, problems: list[str], missing: list[str]) -> None:
    """``feedback_dir/<student>.md`` (the worker's, with what went wrong and
    what was not handed in) and nbgrader's cleaned HTML per notebook."""
    summary = student.root / "feedback" / f"{student.name}.md"
    text = summary.read_text(encoding="utf-8") if summary.exists() else f"# {student.name}: feedback\n"
    if missing:
        text += "\nNot handed in (0 points): " + ", ".join(missing) + ".\n"
    if problems:
        text += "\nWhat went wrong:\n\n" + "".join(f"- {problem}\n" for problem in problems)
    feedback_dir.mkdir(parents=True, exist_ok=True)
    (feedback_dir / summary.name).write_text(text, encoding="utf-8")
    # the pages only: nbgrader also copies what the notebooks wrote (notebook 09's saved model, megabytes)
    for page in sorted((student.root / "feedback" / student.name / ASSIGNMENT).glob("*.html")):
        (feedback_dir / student.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(page, feedback_dir / student.name / page.name)


def _row(student: _Student, columns, course_dir: Path | None, feedback_dir: Path, timeout: float) -> dict:
    """The student's CSV row; a failure here is one more problem of theirs."""
    import warnings

    problems = list(student.problems) + _failures(student, timeout)
    handed_in = {p.stem for p in (student.root / "submitted" / student.name / ASSIGNMENT).glob("*.ipynb")}
    missing = sorted({notebook for _, notebook, *_ in columns} - handed_in)
    try:
        scores = _scores(student, columns)
        _hand_back(student, feedback_dir, problems, missing)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in session")  # nbgrader's own SQLAlchemy chatter
            if course_dir is not None:
                _merge_gradebook(student, course_dir)
    except Exception as e:  # noqa: BLE001 - one student's broken gradebook must not cost the class its CSV
        scores = {column: 0.0 for column, *_ in columns}
        problems.append(f"reading the grades failed: {' '.join(str(e).split())[:200]}")
    return {"student": student.name, **scores, "total": sum(scores.values()),
            "max": sum(points for *_, points in columns), "problems": "; ".join(problems)}


def grade_submissions(submissions: str | os.PathLike, out_csv: str | os.PathLike,
                      notebooks_dir: str | os.PathLike | None = None,
                      course_dir: str | os.PathLike | None = None, *, jobs: int = 1,
                      timeout: float = NOTEBOOK_TIMEOUT_S, feedback_dir: str | os.PathLike | None = None,
                      log=print) -> list[dict]:
    """Grade every student folder under ``submissions`` against the solved
    notebooks in ``notebooks_dir`` and write ``out_csv`` and the feedback
    (``feedback_dir``, default ``feedback/`` beside the CSV). Returns the rows."""
    if jobs < 1 or timeout <= 0:
        raise ConfigError(f"jobs must be at least 1 and timeout above 0 s; got {jobs} and {timeout:g}")
    submissions = Path(submissions)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks()
    columns = score_columns(sorted(notebooks_dir.glob("*.ipynb")))
    if not columns:
        raise DataError(f"{notebooks_dir}: no notebook with autograded exercises")
    folders = _student_folders(submissions)
    graded = [p for p in sorted(notebooks_dir.glob("*.ipynb")) if any(nb == p.stem for _, nb, _, _ in columns)]
    feedback_dir = Path(feedback_dir) if feedback_dir is not None else Path(out_csv).parent / "feedback"
    rows = []
    with tempfile.TemporaryDirectory(prefix="charrnn-grading-") as tmp:
        base = Path(course_dir) if course_dir is not None else Path(tmp) / "class"
        generate_assignment(graded, base)
        try:
            students = [_prepare(f, base, Path(tmp) / "students" / f.name, [p.stem for p in graded])
                        for f in folders]
            _run_all(students, jobs, timeout, log)
            for student in students:
                rows.append(_row(student, columns, Path(course_dir) if course_dir else None, feedback_dir, timeout))
                note = f" ({rows[-1]['problems']})" if rows[-1]["problems"] else ""
                log(f"{student.name}: {rows[-1]['total']:g} of {rows[-1]['max']:g} points{note}")
        finally:
            _write_csv(rows, Path(out_csv), columns)
    return rows


def _write_csv(rows: list[dict], path: Path, columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["student", *(column for column, *_ in columns), "total", "max", "problems"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v) for k, v in row.items()})
