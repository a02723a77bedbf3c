"""The lecture plan and the homework brief agree with themselves and with the
notebooks: each lecture's timings run from 0 to 90 minutes without a gap or an
overlap, and the homework's points add up to what nbgrader's metadata in the
notebooks and the brief's own totals say."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PLAN = (ROOT / "instructor" / "lecture_plan.md").read_text(encoding="utf-8")
HOMEWORK = (ROOT / "instructor" / "homework.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def lecture_slots(text: str) -> dict[str, list[tuple[int, int]]]:
    """The ``| a–b |`` minute ranges of each ``## Lecture`` section."""
    slots = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title = part.split("\n", 1)[0]
        if title.startswith("Lecture"):
            slots[title] = [(int(a), int(b)) for a, b in re.findall(r"^\| (\d+)–(\d+) \|", part, flags=re.M)]
    return slots


def test_three_lectures_each_fill_90_minutes_without_gaps():
    slots = lecture_slots(PLAN)
    assert len(slots) == 3
    for title, ranges in slots.items():
        starts, ends = [a for a, _ in ranges], [b for _, b in ranges]
        assert starts[0] == 0 and ends[-1] == 90, title
        assert starts[1:] == ends[:-1], f"{title}: a gap or an overlap in {ranges}"


def test_the_timing_test_would_see_a_gap():
    broken = PLAN.replace("| 5–25 |", "| 6–25 |", 1)
    title = next(iter(lecture_slots(broken)))
    ranges = lecture_slots(broken)[title]
    assert [a for a, _ in ranges][1:] != [b for _, b in ranges][:-1]


def autograded_points() -> int:
    total = 0
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                total += meta.get("points", 0)
    return total


def test_part_a_lists_the_points_the_notebooks_award():
    part_a = HOMEWORK.split("**Part A", 1)[1].split("**Part B", 1)[0]
    listed = sum(int(p) for p in re.findall(r"\((\d+)\)", part_a))
    assert listed == autograded_points() == 46


def test_part_b_has_eight_exercises_of_3_points_each_with_a_rubric_row_and_an_answer_cell():
    brief = re.findall(r"^\| (B\d) \| (\d\d), exercise (\d)", HOMEWORK, flags=re.M)
    rubric = re.findall(r"^\| (B\d) \| `answers/(\d\d)_\w+\.md`, Exercises (\d) \|", HOMEWORK, flags=re.M)
    cells = re.findall(r"^\| (\d\d) \| .*? \| `answer_(\d\d)_ex(\d)` \| (\d+) \|", HOMEWORK, flags=re.M)
    assert len(brief) == 8 and brief == rubric
    assert [(nb, ex) for _, nb, ex in brief] == [(nb, ex) for nb, _, ex, _ in cells]
    assert sum(int(points) for *_, points in cells) == 8 * 3 == 24
    for _, nb, ex in brief:
        key = next((ROOT / "instructor" / "answers").glob(f"{nb}_*.md")).read_text(encoding="utf-8")
        assert re.search(rf"^### {ex}\. ", key.split("## Exercises", 1)[1], flags=re.M), f"{nb} exercise {ex}"


def test_the_total_is_the_sum_of_the_parts():
    parts = re.findall(r"^\| [ABC] \| .*? \| (\d+) \|", HOMEWORK, flags=re.M)
    assert [int(p) for p in parts] == [46, 24, 15]
    assert "85 points in all" in HOMEWORK and "85 points" in PLAN
