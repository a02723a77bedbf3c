"""The exercise checkers (charrnn.course.checks) and the student-version maker
(charrnn.course.student): checks accept the library's own answers, reject wrong
ones with a message that says what went wrong, and the student notebook
keeps no solution and no output."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
from helpers import assert_no_solution_code, one_cell_notebook, student_versions

import charrnn
from charrnn.course.checks import ExerciseError, check_encode, check_pad_batch
from charrnn.course.student import STUB, make_student_version, make_student_versions

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NB01 = NOTEBOOKS / "01_data_and_tokenization.ipynb"


# ------------------------------------------------------------------ checks
def hand_encode(text, stoi):
    return [stoi.get(c, stoi["<unk>"]) for c in text]


def hand_decode(ids, itos):
    return "".join(itos[i] for i in ids if i >= 4)


def hand_lost(text, stoi, itos):
    return sorted(set(text) - set(hand_decode(hand_encode(text, stoi), itos)))


def library_encode(text, stoi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown characters are part of the test
        return charrnn.CharVocab([c for c in stoi if len(c) == 1]).encode(text)


def check_encode_with(encode=hand_encode, decode=hand_decode, lost_chars=hand_lost) -> str:
    """The failure message of check_encode with one of the three functions replaced."""
    with pytest.raises(ExerciseError) as e:
        check_encode(encode, decode, lost_chars)
    return str(e.value)


def test_checks_refuse_the_library_version():
    with pytest.raises(ExerciseError, match="would do this exercise for you"):
        check_encode(library_encode, hand_decode, hand_lost)
    with pytest.raises(ExerciseError, match="charrnn.batches.pad_sequences, which would do this exercise"):
        check_pad_batch(lambda seqs, pad_id: charrnn.batches.pad_sequences(seqs, pad_id=pad_id))


def test_the_hand_written_encode_decode_and_lost_chars_pass(capsys):
    check_encode(hand_encode, hand_decode, hand_lost)
    check_encode(lambda t, s: torch.tensor(hand_encode(t, s)), hand_decode,  # a tensor of ids is accepted
                 lambda t, s, i: "".join(c for c in dict.fromkeys(t) if c not in s))  # so is a string, any order
    assert capsys.readouterr().out.count("✓ encode, decode and lost_chars are correct") == 2


def _to_special_names(text, stoi):
    """Reads a spelled-out "<unk>" in a text as the token <unk>."""
    pieces = re.split(r"(<pad>|<bos>|<eos>|<unk>)", text)
    return [i for piece in pieces for i in ([stoi[piece]] if piece in stoi else hand_encode(piece, stoi))]


def _names_replaced(ids, itos):
    text = "".join(itos[i] for i in ids)
    for name in ("<pad>", "<bos>", "<eos>", "<unk>"):
        text = text.replace(name, "")
    return text


@pytest.mark.parametrize("wrong, needles", [
    (dict(encode=lambda t, s: [s[c] for c in t]), ["raised KeyError", "never saw", "stoi ="]),
    (dict(encode=lambda t, s: [s[c] for c in t if c in s]), ["'!' left no id at all", "keeps its place"]),
    (dict(encode=lambda t, s: [s.get(c, 0) for c in t]), ["became id 0 ('<pad>')", "Which special token"]),
    (dict(encode=lambda t, s: [1, *hand_encode(t, s), 2]), ["no <bos>/<eos>", "needs 3 ids, not 5"]),
    (dict(encode=lambda t, s: t), ["(the characters themselves); expected a list of integer ids"]),
    (dict(encode=lambda t, s: list(t)), ["(the characters themselves); expected a list of integer ids"]),
    (dict(encode=lambda t, s: [s.setdefault(c, len(s)) for c in t]), ["changed stoi (it added '!')",
                                                                       "fixed vocabulary"]),
    (dict(encode=_to_special_names), ["spells out '<unk>'", "five ordinary characters"]),
    (dict(encode=lambda t, s: [s.get(c.lower(), 3) for c in t]), ["The first difference is at character 0 ('T')"]),
    (dict(decode=lambda ids, itos: "".join(itos[i] for i in ids)), ["shows '<bos>', '<eos>'", "not text"]),
    (dict(decode=lambda ids, itos: "".join(itos[i] for i in ids if i >= 3)), ["shows '<unk>'"]),
    (dict(decode=lambda ids, itos: "".join(itos[i] for i in ids if i > 4)), ["every ' ' (id 4) is missing",
                                                                              "first ordinary character"]),
    (dict(decode=_names_replaced), ["returned 'a  token'", "depends on its id"]),
    (dict(decode=lambda ids, itos: "".join("?" if i == 3 else itos[i] for i in ids if i >= 3)),
     ["shows '?' for <unk>", "leaves <unk> out"]),
    (dict(decode=lambda ids, itos: [itos[i] for i in ids if i >= 4]), ["(list); expected the text, one string"]),
    (dict(decode=lambda ids, itos: "".join(itos[i] for i in ids if i >= 4).upper()),
     ["The texts first differ at character 0: 'A' where 'a' was expected"]),
    (dict(lost_chars=lambda t, s, i: [c for c in t if c not in s]), ["each lost character once"]),
    (dict(lost_chars=lambda t, s, i: [a for a, b in zip(t, hand_decode(hand_encode(t, s), i)) if a != b]),
     ["character by character", "shorter"]),
    (dict(lost_chars=lambda t, s, i: [3 for c in t if c not in s]), ["these look like ids"]),
    (dict(lost_chars=lambda t, s, i: ["<unk>"] if set(t) - set(s) else []), ["<unk> is what the lost characters"]),
    (dict(lost_chars=lambda t, s, i: [c for c in t if c not in s][:1]), ["'€' is not in the vocabulary"]),
    (dict(lost_chars=lambda t, s, i: sorted(set(t) - set(s)) + ["a"]), ["'a' is in the vocabulary"]),
    (dict(lost_chars=lambda t, s, i: hand_decode(hand_encode(t, s), i) == t), ["returned False; expected a list"]),
], ids=["keyerror", "unknown-dropped", "unknown-as-pad", "bos-eos-added", "text-returned", "characters-returned",
        "vocabulary-grown", "spelled-name-as-token", "unrecognised-encode", "names-shown", "unk-shown",
        "space-dropped", "names-replaced-in-text", "placeholder-for-unk", "list-of-characters",
        "unrecognised-decode", "lost-repeated", "lost-by-position", "lost-as-ids", "lost-as-unk", "lost-too-few",
        "lost-too-many", "lost-a-bool"])
def test_each_named_encode_mistake_gets_its_hint(wrong, needles):
    msg = check_encode_with(**wrong)
    for needle in needles:
        assert needle in msg, msg
    assert_no_solution_code(msg)


@pytest.mark.parametrize("wrong, refused", [
    (dict(encode=library_encode), "encode called charrnn.vocab.CharVocab.encode"),
    (dict(decode=lambda ids, itos: charrnn.CharVocab([c for c in itos if len(c) == 1]).decode(ids)),
     "decode called charrnn.vocab.CharVocab.decode"),
    (dict(lost_chars=lambda t, s, i: charrnn.CharVocab([c for c in s if len(c) == 1]).unknown_chars(t)),
     "lost_chars called charrnn.vocab.CharVocab.unknown_chars"),
])
def test_each_of_the_three_is_refused_the_library_by_its_own_name(wrong, refused):
    assert f"{refused}, which would do this exercise for you" in check_encode_with(**wrong)


def hand_pad(seqs, pad_id):
    out = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)
    for row, s in zip(out, seqs):
        row[:len(s)] = torch.as_tensor(s)
    return out


@pytest.mark.parametrize("wrong, needle", [
    (lambda seqs, pad_id: hand_pad(seqs, 0), "pad_id=9"),
    (lambda seqs, pad_id: hand_pad(seqs, pad_id).int(), "torch.long"),
    (lambda seqs, pad_id: hand_pad(seqs, pad_id)[:, :-1], "returned shape"),
    (lambda seqs, pad_id: [s + [pad_id] for s in seqs], "expected a torch tensor"),
])
def test_wrong_pad_batch_is_rejected(wrong, needle):
    with pytest.raises(ExerciseError, match="pad_batch") as e:
        check_pad_batch(wrong)
    assert needle in str(e.value)


def test_pad_batch_that_mutates_its_input_is_rejected():
    def mutating(seqs, pad_id):
        longest = max(map(len, seqs))
        for s in seqs:
            s.extend([pad_id] * (longest - len(s)))
        return torch.tensor(seqs, dtype=torch.long)
    with pytest.raises(ExerciseError, match="changed its input"):
        check_pad_batch(mutating)


def test_not_implemented_says_so():
    def stub(*args):
        raise NotImplementedError("your turn")
    for check, args in ((check_encode, (stub, stub, stub)), (check_pad_batch, (stub,))):
        with pytest.raises(ExerciseError, match="not implemented yet: replace the `raise NotImplementedError` "
                                                "in the cell above"):
            check(*args)
    with pytest.raises(ExerciseError, match="decode is not implemented yet"):
        check_encode(hand_encode, stub, stub)


def test_exercise_error_is_an_assertion_error():
    assert issubclass(ExerciseError, AssertionError)


# ------------------------------------------------------------------ student
def test_a_solution_region_keeps_its_indentation(tmp_path):
    src, dst = tmp_path / "one.ipynb", tmp_path / "student" / "one.ipynb"
    solved = "def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n\nprint(1)"
    nbformat.write(one_cell_notebook(solved), src)
    assert make_student_version(src, dst) == 1
    assert nbformat.read(dst, as_version=4).cells[0].source == f"def f(x):\n    {STUB}\n\nprint(1)"


@pytest.mark.parametrize("source, nbgrader, reason", [
    ("# BEGIN SOLUTION\nx = 1\n", True, "no end solution"),
    ("x = 1\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", True, "nested begin solution"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", False, "non-solution cell"),
], ids=["unclosed", "nested", "unmarked-cell"])
def test_broken_solution_markers_are_named(tmp_path, source, nbgrader, reason):
    """A region left open would leak the rest of the cell, solution included;
    a region in a cell nbgrader does not know as an exercise could not be graded."""
    src = tmp_path / "one.ipynb"
    nbformat.write(one_cell_notebook(source, nbgrader), src)
    with pytest.raises(charrnn.DataError, match=f"one.ipynb failed: .*{reason}"):
        make_student_version(src, tmp_path / "student" / "one.ipynb")


def _solution_lines(nb) -> list[str]:
    lines, inside = [], False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if line.strip() == "# END SOLUTION":
                inside = False
            if inside and line.strip():
                lines.append(line.strip())
            if line.strip() == "# BEGIN SOLUTION":
                inside = True
    return lines


def test_student_version_of_notebook_01(tmp_path):
    dst = tmp_path / "student" / NB01.name
    assert make_student_version(NB01, dst) == 2
    solved, student = nbformat.read(NB01, as_version=4), nbformat.read(dst, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    solution = _solution_lines(solved)
    assert solution, "notebook 01 should hold marked solutions"
    for line in solution:
        assert line not in text, f"solution line leaked into the student version: {line}"
    assert "# BEGIN SOLUTION" not in text and "# END SOLUTION" not in text
    assert text.count(STUB) == 4  # encode, decode, lost_chars; pad_batch
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert len(student.cells) == len(solved.cells)


def test_student_stub_fails_its_check_with_not_implemented(tmp_path):
    dst = tmp_path / NB01.name
    make_student_version(NB01, dst)
    cells = [c.source for c in nbformat.read(dst, as_version=4).cells if c.cell_type == "code"]
    namespace = {"charrnn": charrnn, "checks": charrnn.course.checks, "torch": torch}
    for name in ("encode", "pad_batch"):
        at = next(i for i, src in enumerate(cells) if src.startswith(f"def {name}("))
        exec(cells[at], namespace)           # the exercise cell, as the student gets it
        with pytest.raises(ExerciseError, match="not implemented yet"):
            exec(cells[at + 1], namespace)   # the check cell right after it


def test_make_student_versions_writes_every_notebook():
    written = sorted(student_versions().glob("*.ipynb"))
    assert [p.name for p in written] == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    with pytest.raises(ValueError):
        make_student_versions(NOTEBOOKS, NOTEBOOKS)


def test_student_command_writes_exercise_versions(tmp_path, capsys):
    from charrnn.cli import main

    out = tmp_path / "student"
    assert main(["student", "--notebooks", str(NOTEBOOKS), "--out", str(out)]) == 0
    written = sorted(p.name for p in out.glob("*.ipynb"))
    assert written == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    for path in out.glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text
        if "BEGIN SOLUTION" in (NOTEBOOKS / path.name).read_text(encoding="utf-8"):
            assert "NotImplementedError" in text  # every solved exercise became a stub
    assert main(["student", "--notebooks", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no such folder of notebooks" in capsys.readouterr().err


def test_student_copies_carry_nothing_but_the_text():
    """No outputs, no saved widget state, no test-runner markers: a student
    copy is little more than the notebook's own text."""
    import json

    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    written = sorted(student_versions().glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in notebooks]
    for path in written:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert "widgets" not in nb.metadata, path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert not any("NBVAL" in c.source for c in code), path.name
        text = sum(len(c.source.encode("utf-8")) for c in nb.cells)
        size = path.stat().st_size
        assert size < 1.15 * text + 3000, f"{path.name}: {size} bytes for {text} bytes of text"
        # the ratio above catches stored outputs; this cap, notebook 04's text (27 KB) and a margin, catches
        # a notebook grown past what one session can teach
        assert size < 35_000, f"{path.name}: a student copy of {size} bytes; keep each under 35 KB"
        json.loads(path.read_text(encoding="utf-8"))  # plain JSON a student's Jupyter opens


