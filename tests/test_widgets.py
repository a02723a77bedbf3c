"""The notebook widgets, driven without a browser: each control's method does
what its button or slider does (tests/test_browser.py clicks the real thing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import charrnn
from charrnn.viz.widgets import GeneratorWidget, NeuronExplorer, SurprisalView, TemperatureExplorer

TEXT = "Sparse $x$ graphs (and more) ; We study sparse graphs."


@pytest.fixture(scope="module")
def model_and_vocab():
    torch.manual_seed(0)
    vocab = charrnn.CharVocab.from_texts(charrnn.load_texts()[:20])
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=8, hidden_size=16).eval()
    return model, vocab


@pytest.fixture
def generator(model_and_vocab):
    return GeneratorWidget(*model_and_vocab, prefix="We ", length=40)


def test_generate_matches_the_library_call_for_every_strategy(generator, model_and_vocab):
    model, vocab = model_and_vocab
    for strategy in ("greedy", "temperature", "top-k", "top-p", "min-p"):
        generator.strategy.value = strategy
        text = generator.generate()
        expected = charrnn.generate(model, vocab, "We ", **generator.settings())
        assert text == expected and text.startswith("We ")
        assert "charrnn-generated" in generator.output.value


def test_settings_follow_the_strategy(generator):
    generator.strategy.value = "greedy"
    assert generator.settings()["temperature"] == 0 and generator.temperature.disabled
    generator.strategy.value = "top-k"
    generator.top_k.value = 5
    s = generator.settings()
    assert s["top_k"] == 5 and s["top_p"] is None and not generator.top_k.disabled and generator.top_p.disabled
    generator.strategy.value = "top-p"
    assert generator.settings()["top_p"] == generator.top_p.value and generator.settings()["top_k"] is None
    generator.strategy.value = "min-p"
    s = generator.settings()
    assert s["min_p"] == generator.min_p.value and s["top_p"] is None and generator.top_p.disabled


def test_the_button_generates_and_the_seed_repeats(generator):
    generator.button.click()
    first = generator.text
    assert first.startswith("We ") and len(first) > 3
    generator.button.click()
    assert generator.text == first  # same seed, same text
    generator.seed.value = 1
    generator.button.click()
    assert generator.text != first


def test_moving_the_temperature_changes_the_text(generator):
    generator.temperature.value = 0.3
    cold = generator.generate()
    generator.temperature.value = 2.0
    assert generator.generate() != cold


def test_output_is_escaped_html(generator, model_and_vocab):
    generator.prefix.value = "a<b & "
    generator.generate()
    assert "a&lt;b &amp; " in generator.output.value


def test_unknown_characters_are_reported_in_the_output_not_raised(model_and_vocab):
    model, vocab = model_and_vocab
    vocab = charrnn.CharVocab.from_texts(charrnn.load_texts()[:20])
    widget = GeneratorWidget(model, vocab, prefix="Snowman ☃ ", length=10)
    text = widget.generate()
    assert text.startswith("Snowman ☃ ")
    assert "not in the vocabulary" in widget.output.value


def test_an_impossible_setting_is_a_message_in_the_output(generator):
    generator.strategy.value = "top-k"
    generator.top_k.min = 0  # the slider stops at 1; a program can still ask for 0
    generator.top_k.value = 0
    assert generator.generate() == ""
    assert "Cannot generate" in generator.output.value and "top_k" in generator.output.value
    assert not generator.button.disabled


def test_unknown_strategy_is_refused(model_and_vocab):
    with pytest.raises(ValueError, match="strategy must be one of"):
        GeneratorWidget(*model_and_vocab, strategy="beam")
    with pytest.raises(TypeError, match="CharVocab"):
        GeneratorWidget(model_and_vocab[0], {"a": 1})


def test_from_checkpoint_works_like_the_in_memory_model(tmp_path, model_and_vocab):
    model, vocab = model_and_vocab
    path = tmp_path / "m.pt"
    charrnn.save_checkpoint(path, model, vocab)
    in_memory = GeneratorWidget(model, vocab, length=30).generate()
    assert GeneratorWidget.from_checkpoint(path, length=30).generate() == in_memory


def test_widgets_display_as_their_box(generator):
    bundle = generator._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "charrnn-generator" in generator.ui._dom_classes


# ---------------------------------------------------------- temperature explorer
def test_temperature_explorer_follows_the_softmax_formula(model_and_vocab):
    explorer = TemperatureExplorer(*model_and_vocab, prefix="We ", top=8)
    logits = explorer.logits()
    for tau in (0.5, 1.0, 2.5):
        explorer.temperature.value = tau
        labels, probs = explorer.probabilities()
        expected = torch.softmax(logits / tau, -1)
        expected[[charrnn.vocab.PAD_ID, charrnn.vocab.BOS_ID, charrnn.vocab.UNK_ID]] = 0
        expected = expected / expected.sum()
        ids = [explorer.vocab.stoi[label.replace("␣", " ")] for label in labels]
        np.testing.assert_allclose(probs, expected[ids].numpy(), rtol=1e-4, atol=1e-7)
        assert len(labels) == 8 and np.all(probs >= 0)
    explorer.temperature.value = 0.0
    _, probs = explorer.probabilities()
    assert probs[0] == 1.0 and probs[1:].sum() == 0


def test_temperature_explorer_flattens_with_temperature(model_and_vocab):
    explorer = TemperatureExplorer(*model_and_vocab, prefix="We ", top=5)
    explorer.temperature.value = 0.3
    cold = explorer.probabilities()[1][0]
    explorer.temperature.value = 3.0
    assert explorer.probabilities()[1][0] < cold


def test_temperature_explorer_recomputes_for_a_new_prefix(model_and_vocab):
    explorer = TemperatureExplorer(*model_and_vocab, prefix="We ")
    before = explorer.logits().clone()
    explorer.prefix.value = "Graphs ; In"
    assert not torch.equal(before, explorer.logits())


# ------------------------------------------------------------ surprisal view
def test_surprisal_view_scores_the_text_box(model_and_vocab):
    view = SurprisalView(*model_and_vocab, text=TEXT)
    np.testing.assert_allclose(view.bits, charrnn.viz.surprisal.char_surprisal(*model_and_vocab, TEXT), rtol=1e-6)
    assert "bits per character on average" in view.output.value
    view.text.value = ""
    view.button.click()
    assert "empty" in view.output.value and view.bits.size == 0


# ------------------------------------------------------------ neuron explorer
def test_neuron_explorer_suggests_units_and_colours_the_chosen_one(model_and_vocab):
    explorer = NeuronExplorer(*model_and_vocab, text=TEXT, per_feature=2)
    assert explorer.states.shape == (len(TEXT), 16)
    features = {m.feature for m in explorer.matches}
    assert features <= {"math", "parens", "title", "line_position"} and "title" in features
    second = explorer.suggestions.options[1][1]
    explorer.suggestions.value = second
    assert explorer.unit.value == second
    assert f"unit {second}" in explorer.output.value
    np.testing.assert_array_equal(explorer.activations(), explorer.states[:, second])
    explorer.unit.value = 0
    assert "unit 0:" in explorer.output.value


def test_temperature_explorer_redraws_its_image(model_and_vocab):
    explorer = TemperatureExplorer(*model_and_vocab, prefix="We ")
    first = explorer.plot.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.temperature.value = 2.5
    assert explorer.plot.value != first and explorer.plot.value[:4] == b"\x89PNG"


def test_widgets_leave_a_training_model_in_training_mode(model_and_vocab):
    """Looking at a model in the middle of training must not switch its
    dropout off for good: every widget runs the model under charrnn.evaluating."""
    _, vocab = model_and_vocab
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="lstm", embed_dim=8, hidden_size=16,
                            num_layers=2, dropout=0.3).train()
    GeneratorWidget(model, vocab, length=10).generate()
    TemperatureExplorer(model, vocab).redraw()
    SurprisalView(model, vocab, text=TEXT).score()
    NeuronExplorer(model, vocab, TEXT).show_unit()
    assert model.training and all(m.training for m in model.modules())
