"""The top-p exercise of notebook 05: the reference passes, five usual
mistakes get their own hint (never the code), the library is refused, and the
student version says "not implemented yet"."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_top_p_probs


def nucleus(probs, p, renormalise=True, crossing_token=True, vocabulary_order=True):
    ordered, order = probs.sort(-1, descending=True)
    keep = ((ordered.cumsum(-1) - ordered) < p) if crossing_token else (ordered.cumsum(-1) <= p)
    kept = ordered * keep
    out = torch.zeros_like(probs).scatter(-1, order, kept) if vocabulary_order else kept
    return out / out.sum(-1, keepdim=True).clamp_min(1e-12) if renormalise else out


def test_the_reference_passes(capsys):
    check_top_p_probs(nucleus)
    assert "✓ top_p_probs is correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda probs, p: nucleus(probs, p, renormalise=False), "must again add up to 1"),
    (lambda probs, p: nucleus(probs, p, crossing_token=False), "REACHES p"),
    (lambda probs, p: nucleus(probs, p, vocabulary_order=False), "vocabulary order"),
    (lambda probs, p: probs * (probs >= 1 - p) / (probs * (probs >= 1 - p)).sum(-1, keepdim=True),
     "each token's own probability"),
    (lambda probs, p: probs.clone(), "every token was kept"),  # once a TypeError inside the hint
])
def test_usual_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseError, match=hint) as info:
        check_top_p_probs(wrong)
    assert_no_solution_code(str(info.value))


def test_the_library_is_refused():
    def via_library(probs, p):
        return charrnn.next_char_probs(torch.log(probs), top_p=p)
    with pytest.raises(ExerciseError, match="next_char_probs, which would do this exercise for you"):
        check_top_p_probs(via_library)


def test_modifying_the_input_is_rejected():
    def in_place(probs, p):
        probs[probs < 0.1] = 0
        return probs / probs.sum(-1, keepdim=True)
    with pytest.raises(ExerciseError, match="changed its input"):
        check_top_p_probs(in_place)


def test_student_version_of_notebook_05_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("05_sampling.ipynb", "def top_p_probs(", tmp_path)
    assert "not implemented yet" in message