# ------------------------------------------------------------ the hidden re-check
NB02 = NOTEBOOKS / "02_rnn_cell_from_scratch.ipynb"

# Two students who make a check pass from their own cell by changing a module
# of the checks package, not the package itself: reloading the package alone
# would import the changed module again as it is.
_WRONG_LAYER = ("def rnn_layer(e, h0, W_x, b_x, W_h, b_h):\n"  # collects the state before each step
                "    h = torch.zeros(e.shape[0], W_h.shape[0]) if h0 is None else h0\n"
                "    output = []\n"
                "    for t in range(e.shape[1]):\n"
                "        output.append(h)\n"
                "        h = torch.tanh(e[:, t] @ W_x.T + b_x + h @ W_h.T + b_h)\n"
                "    return torch.stack(output, dim=1), h\n")
_LIBRARY_LAYER = ("def rnn_layer(e, h0, W_x, b_x, W_h, b_h):\n"  # nn.RNN's own function, on the given weights
                  "    h = torch.zeros(1, e.shape[0], W_h.shape[0]) if h0 is None else h0[None]\n"
                  "    output, h_n = torch.rnn_tanh(e, h, [W_x, W_h, b_x, b_h], True, 1, 0.0, False, False, True)\n"
                  "    return output, h_n[0]\n")
