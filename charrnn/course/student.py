"""Student versions of the notebooks: solutions cut out, outputs cleared.

The committed notebooks hold each exercise's solution between the lines
``# BEGIN SOLUTION`` and ``# END SOLUTION`` so that nbval runs (and checks)
the solved notebook. An instructor hands out the student version::

    make student                                  # or:
    python -m charrnn student --out student/

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

import json
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError, DataError
from .nbgrader_course import STUB, generate_assignment

__all__ = ["STUB", "make_student_version", "make_student_versions"]


def _write_compact(nb, dst: Path) -> None:
    """One string per cell source, no indentation: about the size of the text."""
    import nbformat

    for cell in nb.cells:
        if isinstance(cell.source, list):
            cell.source = "".join(cell.source)
    nbformat.validate(nb)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(nb, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def _student_versions(sources: list[Path], dst_dir: Path) -> list[Path]:
    import nbformat

    written = []
    with tempfile.TemporaryDirectory(prefix="charrnn-course-") as course:
        for released, src in zip(generate_assignment(sources, course), sources, strict=True):
            _write_compact(nbformat.read(released, as_version=4), dst_dir / src.name)
            written.append(dst_dir / src.name)
    return written


def make_student_version(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write the student version of notebook ``src`` to ``dst``. Returns the
    number of exercises (solution cells) it holds."""
    import nbformat

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ConfigError(f"{src}: refusing to overwrite the solved notebook with its student version")
    with tempfile.TemporaryDirectory(prefix="charrnn-student-") as tmp:
        [written] = _student_versions([src], Path(tmp))
        dst.parent.mkdir(parents=True, exist_ok=True)
        written.replace(dst)
    nb = nbformat.read(dst, as_version=4)
    return sum(bool(c.metadata.get("nbgrader", {}).get("solution")) for c in nb.cells)


def make_student_versions(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[Path]:
    """Student versions of every ``*.ipynb`` in ``src_dir``, written under
    ``dst_dir`` with the same names. Returns the paths written."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if src_dir.resolve() == dst_dir.resolve():
        raise ConfigError(f"{src_dir}: the student versions need another folder (--out)")
    sources = sorted(src_dir.glob("*.ipynb"))
    if not sources:
        return []
    if len({p.stem.lower() for p in sources}) != len(sources):
        raise DataError(f"{src_dir}: two notebooks differ only in case")
    return _student_versions(sources, dst_dir)
