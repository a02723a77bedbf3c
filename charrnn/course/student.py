"""Student versions of the notebooks: solutions cut out, outputs cleared.

The committed notebooks hold each exercise's solution between the lines
``# BEGIN SOLUTION`` and ``# END SOLUTION`` so that nbval runs (and checks)
the solved notebook. An instructor hands out the student version::

    make student                                  # replaces what student/ holds, or:
    python -m charrnn student --out student/      # refuses to, without --overwrite

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
import tempfile
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError, DataError
from ..files import atomic_write
from .nbgrader_course import STUB, generate_assignment

__all__ = ["STUB", "make_student_version", "make_student_versions"]


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
    return _student_versions(sources, targets)
