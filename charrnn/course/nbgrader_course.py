"""The notebooks as one nbgrader assignment: the solved notebooks are its source.

Why nbgrader: it is the grading tool most Jupyter classrooms already run (with
JupyterHub and its formgrader), it grades on the instructor's own machine
without Docker, it keeps points in the notebooks' cell metadata, and during
grading it puts back the original of every locked cell, so a student who edits
or deletes a check still gets the real one. The solved notebooks carry that
metadata: each exercise cell is a nbgrader *solution* cell (its
``# BEGIN SOLUTION`` region becomes ``raise NotImplementedError("your turn")``),
and the check cell after it is a locked, autograded cell worth its points. A
check cell scores its points when it runs without an error, zero otherwise.

A check cell is locked, but a student could still replace the check itself
from their own cell (``checks.check_rnn_layer = lambda f: None``). So the
source that nbgrader keeps for grading runs every check a second time from a
freshly reloaded copy of :mod:`charrnn.course.checks` and each of its modules,
inside nbgrader's hidden tests: students never see those lines, nbgrader
restores them before grading.

nbgrader's course folder, under ``root``::

    source/charrnn/NN_*.ipynb       the solved notebooks, prepared below
    release/charrnn/NN_*.ipynb      what students get (generate_assignment)
    submitted/<student>/charrnn/    what each student hands in
    autograded/<student>/charrnn/   their notebooks, executed and scored
    feedback/<student>/charrnn/     nbgrader's feedback on them, as HTML (cleaned: .feedback)
    gradebook.db                    points per exercise per student
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import DataError
from ..optional import require

ASSIGNMENT = "charrnn"
STUB = 'raise NotImplementedError("your turn")'
NBVAL_MARKER = "# NBVAL_"  # lines such as "# NBVAL_IGNORE_OUTPUT": for the test runner, not for students
_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt): ")
CELL_TIMEOUT_S = 300  # per cell while grading: a student's slow loop fails that cell, not the whole class

__all__ = ["ASSIGNMENT", "STUB", "exercises", "generate_assignment", "nbgrader_api", "prepare_source",
           "read_source"]


def _check_modules() -> list[str]:
    """The modules of the checks package, ``common`` first: the notebook
    modules import from it, so a reload must renew it before them."""
    names = sorted(path.stem for path in (Path(__file__).parent / "checks").glob("*.py") if path.stem != "__init__")
    return sorted(names, key=lambda name: name != "common")


def _hidden_recheck(check_source: str) -> str:
    """The check cell again, run from a fresh copy of every checks module.

    Reloading the package alone would re-import the notebook modules as they
    are, a student's replacement of ``nb02_rnn_cell.check_rnn_layer`` or of a
    shared helper included; so each module is reloaded, by a loop written
    out here in the cell rather than a function a student could replace."""
    modules = ", ".join(f'"{name}"' for name in _check_modules())
    return (check_source.rstrip("\n") + "\n### BEGIN HIDDEN TESTS\n"
            "import importlib as _importlib\n\n"
            "import charrnn.course.checks as _graders_checks\n\n"
            "# undo a student's changes to the checks: shared helpers first, each notebook's next, the package last\n"
            f"for _graders_module in ({modules}):\n"
            '    _importlib.reload(_importlib.import_module("charrnn.course.checks." + _graders_module))\n'
            "checks = _importlib.reload(_graders_checks)\n"
            "checks.common.GRADING = True  # this run counts: a check may ask for what only a homework has\n"
            + check_source.rstrip("\n") + "\n### END HIDDEN TESTS")


def exercises(nb) -> list[tuple[str, float]]:
    """``(exercise, points)`` for every autograded cell of a notebook, in order;
    the exercise is the check's grade id without its ``check_`` prefix."""
    found = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            found.append((meta["grade_id"].removeprefix("check_"), float(meta["points"])))
    return found


def prepare_source(nb):
    """The solved notebook as nbgrader's source: no outputs, widget state, test
    markers or timing metadata, and a hidden re-check in every check cell."""
    nb.metadata.pop("widgets", None)  # saved widget state: the widgets' last values, tens of KB
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)  # timestamps some front ends store
        lines = cell.source.splitlines(keepends=True)
        cell.source = "".join(line for line in lines if not line.lstrip().startswith(NBVAL_MARKER)).rstrip("\n")
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = _hidden_recheck(cell.source)
    return nb


def nbgrader_api(root: str | os.PathLike, executor=None, cleaner=None):
    """An nbgrader API on the course folder ``root``, configured for these
    notebooks (our stub, no Docker, missing check cells put back). Grading
    runs the notebooks with ``executor``, a subclass of nbgrader's
    ``Execute`` (:class:`~charrnn.course.grade_worker.DeadlineExecute`
    adds a time limit per notebook); its feedback, by ``cleaner``
    (:class:`~charrnn.course.feedback.CleanFeedback`)."""
    NbGraderAPI = require("nbgrader.apps", "course", "making student versions and grading").NbGraderAPI
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    config = Config()
    if executor is not None:  # nbgrader's own steps, whatever its version, with its Execute replaced
        steps = Autograde.autograde_preprocessors.default()
        config.Autograde.autograde_preprocessors = [executor if step is Execute else step for step in steps]
    if cleaner is not None:  # and the cleaner after its own feedback steps
        config.GenerateFeedback.preprocessors = [*GenerateFeedback.preprocessors.default(), cleaner]
    config.CourseDirectory.root = str(Path(root).resolve())
    config.CourseDirectory.course_id = ASSIGNMENT
    config.ClearSolutions.code_stub = {"python": STUB}
    config.Execute.timeout = CELL_TIMEOUT_S
    config.OverwriteCells.add_missing_cells = True  # a deleted check cell is graded all the same
    config.NbGraderAPI.log_level = "WARN"
    return NbGraderAPI(config=config)


