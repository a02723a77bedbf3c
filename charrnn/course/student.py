"""Student versions of the notebooks: solutions cut out, outputs cleared.

The committed notebooks hold each exercise's solution between the lines
``# BEGIN SOLUTION`` and ``# END SOLUTION`` so that nbval runs (and checks)
the solved notebook. An instructor hands out the student version::

    make student                                  # replaces what student/ holds, or:
    python -m charrnn student --out student/      # refuses to, without --overwrite

The student versions are also committed, in ``notebooks/student/``: the
Colab and Binder badges open them, and ``charrnn notebooks`` hands them to
whoever installed charrnn with pip (:func:`write_notebooks`). The builder's
output depends only on the solved notebooks (the same bytes on every run), so
a test can rebuild them and say when the committed copies are stale.

The versions come from nbgrader's ``generate_assignment`` (see
:mod:`charrnn.course.nbgrader_course`), so they are the very notebooks
nbgrader later grades: each solution region becomes one
``raise NotImplementedError("your turn")`` at the region's indentation (the
exercise's check then reports "not implemented yet"), outputs are cleared and
the check cells are locked. What only the project's own tools need goes too:
saved widget state (tens of KB per notebook), the ``# NBVAL_...`` marker lines
and per-cell timing metadata. The file is written compactly (each cell's
source as one string, no indentation), so a student copy is little more than
its text.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError, DataError
from ..files import atomic_write
from .nbgrader_course import STUB, generate_assignment

__all__ = ["COMPANIONS", "REFRESH_COMMAND", "STUB", "STUDENT_FOLDER", "in_a_clone", "make_student_version",
           "make_student_versions", "notebooks_home", "write_notebooks"]

STUDENT_FOLDER = "student"  # the committed student copies: notebooks/student/, beside the solved notebooks
REFRESH_COMMAND = "python -m charrnn student --notebooks notebooks --out notebooks/student --overwrite"
COMPANIONS = ("notation.md",)  # what the notebooks link to: written beside them, in either edition
PACKAGE = Path(__file__).resolve().parents[1]  # charrnn/


def _write_compact(nb, f: TextIO) -> None:
    """One string per cell source, no indentation: about the size of the text."""
    import nbformat

    for cell in nb.cells:
        if isinstance(cell.source, list):
            cell.source = "".join(cell.source)
    nbformat.validate(nb)
    json.dump(nb, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")


def _student_versions(sources: list[Path], targets: list[Path]) -> list[Path]:
    """Write the student version of each of ``sources`` to its ``targets``
    (all in one folder): every source is checked and converted first, then
    each is written to a temporary file beside its target
    (:func:`~charrnn.files.atomic_write`), and the temporary files are
    renamed into place only once every one has been written, so a failure
    anywhere leaves the folder as it was."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix="charrnn-course-") as course:
        released = generate_assignment(sources, course)
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as all_or_none:  # an error unwinds every write; none is renamed
            for path, target in zip(released, targets, strict=True):
                f = all_or_none.enter_context(atomic_write(target, "w", encoding="utf-8"))
                _write_compact(nbformat.read(path, as_version=4), f)
    return targets