TAMPERINGS = {
    "the check replaced in its notebook's module": (_WRONG_LAYER + (
        "import charrnn.course.checks.nb02_rnn_cell\n"
        "charrnn.course.checks.nb02_rnn_cell.check_rnn_layer = lambda f: print('✓ rnn_layer is correct')\n"
        "checks.check_rnn_layer = charrnn.course.checks.nb02_rnn_cell.check_rnn_layer\n"),
        "one step behind"),
    "the shared _call replaced, so the library shortcut is no longer refused": (_LIBRARY_LAYER + (
        "import charrnn.course.checks.common\n"
        "def _call(name, func, *args, **kwargs):\n"
        "    return func(*args)\n"
        "charrnn.course.checks.common._call = _call\n"
        "charrnn.course.checks.nb02_rnn_cell._call = _call\n"),
        "torch.rnn_tanh, which would do this exercise"),
}

_GRADE_IN_A_FRESH_KERNEL = '''
import json, sys
import torch
import charrnn
from charrnn.course import checks

namespace = {"charrnn": charrnn, "checks": checks, "torch": torch}
exec(sys.argv[1], namespace)          # the student's cell, tampering included
try:
    exec(sys.argv[2], namespace)      # the check cell as nbgrader grades it, hidden re-check included
    print(json.dumps({"failed": None}))
except AssertionError as error:       # the reloaded ExerciseError is a new class: catch its base
    print(json.dumps({"failed": f"{type(error).__name__}: {error}"}))
'''


