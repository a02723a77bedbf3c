"""What notebooks 03 (the language model) and 06 (inside the RNN) show as
numbers, asserted here on the same data and settings: the notebooks print the
values, these tests hold the claims the text makes about them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import charrnn
from charrnn.viz.neurons import hidden_states, text_features, top_units, unit_correlations
from charrnn.viz.surprisal import char_surprisal

E, H = 32, 128  # notebook 03's sizes
BLOCKS = {"scratch": 1, "rnn": 1, "gru": 3, "lstm": 4}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One thread, as in the notebooks: the same float sums, and no slowdown on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------- notebook 03
@pytest.fixture(scope="module")
def nb03_batch(corpus_texts, corpus_vocab):
    corpus = charrnn.EncodedCorpus.from_texts(corpus_texts, corpus_vocab)
    batches = charrnn.RecordBatches(corpus, batch_size=4, shuffle=False)
    inputs, targets = batches.batch(0)
    return batches, inputs, targets


@pytest.fixture(scope="module")
def nb03_models(corpus_vocab):
    models = {}
    for cell in charrnn.CELLS:
        torch.manual_seed(0)
        config = charrnn.ModelConfig(vocab_size=len(corpus_vocab), cell=cell, embed_dim=E, hidden_size=H)
        models[cell] = charrnn.CharRNN(config).eval()
    return models


def test_record_batch_targets_are_the_inputs_shifted_by_one(nb03_batch, corpus_vocab):
    _, inputs, targets = nb03_batch
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert (targets == corpus_vocab.pad_id).sum(1).tolist() == [270, 0, 90, 33]


def test_loss_by_hand_is_the_library_loss_and_the_mean_over_pads_is_not(nb03_batch, nb03_models, corpus_vocab):
    _, inputs, targets = nb03_batch
    with torch.no_grad():
        logits, _ = nb03_models["rnn"](inputs)
    picked = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = targets != corpus_vocab.pad_id
    by_hand = -(picked * mask).sum() / mask.sum()
    torch.testing.assert_close(by_hand, charrnn.masked_cross_entropy(logits, targets))
    assert abs(-picked.mean().item() - by_hand.item()) > 1e-3


@pytest.mark.parametrize("cell", charrnn.CELLS)
def test_untrained_loss_is_within_a_tenth_of_ln_v(nb03_batch, nb03_models, corpus_vocab, cell):
    _, inputs, targets = nb03_batch
    with torch.no_grad():
        loss = charrnn.masked_cross_entropy(nb03_models[cell](inputs)[0], targets).item()
    assert abs(loss - math.log(len(corpus_vocab))) < 0.1


@pytest.mark.parametrize("cell", charrnn.CELLS)
def test_changing_inputs_from_column_30_leaves_earlier_logits_exactly_unchanged(nb03_batch, nb03_models,
                                                                                corpus_vocab, cell):
    _, inputs, _ = nb03_batch
    t, V = 30, len(corpus_vocab)
    changed = inputs.clone()
    changed[:, t:] = torch.randint(4, V, changed[:, t:].shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = nb03_models[cell](inputs)[0], nb03_models[cell](changed)[0]
    assert torch.equal(before[:, :t], after[:, :t])
    assert (before[:, t:] - after[:, t:]).abs().max() > 0.1


def test_units_of_an_untrained_lstm(nb03_batch, nb03_models, corpus_vocab):
    batches, _, _ = nb03_batch
    V = len(corpus_vocab)
    assert charrnn.bits_per_char(math.log(V)) == pytest.approx(math.log2(V))
    report = charrnn.evaluate(nb03_models["lstm"], batches, max_batches=5)
    assert report.nats == pytest.approx(math.log(report.perplexity))
    assert abs(report.bits_per_char - math.log2(V)) < 0.15


@pytest.mark.parametrize("cell", charrnn.CELLS)
def test_a_recurrent_layer_has_k_blocks_of_h_times_e_plus_h_plus_2(nb03_models, corpus_vocab, cell):
    model, V, k = nb03_models[cell], len(corpus_vocab), BLOCKS[cell]
    layer = sum(p.numel() for p in model.rnn.parameters())
    assert layer == k * H * (E + H + 2)
    assert model.num_parameters == V * E + layer + H * V + V


def test_nn_rnn_holds_exactly_the_parameters_of_the_step_of_notebook_02():
    # section 2, the counting exercise: "nn.RNN computes the step of notebook 02 with exactly its parameters"
    torch.manual_seed(0)
    rnn = nn.RNN(E, H, batch_first=True)
    assert {name: tuple(p.shape) for name, p in rnn.named_parameters()} == {
        "weight_ih_l0": (H, E), "weight_hh_l0": (H, H), "bias_ih_l0": (H,), "bias_hh_l0": (H,)}
    e, h_prev = torch.randn(2, E), torch.randn(2, H).tanh()
    with torch.no_grad():
        step = torch.tanh(e @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h_prev @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        torch.testing.assert_close(step, rnn(e[:, None], h_prev[None])[1][0])


def test_gru_and_lstm_equations_as_written_are_pytorchs():
    torch.manual_seed(1)
    gru, lstm = nn.GRU(E, H, batch_first=True), nn.LSTM(E, H, batch_first=True)
    e, h_prev, c_prev = torch.randn(2, E), torch.randn(2, H).tanh(), torch.randn(2, H)
    with torch.no_grad():
        x_r, x_z, x_n = (e @ gru.weight_ih_l0.T + gru.bias_ih_l0).chunk(3, dim=1)
        h_r, h_z, h_n = (h_prev @ gru.weight_hh_l0.T + gru.bias_hh_l0).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        torch.testing.assert_close((1 - z) * n + z * h_prev, gru(e[:, None], h_prev[None])[1][0])

        pre = e @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h_prev @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
        i, f, g, o = pre.chunk(4, dim=1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        _, (h_lib, c_lib) = lstm(e[:, None], (h_prev[None], c_prev[None]))
        torch.testing.assert_close(torch.sigmoid(o) * torch.tanh(c), h_lib[0])
        torch.testing.assert_close(c, c_lib[0])


# ------------------------------------------------------------- notebook 06
@pytest.fixture(scope="module")
def nb06():
    model, vocab = charrnn.load_pretrained()
    text = charrnn.load_texts()[0]
    return model, vocab, text


def test_surprisal_of_the_first_record(nb06):
    model, vocab, text = nb06
    ids = torch.tensor([vocab.encode(text, add_bos=True)])
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])
    bits = (-torch.log_softmax(logits[0], -1).gather(1, ids[0, 1:, None])[:, 0] / math.log(2)).numpy()
    np.testing.assert_allclose(char_surprisal(model, vocab, text), bits, atol=1e-4)
    nats = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:]).item()
    assert bits.mean() == pytest.approx(nats / math.log(2), abs=1e-4)
    assert bits.mean() < 3                      # far below log2 V, about 7.1
    assert bits[0] > 2 * bits.mean()            # the first character of the title


def test_what_the_end_of_the_first_record_cost(nb06):
    """Section 2: notebook 03's loss on the record also scores <eos>, about 2.6 bits (p about 1/6)."""
    model, vocab, text = nb06
    bits = char_surprisal(model, vocab, text)
    record = charrnn.RecordBatches(charrnn.EncodedCorpus.from_texts([text], vocab), batch_size=1, shuffle=False)
    loss = charrnn.evaluate(model, record)
    assert loss.tokens == len(text) + 1
    eos_bits = loss.tokens * loss.bits_per_char - len(text) * float(bits.mean())
    ids = torch.tensor([vocab.encode(text, add_bos=True, add_eos=True)])
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])
    direct = -torch.log_softmax(logits[0, -1], -1)[vocab.eos_id].item() / math.log(2)
    assert eos_bits == pytest.approx(direct, abs=1e-3)
    assert 2.5 < direct < 2.65 and 2 ** -direct == pytest.approx(1 / 6, abs=0.01)


