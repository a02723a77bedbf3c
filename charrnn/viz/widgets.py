"""Interactive controls for playing with a model in a notebook (ipywidgets).

- :class:`GeneratorWidget`: prefix, strategy, temperature, top-k, top-p,
  min-p, length, seed, a Generate button and the generated text.
- :class:`TemperatureExplorer`: a temperature slider that redraws the
  next-character distribution after a prefix (the temperature softmax at work).
- :class:`SurprisalView`: type or paste a text, see each character coloured
  by how surprised the model is by it.
- :class:`NeuronExplorer`: pick a hidden unit and see its activation over a
  text as colour, next to the units most correlated with simple features.

Each takes an in-memory ``(model, vocab)`` or, with ``from_checkpoint(path)``,
any checkpoint file. Each is displayed by putting it last in a cell (or
``display(w)``), and each has a method that does what its button or slider
does (``generate()``, ``redraw()``, ``score()``, ``show_unit()``), so a
notebook or a test can drive it without a browser.

This module needs ipywidgets and matplotlib (the ``notebooks`` extra);
``import charrnn`` does not import it.
"""

from __future__ import annotations

import html
import os
import warnings

import ipywidgets as widgets
import numpy as np
import torch

from ..checkpoint import load_model
from ..model import evaluating
from ..sample import generate, next_char_probs
from ..vocab import CharVocab
from .neurons import activation_html, hidden_states, text_features, top_units
from .surprisal import char_surprisal, surprisal_html


def _filter_sliders(style: dict) -> dict[str, widgets.Widget]:
    """One slider per filter of :class:`charrnn.SamplingRule` the widget offers,
    keyed by its argument of :func:`charrnn.generate`; the slider's
    description is the name of its strategy in the dropdown."""
    return {
        "top_k": widgets.IntSlider(value=10, min=1, max=60, description="top-k", style=style),
        "top_p": widgets.FloatSlider(value=0.9, min=0.05, max=1.0, step=0.05, description="top-p", style=style),
        "min_p": widgets.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.01, description="min-p", style=style),
    }


STRATEGIES = ("greedy", "temperature", *(s.description for s in _filter_sliders({}).values()))


def _message_html(text: str, error: bool = False) -> str:
    colour = "#b00020" if error else "#555"
    return f'<div style="color:{colour}; font-family:monospace">{html.escape(text)}</div>'


class _ModelWidget:
    """What every widget here shares: the model, its vocabulary, loading one
    from a checkpoint, and displaying ``self.ui``."""

    ui: widgets.Widget

    def __init__(self, model: torch.nn.Module, vocab: CharVocab):
        if not isinstance(vocab, CharVocab):
            raise TypeError(f"vocab must be a charrnn.CharVocab, got {type(vocab).__name__}")
        self.model = model  # each use switches to eval mode and back (charrnn.evaluating)
        self.vocab = vocab

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs):
        """The widget for the model saved in ``path`` (any charrnn checkpoint)."""
        model, vocab = load_model(path)
        return cls(model, vocab, **kwargs)

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


