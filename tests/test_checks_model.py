"""The write-the-model exercise: a correct model passes; wrong parameter
count, probabilities instead of logits, a layer that mixes the batch, a
dropped state and the library's own CharRNN are each named."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_no_solution_code
from torch import nn

import charrnn
from charrnn.course.checks import ExerciseError, check_char_model


def make(cell=nn.GRU, batch_first=True, softmax=False, keep_state=True, bias=True):
    class Model(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embed_dim)
            self.rnn = cell(embed_dim, hidden_size, batch_first=batch_first)
            self.head = nn.Linear(hidden_size, vocab_size, bias=bias)

        def forward(self, x, state=None):
            out, new_state = self.rnn(self.embedding(x), state if keep_state else None)
            logits = self.head(out)
            return (logits.softmax(-1) if softmax else logits), new_state
    return Model


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_a_correct_model_passes(cell, capsys):
    check_char_model(make(cell))
    assert "✓ the model is correct" in capsys.readouterr().out


@pytest.mark.parametrize("model, hint", [
    (make(bias=False), "count each part"),
    (make(softmax=True), "return the raw scores"),
    (make(batch_first=False), "batch_first"),
    (make(keep_state=False), "state argument"),
])
def test_usual_mistakes_get_their_hint(model, hint):
    with pytest.raises(ExerciseError, match=hint) as info:
        check_char_model(model)
    assert_no_solution_code(str(info.value))


def test_the_library_model_is_refused():
    class Wrapper(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size):
            super().__init__()
            self.inner = charrnn.CharRNN(vocab_size=vocab_size, cell="gru", embed_dim=embed_dim,
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
    from helpers import student_check_cell_fails

    assert "not implemented yet" in student_check_cell_fails("03_the_language_model.ipynb", "class RNNLanguage(",
                                                             tmp_path)