def _graded_check_cell(notebook: Path, check: str) -> str:
    from charrnn.course.nbgrader_course import prepare_source

    nb = prepare_source(nbformat.read(notebook, as_version=4))
    return next(c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith(check))


@pytest.mark.parametrize("tampering, reason", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_check_changed_inside_the_checks_package_still_fails_the_hidden_recheck(tampering, reason):
    """The student's own cell makes the visible check pass; the hidden
    re-check that grading runs reloads every module of the checks package,
    the shared one first, and fails the wrong answer all the same. In a
    fresh interpreter, as grading's fresh kernel: reloading here would give
    the other tests a second ExerciseError class."""
    import json
    import subprocess
    import sys

    cell = _graded_check_cell(NB02, "checks.check_rnn_layer(")
    assert "### BEGIN HIDDEN TESTS" in cell
    run = subprocess.run([sys.executable, "-c", _GRADE_IN_A_FRESH_KERNEL, tampering, cell],
                         capture_output=True, text=True, check=True, timeout=300)
    visible, *_, last = run.stdout.strip().splitlines()
    assert visible.startswith("✓ rnn_layer is correct")  # the tampering fooled the check the student sees
    failed = json.loads(last)["failed"]
    assert failed is not None and failed.startswith("ExerciseError: ")
    assert reason in failed


def test_the_hidden_recheck_reloads_every_module_of_the_checks_package_shared_one_first():
    import pkgutil

    import charrnn.course.checks
    from charrnn.course.nbgrader_course import _check_modules

    modules = _check_modules()
    assert set(modules) == {m.name for m in pkgutil.iter_modules(charrnn.course.checks.__path__)}
    assert modules[0] == "common" and len(modules) >= 7
    cell = _graded_check_cell(NB02, "checks.check_rnn_layer(")
    hidden = cell[cell.index("### BEGIN HIDDEN TESTS"):]
    assert all(f'"{name}"' in hidden for name in modules)
    assert hidden.index("_importlib.reload(_importlib.import_module(") < hidden.index(
        "checks = _importlib.reload(_graders_checks)")