class GeneratorWidget(_ModelWidget):
    """Generate text from a prefix with the chosen strategy and settings.

    Temperature divides the logits before the softmax; top-k, top-p and
    min-p restrict sampling to the most likely characters (at the chosen
    temperature); greedy always takes the most likely one. The same seed and
    settings give the same text.
    """

    def __init__(self, model: torch.nn.Module, vocab: CharVocab, prefix: str = "We propose",
                 strategy: str = "temperature", temperature: float = 0.8, length: int = 200, seed: int = 0):
        super().__init__(model, vocab)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        style = {"description_width": "95px"}
        self.prefix = widgets.Text(value=prefix, description="prefix", style=style,
                                   layout=widgets.Layout(width="420px"))
        self.strategy = widgets.Dropdown(options=STRATEGIES, value=strategy, description="strategy", style=style)
        self.temperature = widgets.FloatSlider(value=temperature, min=0.1, max=2.0, step=0.05,
                                               description="temperature", style=style, readout_format=".2f")
        self.filters = _filter_sliders(style)
        for argument, slider in self.filters.items():  # self.top_k, self.top_p, ...
            setattr(self, argument, slider)
        self.length = widgets.IntSlider(value=length, min=10, max=1000, step=10, description="length", style=style)
        self.seed = widgets.IntText(value=seed, description="seed", style=style, layout=widgets.Layout(width="180px"))
        self.button = widgets.Button(description="Generate", button_style="primary", icon="play")
        self.output = widgets.HTML(value=_message_html("Press Generate."))
        self.output.add_class("charrnn-output")
        self.button.on_click(lambda _: self.generate())
        self.strategy.observe(lambda _: self._enable_controls(), names="value")
        self._enable_controls()
        self.text = ""
        self.ui = widgets.VBox([
            widgets.HBox([self.prefix, self.strategy]),
            widgets.HBox([self.temperature, *self.filters.values()]),
            widgets.HBox([self.length, self.seed, self.button]),
            self.output,
        ])
        self.ui.add_class("charrnn-generator")

    def _enable_controls(self) -> None:
        kind = self.strategy.value
        self.temperature.disabled = kind == "greedy"
        for slider in self.filters.values():
            slider.disabled = kind != slider.description

    def settings(self) -> dict:
        """The keyword arguments of :func:`charrnn.generate` the controls stand for."""
        kind = self.strategy.value
        return {"max_new_chars": self.length.value, "seed": self.seed.value,
                "temperature": 0.0 if kind == "greedy" else self.temperature.value,
                **{argument: slider.value if kind == slider.description else None
                   for argument, slider in self.filters.items()}}

    def generate(self) -> str:
        """What the Generate button does: returns the text and shows it.
        A problem (an impossible setting, characters the model does not
        know) is shown in the output area instead of a traceback."""
        self.button.disabled = True
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.text = generate(self.model, self.vocab, self.prefix.value, **self.settings())
            notes = "".join(_message_html(str(w.message)) for w in caught)
            self.output.value = (notes + '<pre class="charrnn-generated" style="white-space:pre-wrap; '
                                 f'margin:4px 0">{html.escape(self.text)}</pre>')
        except ValueError as e:
            self.text = ""
            self.output.value = _message_html(f"Cannot generate: {e}", error=True)
        finally:
            self.button.disabled = False
        return self.text


