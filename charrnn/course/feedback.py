"""Feedback a teacher can hand back without editing it.

nbgrader's own feedback (``nbgrader generate_feedback``: each graded
notebook as HTML with the points of every check) shows the hint a check
gave under everything a student should not read: a long traceback, tensors
printed in full, the grader's absolute paths and the ``### BEGIN HIDDEN
TESTS`` re-check code. :class:`CleanFeedback` runs inside nbgrader's
feedback step and leaves, for each error, its one-line name and message (our
checks put the hint in the message), outputs cut to a few lines, paths cut
to file names, and no hidden tests. From the same cleaned notebooks
:func:`write_feedback` writes one short file per student, ``<student>.md``:
each exercise, its points, what its check said.
"""

from __future__ import annotations

import re
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests

from .nbgrader_course import ASSIGNMENT, run_step

__all__ = ["CleanFeedback", "clean_text", "write_feedback"]

MAX_LINES = 12  # of any one output: the first lines of a tensor dump say enough
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# an absolute path (/home/x/course/..., C:\Users\...): not in a URL, kept as its last part
_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+){2,}")


def clean_text(text: str, max_lines: int = MAX_LINES) -> str:
    """``text`` without colour codes or absolute paths, cut to ``max_lines``."""
    text = _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0))[-1], _ANSI.sub("", text))
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines) + ("\n" if text.endswith("\n") and len(lines) <= max_lines else "")


def _clean_output(output) -> None:
    if output.output_type == "error":
        output.evalue = clean_text(output.evalue)
        output.traceback = [f"{output.ename}: {output.evalue}"]  # the hint, without the frames above it
    elif output.output_type == "stream":
        output.text = clean_text(output.text)
    else:
        data = output.get("data", {})
        if "text/plain" in data:
            data["text/plain"] = clean_text(data["text/plain"])


class CleanFeedback(ClearHiddenTests):
    """nbgrader's hidden-test remover, which also cleans every output (see
    the module's docstring)."""

    def preprocess_cell(self, cell, resources, cell_index):
        """Remove the hidden tests, then clean the cell's outputs."""
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        for output in cell.get("outputs", []):
            _clean_output(output)
        return cell, resources


def check_message(cell) -> str:
    """What a graded cell's check said: its error's message, else its
    printed text; one line per line of it."""
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    if errors:
        return f"{errors[-1].ename}: {errors[-1].evalue}" if errors[-1].ename != "ExerciseError" else errors[-1].evalue
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
    return text.strip().splitlines()[0] if text.strip() else "passed"


def _summary(student: str, notebooks: list[Path], scores: dict[tuple[str, str], tuple[float, float]]) -> str:
    import nbformat

    rows, got, of = [], 0.0, 0.0
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if not meta.get("grade") or cell.cell_type != "code":
                continue
            score, points = scores.get((path.stem, meta["grade_id"]), (0.0, float(meta.get("points", 0))))
            got, of = got + score, of + points
            hint = " ".join(check_message(cell).split()).replace("|", "\\|")
            rows.append(f"| {path.stem.split('_')[0]}.{meta['grade_id'].removeprefix('check_')} "
                        f"| {score:g} / {points:g} | {hint} |")
    return "\n".join([f"# {student}: feedback", "", f"{got:g} of {of:g} points in the notebooks handed in.", "",
                      "| exercise | points | what the check said |", "| --- | --- | --- |", *rows, ""])


def write_feedback(api, root: Path, student: str) -> Path | None:
    """nbgrader's feedback for ``student`` (HTML per notebook, cleaned), then
    ``feedback/<student>.md`` beside it. Returns that file, or None when no
    notebook of theirs was graded."""
    from nbgrader.api import Gradebook

    autograded = sorted((root / "autograded" / student / ASSIGNMENT).glob("*.ipynb"))
    if not autograded:
        return None
    run_step(lambda: api.generate_feedback(ASSIGNMENT, student), f"writing {student}'s feedback")
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student)
        scores = {(nb.name, g.name): (float(g.score or 0), float(g.max_score)) for nb in submission.notebooks
                  for g in nb.grades}
    import nbformat

    cleaned = []
    for path in autograded:
        nb = nbformat.read(path, as_version=4)
        nb, _ = CleanFeedback(enforce_metadata=False).preprocess(nb, {})
        cleaned.append(root / "feedback-clean" / path.name)
        cleaned[-1].parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, cleaned[-1])
    out = root / "feedback" / f"{student}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_summary(student, cleaned, scores), encoding="utf-8")
    return out
