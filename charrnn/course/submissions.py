"""Which handed-in file is which notebook: a class's folder as it really comes.

A learning-management system renames what it hands back to the teacher
(``carol/carol_12345_01_data_and_tokenization.ipynb``), students rename
their copy (``01.ipynb``, ``nb02 final.ipynb``) or hand it in twice. A file
is matched to a graded notebook, best rule first:

1. its name is the notebook's (``01_data_and_tokenization.ipynb``);
2. its name ends with the notebook's (``carol_12345_01_data_and_tokenization``);
3. it carries the notebook's number as a word of its own (``01``, ``nb01``,
   ``week-01-final``; not the ``12345`` of a student id).

A notebook that two files match equally well, or a file that could be two
notebooks, is graded from neither: grading the wrong one silently would be
worse than asking. Both, and every file that matches nothing, are reported
in words, so the teacher can rename and grade again; nothing here stops the
class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Matched", "match_submissions"]

_RULES = ("name", "name suffix", "number")


@dataclass
class Matched:
    """One student's files: ``notebooks`` maps a notebook's stem to the file
    graded for it; ``problems`` says in words what could not be matched."""

    notebooks: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _rule(stem: str, notebook: str) -> int | None:
    """Index into :data:`_RULES` of the best rule by which a file named
    ``stem`` is ``notebook``, or None."""
    name, number = stem.lower(), notebook.split("_")[0]
    if name == notebook.lower():
        return 0
    if name.endswith(notebook.lower()) and not name[-len(notebook) - 1].isalnum():
        return 1
    # numbers as words: "nb01" and "week-1" give 01 and 1; the 12345 of "carol_12345" is no notebook's
    numbers = re.findall(r"(?<!\d)\d{1,2}(?!\d)", name)
    return 2 if number.isdigit() and int(number) in {int(n) for n in numbers} else None


def _notebook_files(folder: Path) -> list[Path]:
    """Every ``.ipynb`` under ``folder`` (an LMS may nest them), without
    Jupyter's ``.ipynb_checkpoints`` copies or other hidden folders."""
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def match_submissions(folder: Path, notebooks: list[str]) -> Matched:
    """Match the files in one student's ``folder`` to the graded
    ``notebooks`` (their stems, ``01_data_and_tokenization``)."""
    found = Matched()
    files = _notebook_files(folder)
    best: dict[Path, tuple[int, list[str]]] = {}
    for path in files:
        ranked = [(rule, nb) for nb in notebooks if (rule := _rule(path.stem, nb)) is not None]
        if not ranked:
            found.problems.append(f"{path.relative_to(folder)}: matches no graded notebook; skipped")
            continue
        top = min(rule for rule, _ in ranked)
        best[path] = (top, [nb for rule, nb in ranked if rule == top])
    for path, (_, candidates) in best.items():
        if len(candidates) > 1:
            found.problems.append(f"{path.relative_to(folder)}: could be {' or '.join(candidates)}; "
                                  "graded as neither, rename it")
    for nb in notebooks:
        claims = [(rule, path) for path, (rule, candidates) in best.items() if candidates == [nb]]
        if not claims:
            continue
        top = min(rule for rule, _ in claims)
        winners = [path for rule, path in claims if rule == top]
        if len(winners) == 1:
            found.notebooks[nb] = winners[0]
        else:
            names = ", ".join(str(p.relative_to(folder)) for p in winners)
            found.problems.append(f"{nb}: {len(winners)} files match it by {_RULES[top]} ({names}); "
                                  "graded none, keep one")
    return found
