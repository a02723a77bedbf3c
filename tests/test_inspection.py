"""Surprisal, hidden units, and the coloured-text pictures of both."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import charrnn
from charrnn.viz.colortext import coloured_text_html, readable_text_colour, value_colours, wrap_positions
from charrnn.viz.neurons import (
    activation_html,
    hidden_states,
    save_activation_png,
    text_features,
    top_units,
    unit_correlations,
)
from charrnn.viz.surprisal import char_surprisal, save_surprisal_png, surprisal_html

TEXT = "A $x^2$ bound (with proof) ; We show $a<b$ & more."


@pytest.fixture(scope="module")
def model_and_vocab():
    torch.manual_seed(0)
    vocab = charrnn.CharVocab.from_texts([TEXT, "abcdefghijklmnopqrstuvwxyz"])
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="lstm", embed_dim=8, hidden_size=12).eval()
    return model, vocab


# ------------------------------------------------------------------ surprisal
def test_surprisal_is_minus_log2_of_the_probability_of_each_character(model_and_vocab):
    model, vocab = model_and_vocab
    bits = char_surprisal(model, vocab, TEXT)
    ids = torch.tensor([vocab.encode(TEXT, add_bos=True)])
    with torch.no_grad():
        probs = torch.softmax(model(ids[:, :-1])[0][0], -1)
    expected = -torch.log2(probs[torch.arange(len(TEXT)), ids[0, 1:]]).numpy()
    assert bits.shape == (len(TEXT),)
    np.testing.assert_allclose(bits, expected, rtol=1e-5, atol=1e-5)


def test_mean_surprisal_is_the_cross_entropy_in_bits(model_and_vocab):
    model, vocab = model_and_vocab
    ids = torch.tensor([vocab.encode(TEXT, add_bos=True)])
    with torch.no_grad():
        nats = charrnn.masked_cross_entropy(model(ids[:, :-1])[0], ids[:, 1:]).item()
    assert char_surprisal(model, vocab, TEXT).mean() == pytest.approx(nats / math.log(2), rel=1e-5)


def test_surprisal_leaves_the_model_in_its_mode(model_and_vocab):
    model, vocab = model_and_vocab
    model.train()
    try:
        char_surprisal(model, vocab, TEXT)
        assert model.training
    finally:
        model.eval()


def test_surprisal_of_an_empty_text_is_a_clear_error(model_and_vocab):
    with pytest.raises(ValueError, match="empty"):
        char_surprisal(*model_and_vocab, "")


def test_surprisal_html_has_one_span_per_character_escaped_with_values_and_legend():
    text = "a<b & c"
    bits = [0.0, 1.0, 2.5, 9.0, 3.0, 0.5, 12.0]
    out = surprisal_html(text, bits)
    span = r'<span title="[^"]*" style="background:rgb\(\d+,\d+,\d+\); color:(?:black|white)">(.*?)</span>'
    spans = re.findall(span, out)
    assert spans == ["a", "&lt;", "b", " ", "&amp;", " ", "c"]
    assert "2.50 bits" in out and "surprisal" in out
    assert "8 bits" in out  # the legend reaches the top of the scale
    # saturates: 9 and 12 bits get the same colour as the top of the scale
    top = value_colours([8.0], "YlOrRd", 0, 8)
    assert value_colours([9.0], "YlOrRd", 0, 8) == value_colours([12.0], "YlOrRd", 0, 8) == top


def test_letters_stay_readable_on_dark_backgrounds():
    pale, dark = value_colours([0.0, 8.0], "YlOrRd", 0, 8)
    assert readable_text_colour(pale) == "black" and readable_text_colour(dark) == "white"
    out = surprisal_html("ab", [0.0, 8.0])
    assert "color:black\">a<" in out and "color:white\">b<" in out


def test_colours_grow_darker_with_surprisal():
    colours = value_colours([0, 2, 4, 8], "YlOrRd", 0, 8)
    brightness = [sum(map(int, re.findall(r"\d+", c))) for c in colours]
    assert brightness == sorted(brightness, reverse=True) and len(set(brightness)) == 4


def test_coloured_text_needs_one_value_per_character():
    with pytest.raises(ValueError, match="one value per character"):
        coloured_text_html("abc", [1.0, 2.0], cmap="YlOrRd", vmin=0, vmax=8, unit="bits", legend_values=[0])
    with pytest.raises(ValueError, match="vmin < vmax"):
        value_colours([1.0], "YlOrRd", 3, 3)


def test_surprisal_png_is_written(tmp_path, model_and_vocab):
    path = tmp_path / "surprisal.png"
    save_surprisal_png(path, TEXT, char_surprisal(*model_and_vocab, TEXT), title="a title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


# ------------------------------------------------------------------ wrapping
@pytest.mark.parametrize("width", [1, 5, 12, 80])
def test_wrap_positions_cover_every_character_within_the_width(width):
    text = "We propose a supercalifragilistic method\nfor graphs ; and more."
    positions = wrap_positions(text, width)
    assert len(positions) == len(text)
    assert all(0 <= c < width for _, c in positions)
    assert positions == sorted(positions)  # reading order
    assert len(set(positions)) == len(positions)  # no two characters in one cell


def test_wrap_breaks_after_spaces_and_at_newlines():
    positions = wrap_positions("aaa bbb\ncc", 5)
    rows = {}
    for ch, (r, _) in zip("aaa bbb\ncc", positions):
        rows.setdefault(r, []).append(ch)
    assert ["".join(v) for v in rows.values()] == ["aaa ", "bbb\n", "cc"]
    with pytest.raises(ValueError, match="width"):
        wrap_positions("abc", 0)


# ------------------------------------------------------------------- neurons
def test_text_features_mark_math_parentheses_title_and_line_position():
    text = "T (a) ; x $y$ z\nnext"
    f = text_features(text)
    assert set(f) == {"math", "parens", "title", "line_position"}
    assert all(v.shape == (len(text),) for v in f.values())
    on = {name: "".join(ch for ch, x in zip(text, v) if x) for name, v in f.items() if name != "line_position"}
    assert on["math"] == "$y"          # the opening $ is inside, the closing one outside
    assert on["parens"] == "(a"
    assert on["title"] == "T (a)"
    line = f["line_position"]
    assert line[0] == 0 and line[text.index("\n") - 1] == 1 and line[text.index("\n") + 1] == 0
    assert line[-1] == 1


def test_text_features_without_a_title_separator_or_closing_parenthesis():
    f = text_features("an abstract ) only (")
    assert f["title"].sum() == 0
    assert f["parens"][-1] == 1 and f["parens"][:-1].sum() == 0


def test_unit_correlations_match_numpy_and_are_zero_for_constant_columns():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(50, 4))
    states[:, 2] = 0.7  # a unit that never moves
    feature = (rng.random(50) > 0.5).astype(float)
    states[:, 3] = feature * 2 - 1 + 0.01 * rng.normal(size=50)
    r = unit_correlations(states, feature)
    for u in (0, 1, 3):
        assert r[u] == pytest.approx(np.corrcoef(states[:, u], feature)[0, 1])
    assert r[2] == 0.0 and r[3] > 0.99
    with pytest.raises(ValueError, match="positions"):
        unit_correlations(states, feature[:-1])


def test_top_units_find_a_planted_unit_far_above_chance():
    rng = np.random.default_rng(1)
    feature = np.zeros(200)
    feature[50:120] = 1
    states = rng.uniform(-1, 1, size=(200, 30))
    states[:, 17] = np.tanh(3 * (feature - 0.5)) + 0.05 * rng.normal(size=200)
    matches = top_units(states, {"planted": feature, "constant": np.ones(200)}, k=2)
    assert [m.feature for m in matches] == ["planted", "planted"]  # the constant feature is left out
    best = matches[0]
    assert best.unit == 17 and best.correlation > 0.95 and best.chance < 0.4
    assert abs(matches[1].correlation) <= abs(best.correlation)


def test_hidden_states_are_the_top_layer_after_each_character(model_and_vocab):
    model, vocab = model_and_vocab
    states = hidden_states(model, vocab, TEXT)
    assert states.shape == (len(TEXT), model.config.hidden_size)
    ids = torch.tensor([vocab.encode(TEXT, add_bos=True)])
    with torch.no_grad():
        logits, _ = model(ids)
    # the model's logits are its head applied to these states
    head = model.head(torch.from_numpy(states)).detach()
    torch.testing.assert_close(head, logits[0, 1:], rtol=1e-4, atol=1e-4)
    assert np.abs(states).max() <= 1.0  # LSTM: h = o * tanh(c)


def test_activation_pictures(tmp_path):
    html_out = activation_html("ab", [-1.0, 1.0], unit=5)
    assert "unit 5" in html_out and html_out.count("<span title=") == 2
    path = tmp_path / "unit.png"
    save_activation_png(path, "ab cd", [-1, -0.5, 0, 0.5, 1], unit=5)
    assert path.read_bytes()[:4] == b"\x89PNG"
