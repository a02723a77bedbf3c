"""Every exercise check refuses the library or torch function that would do
the exercise for the student, names it, and accepts the hand-written answer;
the refusal ends with the check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import charrnn
from charrnn.course import checks
from charrnn.course.checks import ExerciseError


def hand_masked_loss(logits, targets, pad_id):
    nll = -logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
    mask = targets != pad_id
    return (nll * mask).sum() / mask.sum()


SHORTCUTS = [
    ("encode", lambda: checks.check_encode(
        lambda text, stoi: charrnn.CharVocab([c for c in stoi if len(c) == 1]).encode(text), None, None),
     "CharVocab.encode"),
    ("encode", lambda: checks.check_encode(
        lambda text, stoi: [stoi.get(c, 3) for c in text],
        lambda ids, itos: charrnn.CharVocab([c for c in itos if len(c) == 1]).decode(ids), None), "CharVocab.decode"),
    ("encode", lambda: checks.check_encode(
        lambda text, stoi: [stoi.get(c, 3) for c in text], lambda ids, itos: "".join(itos[i] for i in ids if i > 3),
        lambda text, stoi, itos: charrnn.CharVocab([c for c in stoi if len(c) == 1]).unknown_chars(text)),
     "CharVocab.unknown_chars"),
    ("pad_batch", lambda: checks.check_pad_batch(
        lambda seqs, pad_id: charrnn.pad_sequences(seqs, pad_id=pad_id)), "pad_sequences"),
    ("pad_batch", lambda: checks.check_pad_batch(
        lambda seqs, pad_id: torch.nn.utils.rnn.pad_sequence([torch.as_tensor(s) for s in seqs], batch_first=True,
                                                             padding_value=pad_id)), "pad_sequence"),
    ("rnn_layer", lambda: checks.check_rnn_layer(rnn_layer_via_nn_rnn), "torch.nn.RNN"),
    ("masked_loss", lambda: checks.check_masked_loss(
        lambda lg, t, p: F.cross_entropy(lg.flatten(0, 1), t.flatten(), ignore_index=p)), "cross_entropy"),
    ("masked_loss", lambda: checks.check_masked_loss(
        lambda lg, t, p: F.nll_loss(lg.log_softmax(-1).flatten(0, 1), t.flatten(), ignore_index=p)), "nll_loss"),
    ("masked_loss", lambda: checks.check_masked_loss(
        lambda lg, t, p: charrnn.masked_cross_entropy(lg, t)), "masked_cross_entropy"),
    ("masked_loss", lambda: checks.check_masked_loss(
        lambda lg, t, p: torch.nn.CrossEntropyLoss(ignore_index=p)(lg.flatten(0, 1), t.flatten())),
     "CrossEntropyLoss"),
    ("temperature_probs", lambda: checks.check_temperature_probs(
        lambda logits, tau: charrnn.next_char_probs(logits, temperature=tau)), "next_char_probs"),
    ("most_surprising", lambda: checks.check_most_surprising(lambda model, vocab, text, k: F.cross_entropy(
        torch.zeros(1, 3), torch.tensor([0]), reduction="none")), "cross_entropy"),
    ("count_parameters", lambda: checks.check_count_parameters(
        lambda V, E, H: sum(p.numel() for layer in (torch.nn.Embedding(V, E), torch.nn.RNN(E, H), torch.nn.Linear(H, V))
                            for p in layer.parameters())), "Module.__init__"),
    ("temperature_probs", lambda: checks.check_temperature_probs(
        lambda logits, tau: torch.softmax(logits / tau, -1)), "torch.softmax"),
    ("train_step", lambda: checks.check_train_step(train_step_via_trainer), "Trainer.train_step"),
    ("temperature_probs", lambda: checks.check_temperature_probs(
        lambda logits, tau: charrnn.sample.temperature_probs(logits, tau)), "charrnn.sample.temperature_probs"),
    ("temperature_probs", lambda: checks.check_temperature_probs(
        lambda logits, tau: charrnn.sample.SamplingRule(temperature=tau).probs(logits)), "SamplingRule.probs"),
    ("top_p_probs", lambda: checks.check_top_p_probs(
        lambda probs, p: charrnn.sample.top_p_filter(probs, p)), "charrnn.sample.top_p_filter"),
    ("top_p_probs", lambda: checks.check_top_p_probs(
        lambda probs, p: charrnn.sample.SamplingRule(top_p=p).probs(probs.log())), "SamplingRule.probs"),
    ("train_step", lambda: checks.check_train_step(
        lambda *args: charrnn.training.train_step(*args)[0]), "charrnn.training.train_step"),
    ("train_step", lambda: checks.check_train_step(lambda *args: charrnn.train_step(*args)[0]), "charrnn.train_step"),
    ("tbptt_step", lambda: checks.check_tbptt_step(tbptt_step_via_library), "charrnn.training.train_step"),
    ("most_surprising", lambda: checks.check_most_surprising(
        lambda model, vocab, text, k: charrnn.metrics.surprisal_bits(torch.zeros(1, 3), torch.tensor([0]))),
     "charrnn.metrics.surprisal_bits"),
]


def rnn_layer_via_nn_rnn(e, h0, W_x, b_x, W_h, b_h):
    rnn = torch.nn.RNN(W_x.shape[1], W_x.shape[0], batch_first=True)
    with torch.no_grad():
        for p, value in zip(rnn.parameters(), (W_x, W_h, b_x, b_h), strict=True):
            p.copy_(value)
    output, h_n = rnn(e, None if h0 is None else h0[None])
    return output, h_n[0]


def train_step_via_trainer(model, optimizer, inputs, targets, clip):
    vocab = charrnn.CharVocab([chr(97 + i) for i in range(model.config.vocab_size - 4)])
    trainer = charrnn.Trainer(model, vocab, None, config=charrnn.TrainConfig(clip_norm=clip, device="cpu"))
    trainer.optimizer = optimizer
    return trainer.train_step(inputs, targets)[0]


def tbptt_step_via_library(model, optimizer, inputs, targets, state, clip):
    loss, _, new_state = charrnn.training.train_step(model, optimizer, inputs, targets, clip, state)
    return loss, new_state


@pytest.mark.parametrize("exercise, run, name", SHORTCUTS, ids=[f"{e}-{n}" for e, n, _ in
                                                                   [(s[0], s[2], None) for s in SHORTCUTS]])
def test_each_shortcut_is_refused_by_name(exercise, run, name):
    assert any(name in f"{module}.{path}" for module, path in checks.SHORTCUTS[exercise])
    with pytest.raises(ExerciseError, match="would do this exercise for you") as info:
        run()
    assert f"{name}, which would do this exercise for you" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_the_hand_written_answer_passes_and_the_library_works_again_afterwards(capsys):
    checks.check_masked_loss(hand_masked_loss)
    assert "✓ masked_loss is correct" in capsys.readouterr().out
    logits, targets = torch.randn(2, 3, 5), torch.tensor([[1, 2, 0], [3, 4, 4]])
    # outside the check the library is untouched
    assert torch.allclose(charrnn.masked_cross_entropy(logits, targets), hand_masked_loss(logits, targets, 0))
    assert F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item() > 0


def test_every_exercise_has_shortcuts_listed():
    """Every exercise of every notebook refuses what would do it, except notebook 09's check of a saved
    model, which the student trains with the library on purpose."""
    from pathlib import Path

    from charrnn.course.grading import score_columns

    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    exercises = {column.split(".", 1)[1] for column, *_ in score_columns(notebooks)} - {"saved_model"}
    assert len(exercises) == 19
    assert exercises == set(checks.SHORTCUTS)
    assert all(checks.SHORTCUTS[e] for e in exercises)


def test_the_references_are_the_library_functions_the_exercises_refuse():
    """A check compares with the library itself (never a copy that could
    drift), computed outside the window in which the student may not call it."""
    from charrnn.course.checks import nb04_training, nb05_sampling, nb06_surprisal

    assert nb05_sampling._library_temperature_probs is charrnn.sample.temperature_probs
    assert nb05_sampling._library_top_p_filter is charrnn.sample.top_p_filter
    assert nb04_training._library_train_step is charrnn.training.train_step
    assert nb06_surprisal._library_surprisal_bits is charrnn.metrics.surprisal_bits


def test_the_refused_library_functions_work_again_after_the_checks():
    originals = (charrnn.sample.temperature_probs, charrnn.sample.top_p_filter, charrnn.sample.SamplingRule.probs,
                 charrnn.training.train_step, charrnn.metrics.surprisal_bits)
    with pytest.raises(ExerciseError):
        checks.check_temperature_probs(lambda logits, tau: charrnn.sample.temperature_probs(logits, tau))
    with pytest.raises(ExerciseError):
        checks.check_most_surprising(lambda model, vocab, text, k: charrnn.metrics.surprisal_bits(
            torch.zeros(1, 3), torch.tensor([0])))
    assert (charrnn.sample.temperature_probs, charrnn.sample.top_p_filter, charrnn.sample.SamplingRule.probs,
            charrnn.training.train_step, charrnn.metrics.surprisal_bits) == originals


def test_no_check_docstring_spells_out_a_solution():
    """help(checks.check_...) is open to students: the docstrings describe
    what is checked, never the code that passes."""
    from helpers import SOLUTION_CODE

    for name in checks.__all__:
        doc = (getattr(checks, name).__doc__ or "").replace("torch.long", "")  # a dtype the answer needs
        leaked = [bit for bit in SOLUTION_CODE if bit in doc]
        assert leaked == [], f"{name}'s docstring shows {leaked}"


def test_a_check_leaves_the_notebook_random_numbers_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_masked_loss(hand_masked_loss)
    assert torch.equal(torch.rand(3), expected)


def test_a_module_first_imported_during_a_check_does_not_keep_the_refusal():
    """``charrnn.viz.surprisal`` binds ``surprisal_bits`` at import; imported for the first time while the
    metric is refused, it would keep the refusal after the check. Run in a fresh interpreter, where it is not
    imported yet."""
    import subprocess
    import sys

    script = (
        "import sys, torch, charrnn\n"
        "from charrnn.course import checks\n"
        "assert 'charrnn.viz.surprisal' not in sys.modules\n"
        "try:\n"
        "    checks.check_most_surprising(lambda model, vocab, text, k: __import__('charrnn.viz.surprisal'))\n"
        "except checks.ExerciseError:\n"
        "    pass\n"
        "from charrnn.viz import surprisal\n"
        "print(surprisal.surprisal_bits is charrnn.metrics.surprisal_bits)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
