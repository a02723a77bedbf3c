"""The truncated-BPTT step check: the reference passes; a state that is not
detached on the way in or on the way out, a state dropped, and a stale state
returned are each named; Trainer.train_step is refused."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code

import charrnn
from charrnn.course.checks import ExerciseError, check_tbptt_step


def step(model, optimizer, inputs, targets, state, clip, detach_in=True, detach_out=True, use_state=True,
         return_new=True):
    start = (state.detach() if detach_in else state) if use_state else None
    optimizer.zero_grad()
    logits, new_state = model(inputs, start)
    loss = charrnn.masked_cross_entropy(logits, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    out = new_state if return_new else state
    return loss.item(), (out.detach() if detach_out else out)


def test_the_reference_passes(capsys):
    check_tbptt_step(step)
    assert "✓ tbptt_step is correct" in capsys.readouterr().out


@pytest.mark.parametrize("options, hint", [
    ({"detach_in": False}, "cut it off from the graph"),
    ({"use_state": False}, "did not\ncarry over|did not carry over"),
    ({"detach_out": False}, "the numbers\nor the graph|the numbers or the graph"),
    ({"return_new": False}, "not the model's final state"),
])
def test_usual_mistakes_get_their_hint(options, hint):
    with pytest.raises(ExerciseError, match=hint) as info:
        check_tbptt_step(lambda *args: step(*args, **options))
    assert_no_solution_code(str(info.value))


def test_the_trainer_is_refused():
    def via_trainer(model, optimizer, inputs, targets, state, clip):
        vocab = charrnn.CharVocab([chr(97 + i) for i in range(model.config.vocab_size - 4)])
        trainer = charrnn.Trainer(model, vocab, None, config=charrnn.TrainConfig(device="cpu"))
        return trainer.train_step(inputs, targets)[0], state
    with pytest.raises(ExerciseError, match="Trainer.train_step, which would do this exercise for you"):
        check_tbptt_step(via_trainer)


def test_student_version_of_notebook_04_reports_not_implemented(tmp_path):
    from helpers import student_check_cell_fails

    assert "not implemented yet" in student_check_cell_fails("04_training.ipynb", "def tbptt_step(", tmp_path)
