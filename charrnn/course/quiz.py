"""A self-checking multiple-choice quiz for each notebook.

The notebooks' "Check yourself" questions show their answers in ``<details>``
blocks, so they cannot test anyone. This quiz asks other questions, one
concept each, whose wrong options are the mistakes the answer keys list; the
answers live only in the package data (``charrnn/assets/quiz.jsonl``, one
question per line), never in a notebook. In a notebook, ``show("03")`` draws
the quiz of notebook 03 with `jupyterquiz <https://pypi.org/project/jupyterquiz/>`_,
which says right or wrong, with the reason, when an option is clicked. An
instructor prints the questions with or without their answers::

    python -m charrnn.course.quiz 03 --answers
"""

from __future__ import annotations

import argparse
import html
import json
import random
from importlib import resources
from pathlib import Path

from ..optional import require

QUESTION_KEYS = {"notebook", "question", "type", "answers"}
ANSWER_KEYS = {"answer", "correct", "feedback"}


def quiz_path() -> Path:
    """The quiz file shipped inside the package, so that ``show`` works
    after ``pip install`` as well as in a clone."""
    return Path(str(resources.files("charrnn") / "assets" / "quiz.jsonl"))


def check_question(item: object, where: str) -> dict:
    """Return ``item`` if it is a well-formed question, or raise ValueError
    naming ``where`` and the problem: a quiz with two right options, or none,
    would mark a student wrong for a right answer."""
    if not isinstance(item, dict) or set(item) != QUESTION_KEYS:
        raise ValueError(f"{where}: a question needs exactly the keys {sorted(QUESTION_KEYS)}")
    notebook, text, answers = item["notebook"], item["question"], item["answers"]
    if not (isinstance(notebook, str) and len(notebook) == 2 and notebook.isdigit()):
        raise ValueError(f"{where}: 'notebook' must be a two-digit number such as \"03\", not {notebook!r}")
    if not (isinstance(text, str) and text.strip()):
        raise ValueError(f"{where}: the question text is empty")
    if item["type"] != "multiple_choice":
        raise ValueError(f"{where}: only multiple_choice questions are supported, not {item['type']!r}")
    if not isinstance(answers, list) or len(answers) < 3:
        raise ValueError(f"{where}: a question needs at least three options")
    for answer in answers:
        if not isinstance(answer, dict) or set(answer) != ANSWER_KEYS:
            raise ValueError(f"{where}: every option needs exactly the keys {sorted(ANSWER_KEYS)}")
        if not (isinstance(answer["answer"], str) and answer["answer"].strip()):
            raise ValueError(f"{where}: an option has no text")
        if not (isinstance(answer["feedback"], str) and answer["feedback"].strip()):
            raise ValueError(f"{where}: the option {answer['answer']!r} has no feedback")
        if not isinstance(answer["correct"], bool):
            raise ValueError(f"{where}: 'correct' must be true or false in option {answer['answer']!r}")
    if sum(a["correct"] for a in answers) != 1:
        raise ValueError(f"{where}: exactly one option must be correct, found {sum(a['correct'] for a in answers)}")
    if len({a["answer"] for a in answers}) != len(answers):
        raise ValueError(f"{where}: two options have the same text")
    return item


def load_questions(path: str | Path | None = None) -> list[dict]:
    """Every question of the quiz file (the shipped one by default), each
    checked, in file order; a bad line is named by file and line number."""
    path = Path(path) if path is not None else quiz_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such quiz file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
        items.append(check_question(item, where))
    return items


def questions(notebook: str | int, path: str | Path | None = None) -> list[dict]:
    """The questions of one notebook, given as 3, "03" or a notebook file
    name such as "03_the_language_model.ipynb"."""
    key = _notebook_key(notebook)
    items = load_questions(path)
    chosen = [item for item in items if item["notebook"] == key]
    if not chosen:
        known = ", ".join(sorted({item["notebook"] for item in items}))
        raise ValueError(f"no quiz for notebook {notebook!r}; there are quizzes for {known}")
    return chosen


def _notebook_key(notebook: str | int) -> str:
    """Two digits, "03", for 3, "3", "03" or "03_the_language_model.ipynb"."""
    text = Path(str(notebook)).name
    digits = text.split("_")[0]
    if not digits.isdigit():
        raise ValueError(f"{notebook!r} is not a notebook number: pass 3, \"03\" or \"03_the_language_model.ipynb\"")
    return f"{int(digits):02d}"


def show(notebook: str | int, path: str | Path | None = None) -> None:
    """Draw the quiz of ``notebook`` in Jupyter. The container's id is drawn
    from a seeded generator (and the caller's ``random`` state restored), so
    the stored output is the same on every run, as nbval needs."""
    jupyterquiz = require("jupyterquiz", "notebooks", "the notebook quiz")
    items = [_for_browser(item) for item in questions(notebook, path)]
    state = random.getstate()
    random.seed(f"charrnn-quiz-{_notebook_key(notebook)}")
    try:
        jupyterquiz.display_quiz(items, shuffle_answers=True)
    finally:
        random.setstate(state)


def _for_browser(item: dict) -> dict:
    """The question as jupyterquiz wants it: without our ``notebook`` key,
    and its texts escaped, since jupyterquiz sets them as HTML and a bare
    ``<bos>`` would vanish as an unknown tag."""
    return {"question": html.escape(item["question"], quote=False), "type": item["type"],
            "answers": [{"answer": html.escape(a["answer"], quote=False), "correct": a["correct"],
                         "feedback": html.escape(a["feedback"], quote=False)} for a in item["answers"]]}


def _md(text: str) -> str:
    """``text`` safe in Markdown: ``<bos>`` shown, not read as a tag, and
    ``*`` shown, not read as emphasis."""
    return html.escape(text, quote=False).replace("*", r"\*")


def as_markdown(notebook: str | int | None = None, answers: bool = True, path: str | Path | None = None) -> str:
    """The quiz as Markdown, for paper or for the answer key: every option
    lettered, and with ``answers`` the right letter and the feedback of each
    option. ``notebook=None`` gives every notebook's quiz."""
    items = load_questions(path) if notebook is None else questions(notebook, path)
    lines: list[str] = []
    current = None
    for item in items:
        if item["notebook"] != current:
            current = item["notebook"]
            lines += [f"## Notebook {current}", ""]
            count = 0
        count += 1
        lines.append(f"{count}. {_md(item['question'])}")
        for index, option in enumerate(item["answers"]):
            letter = chr(ord("a") + index)
            mark = " **(right)**" if answers and option["correct"] else ""
            lines.append(f"   {letter}. {_md(option['answer'])}{mark}")
            if answers:
                lines.append(f"      — {_md(option['feedback'])}")
        lines.append("")
    return "\n".join(lines).strip() + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m charrnn.course.quiz [NOTEBOOK ...] [--answers]``: print
    the quiz of some notebooks (all by default) as Markdown."""
    parser = argparse.ArgumentParser(prog="python -m charrnn.course.quiz", description=main.__doc__)
    parser.add_argument("notebooks", nargs="*", help="notebook numbers, e.g. 03 05 (default: all)")
    parser.add_argument("--answers", action="store_true", help="mark the right option and show all feedback")
    args = parser.parse_args(argv)
    try:
        parts = [as_markdown(nb, answers=args.answers) for nb in args.notebooks] or [as_markdown(None, args.answers)]
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    print("\n".join(parts), end="")


if __name__ == "__main__":
    main()
