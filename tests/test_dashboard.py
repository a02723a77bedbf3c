"""Training callbacks and the live loss plot."""

from __future__ import annotations

import pytest
from test_train import InterruptAt

from charrnn import TrainConfig, Trainer, WindowBatches
from charrnn.viz.dashboard import LiveLossPlot, in_notebook


@pytest.fixture
def windows(small_corpus):
    return WindowBatches(small_corpus, batch_size=8, seq_len=24, seed=0)


class Recorder:
    def __init__(self):
        self.steps, self.ended = [], []

    def on_step_end(self, trainer):
        self.steps.append((trainer.step, len(trainer.history.val_loss)))

    def on_fit_end(self, trainer):
        self.ended.append(trainer.step)


def make_trainer(make_model, vocab, data, **kwargs):
    return Trainer(make_model(len(vocab), "gru"), vocab, data,
                   config=TrainConfig(device="cpu", eval_every=1000, **kwargs))


def test_callbacks_see_every_step_and_the_end(make_model, corpus_vocab, windows):
    recorder = Recorder()
    trainer = make_trainer(make_model, corpus_vocab, windows, steps=5)
    trainer.val_data, trainer.config.eval_every = windows, 2
    trainer.fit(progress=False, callbacks=[recorder])
    # on_step_end comes after the step's validation: at steps 2 and 4 (and the last) a new val loss is there
    assert recorder.steps == [(1, 0), (2, 1), (3, 1), (4, 2), (5, 3)]
    assert recorder.ended == [5]


def test_on_end_is_called_after_an_interruption(make_model, corpus_vocab, windows):
    recorder = Recorder()
    trainer = make_trainer(make_model, corpus_vocab, InterruptAt(windows, 3), steps=10)
    trainer.fit(progress=False, callbacks=[recorder])
    assert trainer.interrupted and [s for s, _ in recorder.steps] == [1, 2, 3] and recorder.ended == [3]


def test_live_plot_is_off_outside_a_notebook(make_model, corpus_vocab, windows, capsys):
    assert not in_notebook()
    plot = LiveLossPlot()
    trainer = make_trainer(make_model, corpus_vocab, windows, steps=3)
    trainer.fit(progress=False, callbacks=[plot])
    assert plot.redraws == 0 and capsys.readouterr().out == ""


def test_live_plot_redraws_throttled_and_always_at_the_end(make_model, corpus_vocab, windows, monkeypatch):
    shown = []

    class Handle:
        def update(self, image):
            shown.append(("update", image.data[:8]))

    def fake_display(image, display_id=False):
        shown.append(("display", image.data[:8]))
        return Handle()

    import IPython.display
    monkeypatch.setattr(IPython.display, "display", fake_display)
    plot = LiveLossPlot(min_interval=3600, enabled=True)  # throttled: one redraw per hour at most
    trainer = make_trainer(make_model, corpus_vocab, windows, steps=4)
    trainer.fit(progress=False, callbacks=[plot])
    assert shown == [("display", b"\x89PNG\r\n\x1a\n"), ("update", b"\x89PNG\r\n\x1a\n")]
    assert plot.redraws == 2

    every_step = LiveLossPlot(min_interval=0, enabled=True)
    shown.clear()
    trainer.fit(steps=7, progress=False, callbacks=[every_step])
    assert len(shown) == 3 + 1 and shown[0][0] == "display" and every_step.redraws == 4


def test_render_draws_the_history(make_model, corpus_vocab, windows):
    trainer = make_trainer(make_model, corpus_vocab, windows, steps=3)
    trainer.fit(progress=False)
    png = LiveLossPlot(enabled=False).render(trainer.history)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_baselines_are_drawn_as_labelled_lines(make_model, corpus_vocab, windows):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from charrnn.viz.plots import plot_history

    trainer = make_trainer(make_model, corpus_vocab, windows, steps=3)
    trainer.fit(progress=False)
    ax = Figure().add_subplot()
    plot_history(trainer.history, ax=ax, baselines={"unigram": 4.67, "bigram": 3.71})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "unigram (4.67 bits/char)" in labels and "bigram (3.71 bits/char)" in labels
    assert LiveLossPlot(enabled=False, baselines={"bigram": 3.71}).render(trainer.history)[:4] == b"\x89PNG"


def test_sample_every_shows_the_model_learning(make_model, corpus_vocab, windows, capsys):
    from charrnn import SampleEvery

    sampler = SampleEvery(2, prefix="The", length=12, temperature=0.8, seed=0)
    trainer = make_trainer(make_model, corpus_vocab, windows, steps=5)
    trainer.fit(progress=False, callbacks=[sampler])
    assert sorted(sampler.samples) == [0, 2, 4, 5]  # before training, every 2 steps, and the last
    assert all(text.startswith("The") for text in sampler.samples.values())
    out = capsys.readouterr().out
    assert "step     0: The" in out and "step     5: The" in out
    # the same seed each time: the untrained sample is what the untrained model writes
    assert sampler.samples[0] == charrnn_generate_untrained(make_model, corpus_vocab)


def charrnn_generate_untrained(make_model, vocab):
    import charrnn

    model = make_model(len(vocab), "gru")
    return charrnn.generate(model, vocab, "The", 12, temperature=0.8, seed=0)