class TemperatureExplorer(_ModelWidget):
    """The next-character distribution after a prefix, redrawn as the
    temperature slider moves: ``p_i = exp(l_i / tau) / sum_j exp(l_j / tau)``.

    The bars are the ``top`` characters most likely at tau = 1, in that order,
    so a move of the slider shows the same characters gaining or losing mass.
    """

    def __init__(self, model: torch.nn.Module, vocab: CharVocab, prefix: str = "In this paper we ",
                 temperature: float = 1.0, top: int = 15):
        super().__init__(model, vocab)
        self.top = top
        self.prefix = widgets.Text(value=prefix, description="prefix", continuous_update=False,
                                   layout=widgets.Layout(width="420px"))
        self.temperature = widgets.FloatSlider(value=temperature, min=0.0, max=3.0, step=0.05,
                                               description="temperature", readout_format=".2f")
        self.plot = widgets.Image(format="png")
        self.prefix.observe(lambda _: self.redraw(), names="value")
        self.temperature.observe(lambda _: self.redraw(), names="value")
        self.formula = widgets.HTMLMath(
            value=r"$p_i = \dfrac{\exp(l_i / \tau)}{\sum_j \exp(l_j / \tau)}$, "
                  r"where $l_i$ is the model's logit for character $i$ and $\tau$ the temperature")
        self.ui = widgets.VBox([widgets.HBox([self.prefix, self.temperature]), self.formula, self.plot])
        self.ui.add_class("charrnn-temperature-explorer")
        self._logits_for: tuple[str, torch.Tensor] | None = None
        self.redraw()

    def logits(self) -> torch.Tensor:
        """The model's scores for the character after the prefix (cached per prefix)."""
        prefix = self.prefix.value
        if self._logits_for is None or self._logits_for[0] != prefix:
            with evaluating(self.model) as device:
                ids = torch.tensor([self.vocab.encode(prefix, add_bos=True)], device=device)
                logits, _ = self.model(ids)  # (1, prefix + 1, vocab)
            self._logits_for = (prefix, logits[0, -1].float().cpu())
        return self._logits_for[1]

    def probabilities(self) -> tuple[list[str], np.ndarray]:
        """The ``top`` characters (most likely at tau = 1 first) and their
        probabilities at the slider's temperature."""
        logits = self.logits()
        order = next_char_probs(logits, temperature=1.0).argsort(descending=True)[:self.top]
        probs = next_char_probs(logits, temperature=self.temperature.value)[order]
        labels = [self.vocab.itos[i].replace(" ", "␣").replace("\n", "⏎") for i in order.tolist()]
        return labels, probs.numpy()

    def redraw(self) -> None:
        """What moving the slider does: redraw the bar chart.

        The chart is rendered to PNG bytes and put into an Image widget, not
        drawn inside an Output widget: output captured by an Output widget
        lands in whichever cell is running when the slider moves, outside a
        live browser (nbval, nbconvert) included."""
        self.plot.value = self.render()

    def render(self) -> bytes:
        """The bar chart at the slider's temperature, as PNG bytes."""
        import io

        from matplotlib.figure import Figure

        labels, probs = self.probabilities()
        tau = self.temperature.value
        full = next_char_probs(self.logits(), temperature=tau)
        nonzero = full[full > 0]
        entropy = float(-(nonzero * nonzero.log2()).sum())
        fig = Figure(figsize=(8, 3))
        ax = fig.add_subplot()
        ax.bar(range(len(labels)), probs, color="tab:blue")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.grid(axis="y", alpha=0.3)
        greedy = " (greedy: all mass on the argmax)" if tau == 0 else ""
        ax.set_title(f"next character after {self.prefix.value!r} at τ = {tau:.2f}{greedy}; "
                     f"entropy {entropy:.2f} bits", fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
        return buffer.getvalue()


class SurprisalView(_ModelWidget):
    """A text box and, under it, the text coloured by the model's surprisal
    (-log2 p of each character, in bits) with its mean in bits per character."""

    def __init__(self, model: torch.nn.Module, vocab: CharVocab, text: str = ""):
        super().__init__(model, vocab)
        self.text = widgets.Textarea(value=text, placeholder="Type or paste a title ; abstract",
                                     layout=widgets.Layout(width="95%", height="90px"))
        self.button = widgets.Button(description="Score", button_style="primary")
        self.output = widgets.HTML()
        self.button.on_click(lambda _: self.score())
        self.ui = widgets.VBox([self.text, self.button, self.output])
        self.ui.add_class("charrnn-surprisal-view")
        self.bits = np.zeros(0)
        if text:
            self.score()

    def score(self) -> np.ndarray:
        """What the Score button does: colour the text; returns the bits."""
        text = self.text.value
        if not text:
            self.bits = np.zeros(0)
            self.output.value = _message_html("The text is empty: type something to score.", error=True)
            return self.bits
        self.bits = char_surprisal(self.model, self.vocab, text)
        unknown = self.vocab.unknown_chars(text)
        notes = _message_html(f"{len(unknown)} character(s) not in the vocabulary, scored as <unk>: "
                              + ", ".join(repr(c) for c in unknown[:10])) if unknown else ""
        summary = _message_html(f"{self.bits.mean():.2f} bits per character on average over {len(text)} characters")
        self.output.value = notes + surprisal_html(text, self.bits) + summary
        return self.bits


class NeuronExplorer(_ModelWidget):
    """One hidden unit's activation over a text, as colour (blue -1 ... red +1),
    with the units most correlated with simple features of the text to pick from.

    The features are those of :func:`charrnn.neurons.text_features`: inside
    ``$...$``, inside parentheses, title vs abstract, position in the line.
    """

    def __init__(self, model: torch.nn.Module, vocab: CharVocab, text: str, per_feature: int = 3):
        super().__init__(model, vocab)
        self.text = text
        self.states = hidden_states(model, vocab, text)
        self.matches = top_units(self.states, text_features(text), k=per_feature)
        options = [(f"{m.feature}: unit {m.unit} (r = {m.correlation:+.2f}, chance {m.chance:.2f})", m.unit)
                   for m in self.matches]
        first = options[0][1] if options else 0
        self.suggestions = widgets.Dropdown(options=options or [("(no feature varies on this text)", 0)],
                                            value=first, description="suggested",
                                            layout=widgets.Layout(width="480px"))
        self.unit = widgets.BoundedIntText(value=first, min=0, max=self.states.shape[1] - 1, description="unit",
                                           layout=widgets.Layout(width="180px"))
        self.output = widgets.HTML()
        self.suggestions.observe(lambda change: setattr(self.unit, "value", change["new"]), names="value")
        self.unit.observe(lambda _: self.show_unit(), names="value")
        self.ui = widgets.VBox([widgets.HBox([self.suggestions, self.unit]), self.output])
        self.ui.add_class("charrnn-neuron-explorer")
        self.show_unit()

    def activations(self, unit: int | None = None) -> np.ndarray:
        """The activation of ``unit`` (default: the selected one) after each character."""
        return self.states[:, self.unit.value if unit is None else unit]

    def show_unit(self) -> None:
        """What choosing a unit does: colour the text by its activation."""
        unit = self.unit.value
        values = self.activations(unit)
        found = [m for m in self.matches if m.unit == unit]
        note = "; ".join(f"r = {m.correlation:+.2f} with {m.feature}" for m in found) or "not among the suggestions"
        self.output.value = (activation_html(self.text, values, unit=unit)
                             + _message_html(f"unit {unit}: mean {values.mean():+.2f}, std {values.std():.2f}; {note}"))
