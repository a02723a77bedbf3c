"""Notebook 03's model exercise in two parts. ``count_parameters``: a right
count passes, each usual miscount (alone or two together) gets the hint of
its part, a constant or a fraction is told so, and building layers is
refused. ``RNNLanguage``: a correct model passes; probabilities, a layer
that reads time first, a dropped state, a state that cannot be handed back,
a shifted or bidirectional layer, a wrong parameter count, another cell and
the library's own CharRNN are each named."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code, student_check_cell_fails
from torch import nn

import charrnn
from charrnn.course.checks import ExerciseError, check_char_model, check_count_parameters
from charrnn.course.checks.nb03_language_model import _COUNT_SIZES, _PARTS, _miscounted_parts


# ------------------------------------------------------------- count_parameters
def right_count(V, E, H):
    return V * E + H * E + H * H + 2 * H + H * V + V


def test_a_right_count_passes_and_matches_real_layers(capsys):
    check_count_parameters(right_count)
    assert "✓ count_parameters is correct" in capsys.readouterr().out
    for V, E, H in _COUNT_SIZES:
        layers = (nn.Embedding(V, E), nn.RNN(E, H), nn.Linear(H, V))
        assert right_count(V, E, H) == sum(p.numel() for layer in layers for p in layer.parameters())


MISCOUNTS = [
    ("one RNN bias", lambda V, E, H: right_count(V, E, H) - H, "one bias vector in the recurrent layer"),
    ("no RNN bias", lambda V, E, H: right_count(V, E, H) - 2 * H, "no bias in the recurrent layer"),
    ("no output bias", lambda V, E, H: right_count(V, E, H) - V, "an output layer without its bias"),
    ("embedding V x H", lambda V, E, H: right_count(V, E, H) - V * E + V * H, "an embedding table of V x H"),
    ("no embedding", lambda V, E, H: right_count(V, E, H) - V * E, "no embedding table"),
    ("head H x H", lambda V, E, H: right_count(V, E, H) - H * V + H * H, "an output layer of H x H"),
    ("W_x H x H", lambda V, E, H: right_count(V, E, H) - H * E + H * H, "a W_x of H x H"),
    ("no W_h", lambda V, E, H: right_count(V, E, H) - H * H, "no W_h"),
    ("h_0 counted", lambda V, E, H: right_count(V, E, H) + H, "h_0 among the parameters"),
    ("a GRU", lambda V, E, H: right_count(V, E, H) + 2 * H * (E + H + 2), "a one-layer GRU"),
]


@pytest.mark.parametrize("name, count, hint", MISCOUNTS, ids=[m[0] for m in MISCOUNTS])
def test_each_usual_miscount_is_named(name, count, hint):
    with pytest.raises(ExerciseError, match="count_parameters\\(V=") as info:
        check_count_parameters(count)
    assert hint in str(info.value)
    assert_no_solution_code(str(info.value))


def test_two_miscounts_together_are_both_named():
    with pytest.raises(ExerciseError) as info:
        check_count_parameters(lambda V, E, H: right_count(V, E, H) - H - V)
    message = str(info.value)
    assert "one bias vector in the recurrent layer" in message and "an output layer without its bias" in message


def test_every_single_miscount_is_told_apart_from_every_other():
    """No two single miscounts give the same numbers at the check's sizes, so a
    hint never names a mistake the count does not match."""
    for part, right, wrongs in _PARTS:
        for wrong, hint in wrongs:
            counts = [right_count(*size) - right(*size) + wrong(*size) for size in _COUNT_SIZES]
            assert _miscounted_parts(counts) == [hint], (part, hint)


def test_an_unknown_count_gets_the_generic_hint_and_no_false_claim():
    with pytest.raises(ExerciseError, match="count stage by stage") as info:
        check_count_parameters(lambda V, E, H: right_count(V, E, H) + 3)
    assert "what you get with" not in str(info.value)


def test_a_constant_and_a_fraction_are_told_so():
    with pytest.raises(ExerciseError, match="at every size"):
        check_count_parameters(lambda V, E, H: 241)
    with pytest.raises(ExerciseError, match="not a whole number"):
        check_count_parameters(lambda V, E, H: right_count(V, E, H) / 2)
    with pytest.raises(ExerciseError, match="expected a whole number"):
        check_count_parameters(lambda V, E, H: str(right_count(V, E, H)))


def test_building_the_layers_is_refused():
    def by_the_layers(V, E, H):
        layers = (nn.Embedding(V, E), nn.RNN(E, H), nn.Linear(H, V))
        return sum(p.numel() for layer in layers for p in layer.parameters())

    with pytest.raises(ExerciseError, match="would do this exercise for you") as info:
        check_count_parameters(by_the_layers)
    assert "without the layers" in str(info.value)
    assert nn.Linear(2, 3).weight.shape == (3, 2)  # layers work again after the check


def test_student_version_of_the_count_reports_not_implemented(tmp_path):
    assert "not implemented yet" in student_check_cell_fails("03_the_language_model.ipynb", "def count_parameters(",
                                                             tmp_path)


# ----------------------------------------------------------------- RNNLanguage
def make(cell=nn.RNN, batch_first=True, softmax=False, keep_state=True, bias=True, embed="E", shift=False,
         state_of_outputs=False, bidirectional=False):
    class Model(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size):
            super().__init__()
            size = embed_dim if embed == "E" else hidden_size
            self.embedding = nn.Embedding(vocab_size, size)
            self.rnn = cell(size, hidden_size, batch_first=batch_first, bidirectional=bidirectional)
            self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), vocab_size, bias=bias)

        def forward(self, x, state=None):
            out, new_state = self.rnn(self.embedding(x), state if keep_state else None)
            if shift:  # the logits at t from the state before x_t
                out = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], 1)
            if state_of_outputs:  # the last output, (B, H), instead of the layer's state
                new_state = out[:, -1]
            logits = self.head(out)
            return (logits.softmax(-1) if softmax else logits), new_state
    return Model


def test_a_correct_model_passes(capsys):
    check_char_model(make())
    assert "✓ the model is correct: 241 parameters" in capsys.readouterr().out


@pytest.mark.parametrize("model, hint", [
    (make(bias=False), "an output layer without its bias"),
    (make(embed="H"), "an embedding table of V x H"),
    (make(nn.GRU), "a one-layer GRU"),
    (make(nn.LSTM), "a one-layer LSTM"),
    (make(softmax=True), "return the raw scores"),
    (make(batch_first=False), "Which dimension does your recurrent layer treat as time"),
    (make(keep_state=False), "state argument"),
    (make(shift=True), "shifted by one step"),
    (make(state_of_outputs=True), "starting state"),
    (make(bidirectional=True), "looks ahead"),
], ids=["no head bias", "embedding of H", "GRU", "LSTM", "probabilities", "time first", "state dropped", "shifted",
        "outputs as state", "bidirectional"])
def test_usual_mistakes_get_their_hint(model, hint):
    with pytest.raises(ExerciseError, match=hint) as info:
        check_char_model(model)
    assert_no_solution_code(str(info.value))
    assert "batch_first" not in str(info.value)  # the hint asks; it does not hand over the argument


def test_a_wrong_count_lists_the_models_own_parameters():
    with pytest.raises(ExerciseError, match=r"head\.weight \(11, 7\)") as info:
        check_char_model(make(bias=False))
    assert "has 230 parameters" in str(info.value) and "has 241" in str(info.value)


def test_the_library_model_is_refused():
    class Wrapper(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size):
            super().__init__()
            self.inner = charrnn.CharRNN(vocab_size=vocab_size, cell="rnn", embed_dim=embed_dim,
                                         hidden_size=hidden_size)

        def forward(self, x, state=None):
            return self.inner(x, state)
    with pytest.raises(ExerciseError, match="CharRNN, which would do this exercise for you"):
        check_char_model(Wrapper)


def test_a_model_that_returns_only_logits_is_told_the_contract():
    class LogitsOnly(make()):
        def forward(self, x, state=None):
            return super().forward(x, state)[0]
    with pytest.raises(ExerciseError, match=r"expected \(logits, state\)"):
        check_char_model(LogitsOnly)


def test_the_model_is_left_in_training_mode_and_untouched():
    model_class = make()
    check_char_model(model_class)
    assert torch.is_grad_enabled()


def test_student_version_of_notebook_03_reports_not_implemented(tmp_path):
    assert "not implemented yet" in student_check_cell_fails("03_the_language_model.ipynb", "class RNNLanguage(",
                                                             tmp_path)
