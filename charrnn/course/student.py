"""Student versions of the notebooks: solutions cut out, outputs cleared.

The committed notebooks hold each exercise's solution between the lines
``# BEGIN SOLUTION`` and ``# END SOLUTION`` so that nbval runs (and checks)
the solved notebook. An instructor hands out the student version::

    make student                                  # or:
    python -m charrnn student --out student/

Each solution region, markers included, becomes one
``raise NotImplementedError("your turn")`` at the region's indentation, so the
exercise's check cell reports "not implemented yet" until the student writes
the code. Outputs and execution counts are cleared: students run it themselves,
and the stored outputs would show the solution's results. What only the
project's own tools need goes too: saved widget state (tens of KB per
notebook), the ``# NBVAL_...`` marker lines, and per-cell execution metadata.
The file is written compactly (each cell's source as one string, no
indentation), so a student copy is little more than its text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError, DataError

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("your turn")'
NBVAL_MARKER = "# NBVAL_"  # lines such as "# NBVAL_IGNORE_OUTPUT": for the test runner, not for students

__all__ = ["BEGIN", "END", "STUB", "make_student_version", "make_student_versions", "strip_solutions"]


def strip_solutions(source: str) -> tuple[str, int]:
    """Replace every marked region of one cell's source by the stub.
    Returns the new source and the number of regions replaced; unbalanced
    markers raise :class:`~charrnn.errors.DataError` (a region left open would leak the rest of
    the cell, solution included, or cut real code)."""
    out: list[str] = []
    inside = False
    regions = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise DataError(f"line {number}: {BEGIN!r} inside another solution region")
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            newline = "\n" if line.endswith("\n") else ""
            out.append(indent + STUB + newline)
            regions += 1
        elif marker == END:
            if not inside:
                raise DataError(f"line {number}: {END!r} without a {BEGIN!r} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise DataError(f"{BEGIN!r} without a matching {END!r}")
    text = "".join(out)
    return (text[:-1] if text.endswith("\n") and not source.endswith("\n") else text), regions


def make_student_version(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Write the student version of notebook ``src`` to ``dst``: solutions
    replaced by ``raise NotImplementedError("your turn")``, every output and
    execution count cleared. Returns the number of solution regions replaced."""
    import nbformat

    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ConfigError(f"{src}: refusing to overwrite the solved notebook with its student version")
    try:
        nb = nbformat.read(src, as_version=4)
    except ValueError as e:  # nbformat's NotJSONError and friends
        raise DataError(f"{src}: not a readable notebook ({e})") from None
    regions = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            cell.source, n = strip_solutions(cell.source)
        except DataError as e:
            raise DataError(f"{src}, code cell {index}: {e}") from None
        regions += n
        _clean_code_cell(cell)
    nb.metadata.pop("widgets", None)  # saved widget state: the widgets' last values, tens of KB
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(nb, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    return regions


def _clean_code_cell(cell) -> None:
    """No outputs, no execution count or timing metadata, no test-runner markers."""
    cell.outputs = []
    cell.execution_count = None
    cell.metadata.pop("execution", None)  # timestamps some front ends store
    lines = cell.source.splitlines(keepends=True)
    cell.source = "".join(line for line in lines if not line.lstrip().startswith(NBVAL_MARKER)).rstrip("\n")


def make_student_versions(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[Path]:
    """Student versions of every ``*.ipynb`` in ``src_dir``, written under
    ``dst_dir`` with the same names. Returns the paths written."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if src_dir.resolve() == dst_dir.resolve():
        raise ConfigError(f"{src_dir}: the student versions need another folder (--out)")
    written = []
    for src in sorted(src_dir.glob("*.ipynb")):
        make_student_version(src, dst_dir / src.name)
        written.append(dst_dir / src.name)
    return written
