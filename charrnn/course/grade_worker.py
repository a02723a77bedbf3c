"""One student's grading, in a process of its own: ``python -m charrnn.course.grade_worker SPEC``.

:mod:`.grading` starts one of these per student (``--jobs`` at a time), each
on a private nbgrader course folder with its own gradebook: nbgrader's
SQLite gradebook is not made for several writers, and a student whose code
crashes the process or never ends then takes down nothing but their own
run. The kernels' chatter (``Kernel is running over TCP without
encryption``, six lines a student) goes to this process's log file, not the
teacher's terminal.

Each notebook is autograded on its own (nbgrader's ``notebook_id``), so one
that fails costs that notebook only, and runs against a deadline
(:class:`DeadlineExecute`): once a notebook has used its time, every cell
still to run is interrupted after a second, the checks that passed before
keep their points. The worker writes a line to ``progress.jsonl`` as each
notebook starts and ends; the parent reads it to kill a notebook whose
kernel will not be interrupted, and to say what went wrong. At the end it
writes nbgrader's feedback (``generate_feedback``), cleaned (:mod:`.feedback`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from nbgrader.preprocessors import Execute

from ..errors import DataError
from .nbgrader_course import ASSIGNMENT, nbgrader_api, run_step

__all__ = ["DeadlineExecute", "grade_student"]

LAST_CELLS_S = 1  # once a notebook's time is spent: what each remaining cell gets before its interrupt


class DeadlineExecute(Execute):
    """nbgrader's executor with a time limit per notebook as well as per
    cell: a cell gets what is left of the notebook's ``notebook_timeout``
    seconds (set by the worker), at most the per-cell ``timeout``."""

    notebook_timeout: float | None = None

    def preprocess(self, nb, resources=None, km=None):
        """Start the notebook's clock, then run it as nbgrader does."""
        self._deadline = None if self.notebook_timeout is None else time.monotonic() + self.notebook_timeout
        self.timeout_func = self._time_left
        return super().preprocess(nb, resources, km)

    def _time_left(self, cell) -> int:
        if self._deadline is None:
            return self.timeout
        left = int(self._deadline - time.monotonic())
        return max(LAST_CELLS_S, min(left, self.timeout or left))


def _progress(path: Path, **event) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": time.time(), **event}) + "\n")


def grade_student(spec: dict) -> None:
    """Autograde ``spec["notebooks"]`` of ``spec["student"]`` in the course
    folder ``spec["root"]`` one by one, then write their feedback."""
    from .feedback import CleanFeedback, write_feedback

    root, student, progress = Path(spec["root"]), spec["student"], Path(spec["progress"])
    DeadlineExecute.notebook_timeout = spec["timeout"]
    api = nbgrader_api(root, executor=DeadlineExecute, cleaner=CleanFeedback)
    for notebook in spec["notebooks"]:
        _progress(progress, start=notebook)
        api.coursedir.notebook_id = notebook
        began = time.monotonic()
        try:
            run_step(lambda: api.autograde(ASSIGNMENT, student, force=True, create=True),  # noqa: B023 - runs now
                     f"grading {notebook}")
        except DataError as e:
            _progress(progress, failed=notebook, why=str(e))
        else:
            _progress(progress, done=notebook, out_of_time=time.monotonic() - began >= spec["timeout"])
    api.coursedir.notebook_id = "*"
    _progress(progress, start="feedback")
    write_feedback(api, root, student)
    _progress(progress, done="feedback")


if __name__ == "__main__":
    grade_student(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
