"""The teaching diagrams of charrnn.viz.diagrams: figures that render, hold the
right words, and refuse arguments they cannot draw."""

from __future__ import annotations

import io

import pytest
from matplotlib.figure import Figure

from charrnn.errors import ConfigError
from charrnn.viz.diagrams import lstm_cell_figure, shift_and_mask_figure, unrolled_rnn_figure


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and callable(a.get_text))]


@pytest.mark.parametrize("make", [lambda: unrolled_rnn_figure(), lambda: unrolled_rnn_figure(steps=8),
                                  lambda: unrolled_rnn_figure(1, outputs=True),
                                  lambda: shift_and_mask_figure(), lambda: shift_and_mask_figure("a b", 0),
                                  lstm_cell_figure], ids=["rnn", "rnn8", "rnn1-outputs", "shift", "shift-nopad",
                                                          "lstm"])
def test_figures_render_to_png(make):
    fig = make()
    assert isinstance(fig, Figure) and fig.axes
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")


def test_figures_leave_pyplot_alone():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    unrolled_rnn_figure(), shift_and_mask_figure(), lstm_cell_figure()
    assert plt.get_fignums() == before


def test_shift_and_mask_shows_every_token_and_the_mask():
    texts = _texts(shift_and_mask_figure("RNN", pad=2))
    for token in ["<bos>", "R", "N", "<eos>", "<pad>"]:
        assert token in texts
    assert texts.count("<pad>") >= 2 + 2   # two pad inputs, two pad targets
    assert any("masked" in t for t in texts)


def test_unrolled_rnn_shows_one_layer_and_says_the_weights_are_shared():
    """Notebook 02's picture: inputs, states, h_0 and the shared weights, and
    nothing of the language model built on it (notebook 03)."""
    texts = " ".join(_texts(unrolled_rnn_figure(3)))
    assert "same $W_x$, $b_x$, $W_h$, $b_h$" in texts and "$h_0$" in texts and "output" in texts
    assert "$e_{3}$" in texts and "$h_{3}$" in texts and "$e_{4}$" not in texts
    for later in ("$x_{1}$", "logits", "W_o", "softmax"):
        assert later not in texts


def test_unrolled_rnn_with_outputs_shows_the_language_model():
    texts = " ".join(_texts(unrolled_rnn_figure(3, outputs=True)))
    assert "same $W_x$, $W_h$" in texts and "$x_{3}$" in texts and "$x_{4}$" not in texts
    assert "logits $l_{3}$" in texts and "softmax" in texts and "$h_0$" in texts


def test_lstm_names_its_gates():
    texts = " ".join(_texts(lstm_cell_figure()))
    for name in ["forget", "input", "candidate", "output", "$c_{t-1}$", "$h_t$"]:
        assert name in texts


@pytest.mark.parametrize("call", [
    lambda: unrolled_rnn_figure(0), lambda: unrolled_rnn_figure(9), lambda: unrolled_rnn_figure(2.5),
    lambda: unrolled_rnn_figure(True), lambda: unrolled_rnn_figure(4, outputs="yes"),
    lambda: shift_and_mask_figure(""), lambda: shift_and_mask_figure("x" * 9),
    lambda: shift_and_mask_figure(pad=-1), lambda: shift_and_mask_figure(pad=5), lambda: shift_and_mask_figure(3),
])
def test_bad_arguments_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()
