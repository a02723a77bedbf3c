"""charrnn.course.checks.check_train_step (notebook 04's exercise: repair a
broken training step): it accepts a correct step, names each bug planted in
the notebook's broken_train_step (alone and together) and the other usual
mistakes, gives a generic hint for a mistake it does not know, and says
"not implemented yet" for the student stub."""

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails

import charrnn
from charrnn.course.checks import ExerciseError, check_train_step

# What each named mistake's hint says (a phrase of it).
CLEARS = "PyTorch adds the gradients of each backward pass"
CLIP = "gradients longer than clip"
INPUTS = "scored against the inputs"
PAD = "also scores the <pad> positions"
AFTER = "loss after the update"


def step(model, optimizer, inputs, targets, clip, *, clears=True, clip_at="before", scored="targets",
         read="before", item=True):
    """A training step, right by default; each option plants one mistake."""
    if clears:
        optimizer.zero_grad()
    logits, _ = model(inputs)
    if scored == "every position":
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    else:
        loss = charrnn.masked_cross_entropy(logits, inputs if scored == "inputs" else targets)
    loss.backward()
    if clip_at == "before":
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    if clip_at == "after":
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if read == "after":
        with torch.no_grad():
            return charrnn.masked_cross_entropy(model(inputs)[0], targets).item()
    return loss.item() if item else loss


def broken_train_step(model, optimizer, inputs, targets, clip):
    """Notebook 04's broken step, as the notebook hands it over."""
    logits, _ = model(inputs)
    loss = charrnn.masked_cross_entropy(logits, inputs)
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    return loss.item()


def message_of(train_step) -> str:
    with pytest.raises(ExerciseError) as e:
        check_train_step(train_step)
    message = str(e.value)
    assert_no_solution_code(message)
    return message


def test_a_correct_step_passes(capsys):
    check_train_step(step)
    assert "✓ train_step is correct: 2 models" in capsys.readouterr().out


def test_zero_grad_after_the_forward_pass_also_passes(capsys):
    def late_zero(model, optimizer, inputs, targets, clip):
        logits, _ = model(inputs)
        loss = charrnn.masked_cross_entropy(logits, targets)
        model.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.item()
    check_train_step(late_zero)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(("mistake", "named"), [
    ({"clears": False}, CLEARS),
    ({"clip_at": "after"}, CLIP),
    ({"clip_at": "never"}, CLIP),
    ({"scored": "inputs"}, INPUTS),
    ({"scored": "every position"}, PAD),
    ({"read": "after"}, AFTER),
], ids=["gradients-accumulate", "clip-after-step", "no-clipping", "loss-on-inputs", "pad-scored", "loss-after"])
def test_each_usual_mistake_is_named_alone(mistake, named):
    message = message_of(lambda *a: step(*a, **mistake))
    assert named in message
    assert "Hint:" in message and "things to fix" not in message
    others = {CLEARS, CLIP, INPUTS, PAD, AFTER} - {named}
    assert not any(other in message for other in others)


def test_the_notebooks_broken_step_gets_all_three_bugs_named():
    message = message_of(broken_train_step)
    assert "3 things to fix" in message
    assert all(named in message for named in (CLEARS, CLIP, INPUTS))
    assert PAD not in message and AFTER not in message


@pytest.mark.parametrize(("left", "named"), [
    ({"clears": False, "clip_at": "after"}, (CLEARS, CLIP)),
    ({"clears": False, "scored": "inputs"}, (CLEARS, INPUTS)),
    ({"clip_at": "after", "scored": "inputs"}, (CLIP, INPUTS)),
], ids=["one-fixed-loss", "one-fixed-clip", "one-fixed-zero"])
def test_two_bugs_left_are_both_named(left, named):
    message = message_of(lambda *a: step(*a, **left))
    assert "2 things to fix" in message and all(n in message for n in named)


def test_the_loss_after_the_update_says_the_weights_are_right():
    message = message_of(lambda *a: step(*a, read="after"))
    assert "the weights after it are right" in message and "train_step returned loss" in message


def test_an_unknown_mistake_gets_the_generic_hint_and_no_false_claim():
    def doubled(model, optimizer, inputs, targets, clip):
        optimizer.zero_grad()
        loss = 2 * charrnn.masked_cross_entropy(model(inputs)[0], targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.item()
    message = message_of(doubled)
    assert "none of the usual mistakes" in message
    assert not any(named in message for named in (CLEARS, CLIP, INPUTS, PAD, AFTER))


def test_returning_a_tensor_is_rejected():
    message = message_of(lambda *a: step(*a, item=False))
    assert "Python float" in message and "graph" in message


def test_an_error_inside_the_step_names_the_call():
    def crashes(model, optimizer, inputs, targets, clip):
        return model(inputs, targets)  # a state of the wrong kind
    message = message_of(crashes)
    assert message.startswith("train_step(model, optimizer, inputs(4, 13)")


def test_student_version_of_notebook_04_reports_not_implemented(tmp_path):
    message = student_check_cell_fails("04_training.ipynb", "def train_step(", tmp_path)
    assert "not implemented yet" in message