@contextlib.contextmanager
def _scripts_on_path() -> Iterator[None]:
    """nbgrader runs the ``alembic`` script by name: put this Python's scripts
    folder (the virtual environment's ``bin``) first on PATH meanwhile."""
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), before])
    try:
        yield
    finally:
        os.environ["PATH"] = before


def run_step(step: Callable[[], dict], what: str) -> None:
    """Run one nbgrader API call; when it fails, raise :class:`DataError`
    naming ``what`` failed and nbgrader's reason (the exception in its log)."""
    with _scripts_on_path(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session")  # nbgrader's own SQLAlchemy chatter
        warnings.filterwarnings("ignore", message="Cell is missing an id")  # a check cell nbgrader put back
        result = step()
    if not result.get("success"):
        lines = [line.strip() for line in (result.get("log") or "").splitlines() if line.strip()]
        # the exception at the end of a traceback (without its module), else nbgrader's last words
        errors = [re.sub(r"^[\w.]+\.(?=\w+:)", "", line) for line in lines if _EXCEPTION_LINE.match(line)]
        reasons = errors or [line for line in lines if not line.startswith("[")] or lines or ["nbgrader gave no reason"]
        raise DataError(f"{what} failed: {reasons[-1]}")


def _one_line(text: str, limit: int = 200) -> str:
    """A library's message as one short line (jsonschema's span many)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_source(path: Path):
    """Notebook ``path``, read and checked: readable JSON, valid by the
    notebook schema, at least one cell. Anything else raises
    :class:`DataError` naming the file, so a folder of notebooks is checked
    in full before anything is written (nbformat's own errors are
    multi-line and do not say which file they are about)."""
    nbformat = require("nbformat", "course", "making student versions and grading")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        raise DataError(f"{path}: not a valid notebook ({_one_line(e.message)}); "
                        "open it in Jupyter and save it again, or restore it") from None
    except (ValueError, AttributeError, TypeError, KeyError) as e:  # NotJSONError, a list, bad encoding...
        raise DataError(f"{path}: not a readable notebook ({_one_line(e)}); restore it") from None
    if not nb.cells:
        raise DataError(f"{path}: holds no cells; remove it from the folder, or restore it")
    return nb


def _failing_notebook(notebooks: list[Path], source: Path) -> tuple[Path, Exception] | None:
    """Which of ``notebooks`` (prepared in ``source``) nbgrader's preprocessors
    reject, and their exception, found in this process (in milliseconds),
    with their log silenced: nbgrader's own report does not name the
    notebook."""
    import logging

    import nbformat
    from nbgrader.preprocessors import CheckCellMetadata, ClearSolutions

    quiet = logging.getLogger("charrnn.nbgrader-check")
    quiet.disabled = True
    for path in notebooks:
        nb = nbformat.read(source / path.name, as_version=4)
        try:
            for step in (ClearSolutions(code_stub={"python": STUB}, log=quiet), CheckCellMetadata(log=quiet)):
                nb, _ = step.preprocess(nb, {})
        except Exception as error:  # noqa: BLE001 - any failure marks the notebook, and says why
            return path, error
    return None


def generate_assignment(notebooks: list[Path], root: str | os.PathLike) -> list[Path]:
    """Lay out the course folder ``root`` with ``notebooks`` as the assignment's
    source and run nbgrader's generate_assignment. Returns the released
    (student) notebooks, in the order given. Every notebook is read and
    checked (:func:`read_source`) before nbgrader runs; an error names
    the notebook it is about."""
    nbformat = require("nbformat", "course", "making student versions and grading")
    checked = [read_source(path) for path in notebooks]
    source = Path(root) / "source" / ASSIGNMENT
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for path, nb in zip(notebooks, checked, strict=True):
        nbformat.write(prepare_source(nb), source / path.name)
    api = nbgrader_api(root)
    try:
        run_step(lambda: api.generate_assignment(ASSIGNMENT, force=True, create=True),
                 f"preparing the student versions of {', '.join(p.name for p in notebooks)}")
    except DataError:
        found = _failing_notebook(notebooks, source)
        if found is None:  # not a notebook's fault (the gradebook, nbgrader itself): its own reason
            raise
        culprit, error = found
        raise DataError(f"preparing the student version of {culprit} failed: {_one_line(error)}") from None
    return [Path(root) / "release" / ASSIGNMENT / path.name for path in notebooks]
