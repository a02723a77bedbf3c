"""charrnn.course.checks.check_masked_loss (notebook 03's exercise): it accepts a
correct masked loss, rejects averaging over the pads too (and other usual
mistakes) with a hint, and says "not implemented yet" for the student stub."""

from __future__ import annotations

import pytest
import torch.nn.functional as F
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_masked_loss


def correct(logits, targets, pad_id):
    picked = logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
    mask = (targets != pad_id).float()
    return -(picked * mask).sum() / mask.sum()


def test_accepts_a_correct_loss(capsys):
    check_masked_loss(correct)
    assert "✓ masked_loss is correct" in capsys.readouterr().out


def test_refuses_the_library_and_cross_entropy():
    with pytest.raises(ExerciseError, match="masked_cross_entropy, which would do this exercise for you"):
        check_masked_loss(lambda logits, targets, pad_id: charrnn.masked_cross_entropy(logits, targets))
    with pytest.raises(ExerciseError, match="cross_entropy, which would do this exercise for you"):
        check_masked_loss(lambda logits, targets, pad_id: F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id))


@pytest.mark.parametrize("wrong", [
    lambda logits, targets, pad_id: -logits.log_softmax(-1).gather(-1, targets[..., None]).mean(),
    lambda logits, targets, pad_id: -(logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
                                      * (targets != pad_id)).mean(),
])
def test_averaging_over_pads_is_rejected_with_a_hint(wrong):
    with pytest.raises(ExerciseError, match=r"masked_loss\(logits\(") as e:
        check_masked_loss(wrong)
    msg = str(e.value)
    assert "returned" in msg and "expected" in msg
    assert "pads included" in msg and "divided by" in msg
    assert_no_solution_code(msg)


def test_other_mistakes_get_their_hints():
    with pytest.raises(ExerciseError, match="divide by their"):
        check_masked_loss(lambda lg, t, p: -(lg.log_softmax(-1).gather(-1, t[..., None]).squeeze(-1) * (t != p)).sum())
    with pytest.raises(ExerciseError, match="raw logits") as e:
        check_masked_loss(lambda lg, t, p: -(lg.gather(-1, t[..., None]).squeeze(-1) * (t != p)).sum() / (t != p).sum())
    assert_no_solution_code(str(e.value))


def test_mean_of_row_means_is_rejected_with_a_hint():
    def per_row(logits, targets, pad_id):
        picked = logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        mask = (targets != pad_id).float()
        return (-(picked * mask).sum(1) / mask.sum(1)).mean()
    with pytest.raises(ExerciseError, match="mean of the per-row means"):
        check_masked_loss(per_row)


def test_nan_on_an_all_pad_row_is_explained():
    def nan_on_empty_rows(logits, targets, pad_id):
        every_row_scored = bool((targets != pad_id).any(1).all())
        return correct(logits, targets, pad_id) * (1.0 if every_row_scored else float("nan"))
    with pytest.raises(ExerciseError, match="returned nan") as e:
        check_masked_loss(nan_on_empty_rows)
    assert "only of padding" in str(e.value)


def test_wrong_type_shape_and_detached_are_rejected():
    with pytest.raises(ExerciseError, match="expected a torch tensor"):
        check_masked_loss(lambda *args: correct(*args).item())
    with pytest.raises(ExerciseError, match="returned shape"):
        check_masked_loss(lambda *args: correct(*args)[None])
    with pytest.raises(ExerciseError, match="cut off from autograd"):
        check_masked_loss(lambda *args: correct(*args).detach())


def test_not_implemented_says_so():
    def stub(logits, targets, pad_id):
        raise NotImplementedError("your turn")
    with pytest.raises(ExerciseError, match="masked_loss is not implemented yet: replace the `raise "
                                            "NotImplementedError` in the cell above"):
        check_masked_loss(stub)


def test_student_version_of_notebook_03_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("03_the_language_model.ipynb", "def masked_loss(", tmp_path)
    assert "not implemented yet" in message


def test_targets_shifted_twice_are_named():
    def shifted_again(logits, targets, pad_id):
        lg, tg = logits[:, :-1], targets[:, 1:]
        nll = -lg.log_softmax(-1).gather(-1, tg[..., None]).squeeze(-1)
        mask = tg != pad_id
        return (nll * mask).sum() / mask.sum()
    with pytest.raises(ExerciseError, match="two steps\nahead|two steps ahead") as e:
        check_masked_loss(shifted_again)
    assert_no_solution_code(str(e.value))


def test_softmax_without_the_log_is_named_by_its_negative_loss():
    def probabilities(logits, targets, pad_id):
        p = logits.softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        mask = targets != pad_id
        return -(p * mask).sum() / mask.sum()
    with pytest.raises(ExerciseError, match="the loss is negative") as e:
        check_masked_loss(probabilities)
    assert_no_solution_code(str(e.value))


def test_a_masked_sum_over_every_position_is_not_called_the_mean_over_every_position():
    """Dividing the masked sum by mask.numel() is its own mistake: the hint
    must not claim the answer matches the plain mean, pads included."""
    with pytest.raises(ExerciseError) as e:
        check_masked_loss(lambda logits, targets, pad_id: -(logits.log_softmax(-1).gather(
            -1, targets[..., None]).squeeze(-1) * (targets != pad_id)).sum() / targets.numel())
    msg = str(e.value)
    assert "still counted in the denominator" in msg and "mean over every position" not in msg
    assert_no_solution_code(msg)
