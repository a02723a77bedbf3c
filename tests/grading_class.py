"""A fabricated class of students, as a teacher downloads it, for grading.

Used by ``tests/test_grading_class.py`` (a few students, one of each kind)
and ``benchmarks/grade_class.py`` (thirty). Each kind is one way a real
class hands work in:

- ``solved``: the solved notebooks (notebook 09 trained on a text of their own);
- ``blank``: the student versions, untouched;
- ``one_mistake``: solved, except that ``masked_loss`` takes the softmax without the log;
- ``partial``: notebooks 01 and 02 solved, the rest untouched;
- ``renamed``: solved, each file renamed as an LMS download names it
  (``<id>_12345_01_data_and_tokenization.ipynb``), beside Jupyter's
  checkpoint copy and a stray ``notes.ipynb``;
- ``endless``: solved, but notebook 01's ``encode`` cell never ends;
- ``stubborn``: the same, in a kernel that ignores the interrupt meant to stop it;
- ``broken``: notebook 01 is not JSON (a half-saved file), 02 solved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

STUB = 'raise NotImplementedError("your turn")'
KINDS = ("solved", "blank", "one_mistake", "partial", "renamed", "endless", "stubborn", "broken")


def _edit(src: Path, dst: Path, edit) -> None:
    nb = nbformat.read(src, as_version=4)
    nb.cells = [edit(cell) for cell in nb.cells]
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


def _without_log(cell):
    if cell.source.startswith("def masked_loss("):
        cell.source = cell.source.replace("log_softmax(", "softmax(")
    return cell


def _endless(cell):
    if cell.source.startswith("def encode("):
        cell.source = "while True:  # a loop that never ends\n    pass\n\n" + cell.source
    return cell


def _stubborn(cell):
    if cell.source.startswith("def encode("):
        cell.source = ("import signal\n\nsignal.signal(signal.SIGINT, signal.SIG_IGN)  # deaf to interrupts\n"
                       "while True:\n    pass\n\n" + cell.source)
    return cell


def _own_text(path: Path):
    """Notebook 09 set to train on a text of the student's own (short made-up lines, written to ``path``)."""
    subjects = ["the cat", "a river", "my sister", "the old clock", "our garden", "a quiet train"]
    verbs = ["waits for", "sings to", "remembers", "follows", "looks at", "forgets"]
    objects = ["the moon", "a red kite", "the morning", "its shadow", "the last bus", "a paper boat"]
    path.write_text("\n".join(f"{s} {v} {o}." for s in subjects for v in verbs for o in objects) + "\n",
                    encoding="utf-8")

    def edit(cell):
        if cell.source.startswith("DATA = None"):
            cell.source = cell.source.replace("DATA = None", f"DATA = {str(path)!r}", 1)
            cell.source = cell.source.replace('TEXT_RECORDS = "paragraphs"', 'TEXT_RECORDS = "lines"', 1)
        return cell
    return edit


def _solved(folder: Path, notebooks: list[Path], name=lambda path: path.name) -> None:
    for path in notebooks:
        if path.name.startswith("09_"):
            _edit(path, folder / name(path), _own_text(folder.parent / f"{folder.name}_own_text.txt"))
        else:
            shutil.copy(path, folder / name(path))


def hand_in(kind: str, folder: Path, notebooks: list[Path], student_versions: Path) -> None:
    """Write what a student of ``kind`` hands in to ``folder``, from the
    solved ``notebooks`` and the folder of their ``student_versions``."""
    folder.mkdir(parents=True, exist_ok=True)
    first, second = notebooks[0], notebooks[1]
    if kind in ("solved", "one_mistake", "endless", "stubborn"):
        _solved(folder, notebooks)
    if kind == "one_mistake":
        for path in notebooks:
            if path.name.startswith("03_"):
                _edit(path, folder / path.name, _without_log)
    elif kind in ("endless", "stubborn"):
        _edit(first, folder / first.name, _endless if kind == "endless" else _stubborn)
    elif kind == "blank":
        for path in notebooks:
            shutil.copy(student_versions / path.name, folder / path.name)
    elif kind == "partial":
        _solved(folder, [first, second])
        for path in notebooks[2:]:
            shutil.copy(student_versions / path.name, folder / path.name)
    elif kind == "renamed":
        _solved(folder, notebooks, name=lambda path: f"{folder.name}_12345_{path.name}")
        (folder / ".ipynb_checkpoints").mkdir()
        shutil.copy(first, folder / ".ipynb_checkpoints" / f"{first.stem}-checkpoint.ipynb")
        shutil.copy(student_versions / first.name, folder / "notes.ipynb")
    elif kind == "broken":
        (folder / first.name).write_text('{"cells": [', encoding="utf-8")
        shutil.copy(second, folder / second.name)
    elif kind not in KINDS:
        raise ValueError(f"{kind}: not one of {', '.join(KINDS)}")


def fabricate(submissions: Path, kinds: list[str], notebooks: list[Path], student_versions: Path) -> list[str]:
    """One folder per student under ``submissions``, named ``<kind>_<n>``;
    returns the student ids, in order."""
    ids = [f"{kind}_{n:02d}" for n, kind in enumerate(kinds, 1)]
    for student, kind in zip(ids, kinds, strict=True):
        hand_in(kind, submissions / student, notebooks, student_versions)
    return ids