def test_the_most_surprising_characters_of_the_first_record(nb06):
    """Section 2's answer to "why those characters?": seven open a word or a formula, three continue a word
    the model expected to end; word-initial letters cost 4.3 bits on average, other letters 0.8."""
    model, vocab, text = nb06
    bits = char_surprisal(model, vocab, text)
    order = sorted(range(len(text)), key=lambda t: (-bits[t], t))
    assert min(bits[a] - bits[b] for a, b in zip(order[:10], order[1:11])) > 0.01  # no near-tie reorders the ten
    top = order[:10]
    assert [text[t] for t in top] == list("HUS$thu1sf")
    opens = [t for t in top if not text[t - 1].isalpha()]           # after a space or a $
    goes_on = {text[t - 2:t + 1] for t in top if text[t - 1].isalpha()}
    assert len(opens) == 7 and goes_on == {"ont", "rms", "mif"}      # onto, norms, semifinite
    assert text[15] == "$" and text[252] == "1" and text[251] == "$"  # a formula opens; its first symbol
    initial = [t for t, c in enumerate(text) if c.isalpha() and not text[t - 1].isalpha()]
    inside = [t for t, c in enumerate(text) if c.isalpha() and t > 0 and text[t - 1].isalpha()]
    assert round(float(bits[initial].mean()), 1) == 4.3 and round(float(bits[inside].mean()), 1) == 0.8
    spaces = [t for t, c in enumerate(text) if c == " "]
    assert 0.28 < bits[spaces].mean() < 0.4                        # about a third of a bit
    for start in (t for t in range(len(text)) if text.startswith("\\math", t)):
        assert max(bits[start + 2:start + 5]) < 0.3                 # "ath" once "\\m" is written
    for start in (t for t in range(len(text)) if text.startswith("$L_p$", t)):
        assert bits[start + 4] < 0.4                                # the closing $


