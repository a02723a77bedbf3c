"""CharRNN: shapes, causality, initial loss, learning, config and weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from charrnn import CELLS, CharRNN, CheckpointError, ModelConfig, WindowBatches, masked_cross_entropy
from charrnn.checkpoint import load_weights

VOCAB = 23


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_shapes(make_model, cell, layers):
    model = make_model(VOCAB, cell, hidden=12, embed=8, layers=layers)
    x = torch.randint(VOCAB, (3, 5))
    logits, state = model(x)
    assert logits.shape == (3, 5, VOCAB)
    if cell == "lstm":
        assert isinstance(state, tuple) and len(state) == 2
        assert state[0].shape == state[1].shape == (layers, 3, 12)
    else:
        assert isinstance(state, torch.Tensor)
        assert state.shape == (layers, 3, 12)


@pytest.mark.parametrize("cell", CELLS)
def test_state_continues_the_sequence(make_model, cell):
    model = make_model(VOCAB, cell).eval()
    x = torch.randint(VOCAB, (2, 9))
    full, _ = model(x)
    first, state = model(x[:, :4])
    rest, _ = model(x[:, 4:], state)
    assert_close(torch.cat([first, rest], 1), full)


@pytest.mark.parametrize("cell", CELLS)
def test_causality_later_tokens_never_change_earlier_logits(make_model, cell):
    model = make_model(VOCAB, cell, layers=2).eval()
    x = torch.randint(VOCAB, (2, 10))
    logits, _ = model(x)
    for t in (3, 7, 9):
        changed = x.clone()
        changed[:, t] = (changed[:, t] + 1) % VOCAB
        new_logits, _ = model(changed)
        assert torch.equal(new_logits[:, :t], logits[:, :t])
        assert not torch.allclose(new_logits[:, t], logits[:, t])


@pytest.mark.parametrize("cell", CELLS)
def test_fresh_model_loss_is_about_log_vocab_size(make_model, cell, corpus_vocab, small_corpus):
    model = make_model(len(corpus_vocab), cell, hidden=32).eval()
    inputs, targets = WindowBatches(small_corpus, batch_size=16, seq_len=32).batch(0)
    with torch.no_grad():
        loss = masked_cross_entropy(model(inputs)[0], targets).item()
    assert abs(loss - math.log(len(corpus_vocab))) < 0.3


@pytest.mark.parametrize("cell", CELLS)
def test_a_tiny_batch_can_be_overfitted(make_model, corpus_vocab, small_corpus, cell):
    model = make_model(len(corpus_vocab), cell, hidden=64)
    inputs, targets = WindowBatches(small_corpus, batch_size=4, seq_len=24, seed=1).batch(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = masked_cross_entropy(model(inputs)[0], targets)
        if loss.item() < 0.1:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


@pytest.mark.parametrize("kwargs", [
    {"cell": "transformer"},
    {"vocab_size": 0},
    {"embed_dim": 0},
    {"hidden_size": -1},
    {"num_layers": 0},
    {"dropout": 1.0},
    {"dropout": -0.1},
])
def test_invalid_config_raises(kwargs):
    config = {"vocab_size": VOCAB, **kwargs}
    with pytest.raises(ValueError):
        ModelConfig(**config)
    with pytest.raises(ValueError):
        CharRNN(**config)


def test_forward_rejects_wrong_input_rank(make_model):
    with pytest.raises(ValueError, match="batch, time"):
        make_model(VOCAB)(torch.randint(VOCAB, (5,)))


def test_dropout_only_acts_in_training_mode(make_model):
    model = make_model(VOCAB, "gru", layers=2, dropout=0.5)
    x = torch.randint(VOCAB, (2, 6))
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_load_weights_round_trip(make_model):
    source = make_model(VOCAB, "gru", seed=1).eval()
    target = make_model(VOCAB, "gru", seed=2).eval()
    x = torch.randint(VOCAB, (2, 6))
    load_weights(target, source.state_dict())
    assert torch.equal(target(x)[0], source(x)[0])


def test_load_weights_with_another_vocab_size_names_both_sizes(make_model):
    source = make_model(VOCAB + 5, "lstm")
    target = make_model(VOCAB, "lstm")
    with pytest.raises(CheckpointError) as info:
        load_weights(target, source.state_dict())
    message = str(info.value)
    assert str(VOCAB + 5) in message and str(VOCAB) in message
    assert "vocabulary" in message


def test_load_weights_of_another_architecture_raises_checkpoint_error(make_model):
    source = make_model(VOCAB, "lstm", hidden=16)
    target = make_model(VOCAB, "lstm", hidden=32)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights(target, source.state_dict())


def test_num_parameters_counts_all_parameters(make_model):
    model = make_model(VOCAB, "rnn", hidden=4, embed=3)
    # embedding 23*3, rnn 3*4 + 4*4 + 4 + 4, head 4*23 + 23
    assert model.num_parameters == VOCAB * 3 + (12 + 16 + 8) + (4 * VOCAB + VOCAB)


def test_lstm_forget_gates_start_open():
    model = CharRNN(vocab_size=20, cell="lstm", hidden_size=8, num_layers=2)
    for layer in range(2):
        forget = (getattr(model.rnn, f"bias_ih_l{layer}")[8:16] + getattr(model.rnn, f"bias_hh_l{layer}")[8:16])
        assert torch.all(forget == 1.0)
        other = getattr(model.rnn, f"bias_ih_l{layer}")[:8]
        assert not torch.all(other == 1.0)  # only the forget gate is set
