"""The instructors' answer key covers every open exercise and every
"check yourself" question of every notebook, and the student build never
ships it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from helpers import student_versions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ANSWERS = ROOT / "instructor" / "answers"


def section(text: str, title: str) -> str:
    """The text under ``## title`` up to the next ``## `` heading."""
    parts = re.split(r"^## ", text, flags=re.M)
    return next((p.split("\n", 1)[1] for p in parts if p.startswith(title)), "")


def numbered(text: str) -> int:
    return len(re.findall(r"^(?:### )?\d+\.\s", text, flags=re.M))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_question_has_a_worked_answer(path):
    markdown = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    key = (ANSWERS / f"{path.stem}.md").read_text(encoding="utf-8")
    for title in ("Exercises", "Check yourself"):
        asked, answered = numbered(section(markdown, title)), numbered(section(key, title))
        assert asked > 0 and answered >= asked, f"{path.name} {title}: {asked} asked, {answered} answered"


def test_the_student_build_leaves_the_answers_out():
    written = list(student_versions().rglob("*"))
    assert {p.suffix for p in written} == {".ipynb", ".md"}
    assert [p.name for p in written if p.suffix == ".md"] == ["notation.md"]  # the symbols, linked from each notebook
    assert not any("answer" in p.name.lower() for p in written)