def make_student_version(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write the student version of notebook ``src`` to ``dst`` (replacing
    ``dst``: the caller names the very file). Returns the number of
    exercises (solution cells) it holds."""
    import nbformat

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ConfigError(f"{src}: refusing to overwrite the solved notebook with its student version")
    _student_versions([src], [dst])
    nb = nbformat.read(dst, as_version=4)
    return sum(bool(c.metadata.get("nbgrader", {}).get("solution")) for c in nb.cells)


def make_student_versions(src_dir: str | os.PathLike, dst_dir: str | os.PathLike,
                          overwrite: bool = False) -> list[Path]:
    """Student versions of every ``*.ipynb`` in ``src_dir``, written under
    ``dst_dir`` with the same names. Returns the paths written.

    A notebook already in ``dst_dir`` may hold a student's work, so it is
    replaced only with ``overwrite=True``; otherwise nothing is written and
    :class:`~charrnn.errors.ConfigError` names the files. Every source is
    checked before anything is written (:class:`~charrnn.errors.DataError`
    names a bad one), and a failure leaves ``dst_dir`` as it was."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if src_dir.resolve() == dst_dir.resolve():
        raise ConfigError(f"{src_dir}: the student versions need another folder (--out)")
    sources = sorted(src_dir.glob("*.ipynb"))
    if not sources:
        return []
    if len({p.stem.lower() for p in sources}) != len(sources):
        raise DataError(f"{src_dir}: two notebooks differ only in case")
    targets = [dst_dir / p.name for p in sources]
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{dst_dir}: already holds {', '.join(existing)}, which would be replaced (a student's "
                          "edits would be lost); choose another folder, or replace them with --overwrite "
                          "(overwrite=True)")
    written = _student_versions(sources, targets)
    for name in COMPANIONS:  # the pages the notebooks link to, so that their links work in dst_dir too
        if (src_dir / name).is_file():
            shutil.copyfile(src_dir / name, dst_dir / name)
            written.append(dst_dir / name)
    return written


def in_a_clone() -> bool:
    """Whether this charrnn runs from a clone of the repository (an editable
    install, or ``python -m charrnn`` in the checkout): then the notebooks,
    the Makefile and ``make lab`` are right there."""
    root = PACKAGE.parent
    return (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()


def notebooks_home() -> Path | None:
    """The folder of the solved notebooks this installation holds, with the
    student copies in its ``student/``: the package's own ``charrnn/notebooks``
    (package data, in an installed wheel) or else the clone's ``notebooks/``.
    None when there is neither (a wheel built without them)."""
    for home in (PACKAGE / "notebooks", PACKAGE.parent / "notebooks" if in_a_clone() else None):
        if home is not None and any(home.glob("[0-9][0-9]_*.ipynb")):
            return home
    return None


def _edition(solved: bool) -> tuple[Path, list[Path]]:
    """The home of the notebooks, and the files of one edition: its
    notebooks, then the pages they link to."""
    home = notebooks_home()
    if home is None:
        raise ConfigError(f"{PACKAGE}: this installation of charrnn holds no notebooks; reinstall it "
                          "(pip install --force-reinstall charrnn-course) or clone "
                          "https://github.com/charrnn/charrnn")
    folder = home if solved else home / STUDENT_FOLDER
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ConfigError(f"{folder}: holds no student copies of the notebooks; in the clone, run `make "
                          f"student-copies` ({REFRESH_COMMAND})")
    return home, notebooks + [home / name for name in COMPANIONS if (home / name).is_file()]


def write_notebooks(out: str | os.PathLike, solved: bool = False, overwrite: bool = False) -> list[Path]:
    """Copy the course's notebooks into the folder ``out``: the student
    edition (exercises to do, no outputs) or, with ``solved=True``, the
    instructors' (solutions and outputs), with :data:`COMPANIONS` beside them.
    Returns the paths written.

    A file already in ``out`` may hold a student's work: without
    ``overwrite`` nothing is written and :class:`~charrnn.errors.ConfigError`
    names the files. All files are written or none (as :func:`make_student_versions`)."""
    out = Path(out)
    home, sources = _edition(solved)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: is a file, not a folder to write the notebooks into")
    if out.resolve() in {home.resolve(), (home / STUDENT_FOLDER).resolve()}:
        raise ConfigError(f"{out}: is where the notebooks come from; choose another folder (--out)")
    targets = [out / p.name for p in sources]
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{out}: already holds {', '.join(existing)}, which would be replaced (your edits "
                          "would be lost); choose another folder, or replace them with --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as all_or_none:  # an error unwinds every write; none is renamed
        for source, target in zip(sources, targets, strict=True):
            with open(source, "rb") as src:
                shutil.copyfileobj(src, all_or_none.enter_context(atomic_write(target, "wb")))
    return targets
