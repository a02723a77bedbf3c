"""The notebook quiz: the shipped questions are well formed (one right
option, feedback on every option, a notebook that exists), their answers are
nowhere in the notebooks, a broken quiz file is refused with its line named,
and ``show`` hands jupyterquiz HTML and JavaScript that hold the questions."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

from charrnn.course import quiz

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ITEMS = quiz.load_questions()


def notebook_text(path: Path) -> str:
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_notebook_has_several_questions(path):
    assert len(quiz.questions(path.name)) >= 3


def test_every_question_belongs_to_a_notebook_and_has_one_right_option_with_feedback():
    numbers = {p.stem[:2] for p in NOTEBOOKS}
    for item in ITEMS:
        assert item["notebook"] in numbers
        assert [a["correct"] for a in item["answers"]].count(True) == 1, item["question"]
        assert len(item["answers"]) >= 3
        assert all(a["feedback"].strip() for a in item["answers"])
    assert len({item["question"] for item in ITEMS}) == len(ITEMS), "a question is asked twice"


def test_the_questions_are_not_in_the_student_notebooks():
    """Neither in the notebooks' cells nor anywhere in the student copies
    built from them (``notebooks/student/``, where it exists, has no outputs:
    the solved notebooks' quiz output does hold the answers, for the browser)."""
    copies = sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))
    texts = [notebook_text(p) for p in NOTEBOOKS] + [p.read_text(encoding="utf-8") for p in copies]
    for item in ITEMS:
        assert not any(item["question"] in t for t in texts), item["question"]
        right = next(a for a in item["answers"] if a["correct"])
        assert not any(right["feedback"] in t for t in texts), right["feedback"]


def test_the_parameter_count_question_has_the_count_pytorch_gives():
    model = [nn.Embedding(100, 32), nn.RNN(32, 128), nn.Linear(128, 100)]
    total = sum(p.numel() for layer in model for p in layer.parameters())
    item = next(i for i in ITEMS if i["question"].startswith("A model has an embedding (V = 100"))
    right = next(a["answer"] for a in item["answers"] if a["correct"])
    assert right == f"{total:,}"


def test_the_top_p_question_keeps_what_the_library_keeps():
    from charrnn.sample import top_p_filter

    kept = top_p_filter(torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05]), 0.8)
    item = next(i for i in ITEMS if i["question"].startswith("Sorted probabilities are 0.5, 0.2, 0.15"))
    right = next(a["answer"] for a in item["answers"] if a["correct"])
    assert int((kept > 0).sum()) == 3 and right.startswith("the first three, renormalised")
    assert torch.isclose(kept.sum(), torch.tensor(1.0))


def bad(**change) -> dict:
    item = json.loads(json.dumps(ITEMS[0]))
    item.update(change)
    return item


@pytest.mark.parametrize("item, message", [
    (bad(answers=[{"answer": "a", "correct": True, "feedback": "f"}, {"answer": "b", "correct": True, "feedback": "f"},
                  {"answer": "c", "correct": False, "feedback": "f"}]), "exactly one option must be correct, found 2"),
    (bad(answers=[{"answer": x, "correct": False, "feedback": "f"} for x in "abc"]), "found 0"),
    (bad(answers=[{"answer": "a", "correct": True, "feedback": " "}, {"answer": "b", "correct": False, "feedback": "f"},
                  {"answer": "c", "correct": False, "feedback": "f"}]), "'a' has no feedback"),
    (bad(answers=[{"answer": "a", "correct": True, "feedback": "f"}, {"answer": "a", "correct": False, "feedback": "f"},
                  {"answer": "c", "correct": False, "feedback": "f"}]), "two options have the same text"),
    (bad(answers=[{"answer": "a", "correct": True, "feedback": "f"}]), "at least three options"),
    (bad(notebook="3"), "two-digit number"),
    (bad(type="numeric"), "only multiple_choice"),
    ({"question": "q"}, "exactly the keys"),
])
def test_a_malformed_question_is_refused_with_the_reason(item, message):
    with pytest.raises(ValueError, match="here: ") as caught:
        quiz.check_question(item, "here")
    assert message in str(caught.value)


def test_a_broken_quiz_file_names_its_line(tmp_path):
    path = tmp_path / "quiz.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"quiz.jsonl, line 3: not valid JSON"):
        quiz.load_questions(path)
    with pytest.raises(FileNotFoundError, match="no such quiz file"):
        quiz.load_questions(tmp_path / "missing.jsonl")


def test_a_notebook_is_named_by_number_or_file_name():
    assert quiz.questions(3) == quiz.questions("03") == quiz.questions("notebooks/03_the_language_model.ipynb")
    with pytest.raises(ValueError, match="no quiz for notebook '12'; there are quizzes for 01, 02"):
        quiz.questions("12")
    with pytest.raises(ValueError, match="is not a notebook number"):
        quiz.questions("intro")


def shown(monkeypatch, notebook) -> list:
    """The objects ``quiz.show`` hands to IPython's display."""
    pytest.importorskip("jupyterquiz")
    import jupyterquiz.dynamic.display as jq_display

    objects: list = []
    monkeypatch.setattr(jq_display, "display", objects.append)
    quiz.show(notebook)
    return objects


def test_show_gives_jupyterquiz_html_and_javascript_holding_the_questions(monkeypatch):
    from IPython.display import HTML, Javascript

    random.seed(1)
    expected_next = random.random()
    random.seed(1)
    html, script = shown(monkeypatch, "01")
    assert random.random() == expected_next, "show() changed the caller's random state"
    assert isinstance(html, HTML) and isinstance(script, Javascript)
    div_id = re.search(r'<div id="(\w+)"', html.data).group(1)
    assert f"questions{div_id}" in script.data, "the script does not fill the quiz's container"
    first = quiz.questions("01")[0]
    assert json.dumps(first["question"])[1:-1] in script.data
    assert "&lt;bos&gt; h i &lt;eos&gt;" in script.data, "a <bos> in a question must reach the browser escaped"
    assert "<bos>" not in script.data.split("var questions", 1)[1].split("\n", 1)[0]
    assert [o.data for o in shown(monkeypatch, "01")] == [html.data, script.data], "the output is not reproducible"


def test_the_printed_quiz_marks_one_answer_per_question_only_when_asked():
    with_answers, blank = quiz.as_markdown(answers=True), quiz.as_markdown(answers=False)
    assert with_answers.count("**(right)**") == len(ITEMS)
    assert "**(right)**" not in blank and ITEMS[0]["answers"][0]["feedback"] not in blank
    assert blank.count("## Notebook ") == len(NOTEBOOKS)


def test_the_instructor_answer_key_is_the_printed_quiz():
    key = (ROOT / "instructor" / "quiz_answers.md").read_text(encoding="utf-8")
    assert key.endswith(quiz.as_markdown(answers=True)), "regenerate: see the top of instructor/quiz_answers.md"


def test_the_command_line_prints_a_notebook_and_refuses_an_unknown_one(capsys):
    quiz.main(["05"])
    out = capsys.readouterr().out
    assert out.startswith("## Notebook 05") and "**(right)**" not in out
    with pytest.raises(SystemExit) as exit_:
        quiz.main(["12", "--answers"])
    assert exit_.value.code == 2
    assert "no quiz for notebook '12'" in capsys.readouterr().err


def test_show_without_jupyterquiz_says_how_to_install_it(monkeypatch):
    from charrnn.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "jupyterquiz", None)
    with pytest.raises(MissingDependencyError, match=r"the notebook quiz needs jupyterquiz.*\[notebooks\]"):
        quiz.show("01")