def test_hidden_states_of_the_first_record(nb06):
    model, vocab, text = nb06
    ids = torch.tensor([vocab.encode(text, add_bos=True)])
    with torch.no_grad():
        hidden, (h_n, _) = model.rnn(model.embedding(ids))
        logits, _ = model(ids[:, :-1])
        torch.testing.assert_close(model.head(hidden[:, :-1]), logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(hidden[0, -1], h_n[-1, 0])
    states = hidden_states(model, vocab, text)
    np.testing.assert_allclose(states, hidden[0, 1:].numpy(), atol=1e-5)
    assert np.abs(states).max() <= 1.0


def test_features_and_units_of_the_first_record(nb06):
    model, vocab, text = nb06
    features = text_features(text)
    assert {name: int(f.sum()) for name, f in features.items() if name != "line_position"} == {
        "math": 56, "parens": 12, "title": 76}
    states = hidden_states(model, vocab, text)
    active = states.std(0) > 0.05
    title_r = np.where(active, unit_correlations(states, features["title"]), 0.0)
    assert np.abs(title_r).max() > 0.5
    best = {m.feature: m for m in top_units(states, features, k=1)}
    assert best["title"].unit == int(np.abs(title_r).argmax())
    assert abs(best["title"].correlation) > 3 * best["title"].chance
    assert abs(best["math"].correlation) > 3 * best["math"].chance


def test_chance_levels_of_the_first_record(nb06):
    """Section 4's shuffles, as the notebook draws them (one generator, seed 0, five shuffles per feature in
    the order math, parens, title): the parentheses unit is about twice the mean chance level and above the
    best single shuffle; math and title are far above every shuffle."""
    model, vocab, text = nb06
    states = hidden_states(model, vocab, text)
    active = states.std(0) > 0.05
    features = {name: f for name, f in text_features(text).items() if name != "line_position"}

    def best_abs(feature):
        return np.abs(np.where(active, unit_correlations(states, feature), 0.0)).max()

    rng = np.random.default_rng(0)
    shuffled = {name: [best_abs(rng.permutation(f)) for _ in range(5)] for name, f in features.items()}
    real = {name: best_abs(f) for name, f in features.items()}
    assert round(real["parens"], 2) == 0.37
    assert round(float(np.mean(shuffled["parens"])), 2) == 0.18 and round(max(shuffled["parens"]), 2) == 0.23
    assert 1.8 < real["parens"] / np.mean(shuffled["parens"]) < 2.3
    for name in ("math", "title"):
        assert real[name] > 3 * max(shuffled[name])
