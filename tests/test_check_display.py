"""What a student sees when a check fails (charrnn.course.checks.display):
in a notebook, the check's message and hint and the student's own frames,
never the check's code; the cell still fails; plain Python is unchanged."""

from __future__ import annotations

import inspect
import re
import traceback

import nbformat
import pytest

from charrnn.course import checks
from charrnn.course.checks import ExerciseError, check_encode, display

CHECK_FILES = ("nb01_data.py", "common.py", "checks/")
CHECK_SOURCE = ("expected = vocab.encode", "_call(", "refusing_shortcuts", "fork_rng")


def wrong_ids(text, stoi):
    return [stoi.get(c, 0) for c in text]  # <pad> for an unknown character instead of <unk>


def one_too_far(text, stoi):
    ids = []
    for i in range(len(text) + 1):
        ids.append(stoi.get(text[i], 3))
    return ids


def right_decode(ids, itos):
    return "".join(itos[i] for i in ids if i >= 4)


def right_lost(text, stoi, itos):
    return sorted({c for c in text if c not in stoi})


def rendered(func) -> str:
    with pytest.raises(ExerciseError) as info:
        check_encode(func, right_decode, right_lost)
    lines = info.value._render_traceback_()
    assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
    return "\n".join(lines)


def assert_no_check_code(text: str) -> None:
    shown = [bit for bit in CHECK_FILES + CHECK_SOURCE if bit in text]
    assert shown == [], f"the rendered error shows the check's own code {shown}:\n{text}"


# ------------------------------------------------------------- the rendering
def test_a_wrong_answer_shows_the_message_and_hint_only():
    text = rendered(wrong_ids)
    assert text.startswith("ExerciseError: encode(")
    assert "returned" in text and "expected" in text and "Which special token" in text
    assert "Traceback" not in text
    assert_no_check_code(text)


def test_an_unsolved_exercise_says_so_without_a_traceback():
    def stub(text, stoi):
        raise NotImplementedError("your turn")
    text = rendered(stub)
    assert "not implemented yet" in text and "Traceback" not in text
    assert_no_check_code(text)


def test_a_students_own_error_keeps_their_frames_and_none_of_the_checks():
    text = rendered(one_too_far)
    first, _, theirs = text.partition("Your code raised the IndexError here:")
    assert "raised IndexError" in first and theirs
    assert "in one_too_far" in theirs and "ids.append(stoi.get(text[i], 3))" in theirs
    assert theirs.rstrip().endswith("IndexError: string index out of range")
    assert_no_check_code(text)


def test_a_call_with_the_wrong_arguments_has_no_frames_of_the_student_to_show():
    text = rendered(lambda text: [])  # the error is raised by the call itself, inside the check
    assert "raised TypeError" in text and "Traceback" not in text
    assert_no_check_code(text)


def test_the_students_frames_are_a_new_chain():
    with pytest.raises(ExerciseError) as info:
        check_encode(one_too_far, right_decode, right_lost)
    cause = info.value.__cause__
    before = traceback.extract_tb(cause.__traceback__)
    kept = traceback.extract_tb(display.students_frames(cause.__traceback__))
    assert [frame.name for frame in kept] == ["one_too_far"]
    assert traceback.extract_tb(cause.__traceback__) == before  # the error itself keeps its traceback
    assert any(frame.filename.endswith("common.py") for frame in before)


def test_a_failing_rendering_still_shows_the_message(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("formatter broke")
    monkeypatch.setattr(display, "_text", broken)
    assert ExerciseError("encode is wrong")._render_traceback_() == ["ExerciseError: encode is wrong"]


def test_plain_python_keeps_the_whole_traceback():
    with pytest.raises(ExerciseError, match="Which special token") as info:
        check_encode(wrong_ids, right_decode, right_lost)
    whole = "".join(traceback.format_exception(info.value))
    assert "nb01_data.py" in whole  # pytest, scripts and tracebacks print as Python always did
    assert isinstance(info.value, AssertionError)


# ------------------------------------------------------------ in a real kernel
KERNEL_CELLS = [
    "from charrnn.course import checks\n"
    + "\n\n".join(inspect.getsource(f) for f in (wrong_ids, one_too_far, right_decode, right_lost)),
    "checks.check_encode(wrong_ids, right_decode, right_lost)",
    "checks.check_encode(one_too_far, right_decode, right_lost)",
    "print('a later cell')",
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_in_a_kernel_a_failed_check_shows_its_message_and_the_cell_fails(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in KERNEL_CELLS]
    statuses = []
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", allow_errors=True, timeout=120, resources={"metadata": {"path": str(tmp_path)}},
        on_cell_executed=lambda cell, cell_index, execute_reply: statuses.append(execute_reply["content"]["status"]))
    client.execute()
    assert statuses == ["ok", "error", "error", "ok"]  # nbgrader: 0 points; Run All and nbval: stop here

    wrong, own = ([o for o in cell.outputs if o.output_type == "error"] for cell in nb.cells[1:3])
    assert [o.ename for o in wrong + own] == ["ExerciseError", "ExerciseError"]
    wrong_text = ANSI.sub("", "\n".join(wrong[0].traceback))
    assert wrong_text.startswith("ExerciseError: encode(") and "Which special token" in wrong_text
    assert "Traceback" not in wrong_text
    assert_no_check_code(wrong_text)

    own_text = ANSI.sub("", "\n".join(own[0].traceback))
    assert "Your code raised the IndexError here:" in own_text and "in one_too_far" in own_text
    assert "ids.append(stoi.get(text[i], 3))" in own_text and "IndexError: string index out of range" in own_text
    assert_no_check_code(own_text)


def test_the_package_exports_the_error_that_renders():
    assert checks.ExerciseError is ExerciseError and hasattr(ExerciseError, "_render_traceback_")
