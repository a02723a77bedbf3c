"""Teaching diagrams drawn by code: an RNN unrolled over time, how the
training targets are the inputs shifted by one (with ``<pad>`` masked out of
the loss), and the inside of an LSTM cell.

Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot's global state, so a call left last in a notebook cell shows the
picture once and nothing leaks into later cells. The drawing is in inches:
the axes fill the whole figure and one data unit is one inch, so boxes,
circles and text keep their proportions.

Notation (row vectors, as in PyTorch): token ids ``x_t``, embeddings ``e_t``
(in notebook 02, any input vectors), hidden states ``h_t``, LSTM cell states
``c_t``, logits ``l_t``.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from ..errors import ConfigError
from ..vocab import BOS, EOS, PAD

_INK = "0.15"
_CELL = "#d6e6f5"    # RNN / LSTM cell boxes
_LOGIT = "#fde3c8"   # logits boxes
_SIGMA = "#d9f0d3"   # sigmoid gates
_TANH = "#e8dcf2"    # tanh boxes
_MASK = "0.85"       # masked positions
_MASK_INK = "#b2182b"


# ---------------------------------------------------------------- helpers


class Diagram(Figure):
    """A figure that shows itself as a PNG wherever IPython displays it, even
    in a kernel where pyplot (which registers the figure formatter) was never
    imported: a diagram is often a notebook's first picture."""

    def __repr__(self) -> str:
        return super().__repr__().replace(type(self).__name__, "Figure", 1)  # reads as any figure

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
        return buffer.getvalue()


def _canvas(width: float, height: float, title: str) -> tuple[Figure, object]:
    """A white figure whose single, axis-free Axes fills it, in inch units."""
    fig = Diagram(figsize=(width, height), facecolor="white")
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.text(width / 2, height - 0.25, title, ha="center", va="center", fontsize=13, weight="bold", color=_INK)
    return fig, ax


def _box(ax, cx: float, cy: float, w: float, h: float, text: str = "", face: str = "white",
         edge: str = _INK, fontsize: float = 10, **kwargs) -> None:
    """A rounded box centred on ``(cx, cy)`` with ``text`` in its middle."""
    style = kwargs.pop("linestyle", "-")
    ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                facecolor=face, edgecolor=edge, linewidth=1.3, linestyle=style,
                                hatch=kwargs.pop("hatch", None), zorder=2))
    if text:
        ax.text(cx, cy, text, ha="center", va="center", fontsize=fontsize, zorder=3, **kwargs)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = _INK,
           lw: float = 1.4) -> None:
    """A straight arrow from ``start`` to the tip at ``end``."""
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, shrinkA=0, shrinkB=0, mutation_scale=12))


def _path(ax, points: list[tuple[float, float]], color: str = _INK) -> None:
    """A polyline through ``points`` whose last segment ends in an arrow tip."""
    xs, ys = zip(*points[:-1], strict=True)
    ax.plot(xs, ys, color=color, lw=1.4, solid_capstyle="butt", zorder=1)
    _arrow(ax, points[-2], points[-1], color=color)


def _node(ax, x: float, y: float, symbol: str, r: float = 0.15) -> None:
    """A small circle holding an operation: ``×`` (element-wise product) or ``+``."""
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=_INK, linewidth=1.3, zorder=2))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=12, zorder=3, color=_INK)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


# ---------------------------------------------------------------- unrolled RNN


def _rnn_column(ax, cx: float, t: int, box_w: float, small: bool, outputs: bool) -> None:
    """One time step: the input ``e_t`` (with ``outputs``, the token ``x_t``
    it embeds), the cell, and what goes up: the state ``h_t`` (with
    ``outputs``, the logits and the next-token distribution)."""
    fs = 9 if small else 10
    if outputs:
        ax.text(cx, 0.95, f"$x_{{{t}}}$", ha="center", va="center", fontsize=11, color=_INK)
        _arrow(ax, (cx, 1.12), (cx, 1.55))
        ax.text(cx + 0.06, 1.33, f"$e_{{{t}}}$", ha="left", va="center", fontsize=fs, color="#2c5d8a")
    else:
        ax.text(cx, 0.95, f"$e_{{{t}}}$", ha="center", va="center", fontsize=11, color=_INK)
        _arrow(ax, (cx, 1.12), (cx, 1.55))
        ax.text(cx + 0.06, 1.33, "$W_x$", ha="left", va="center", fontsize=fs - 1, color="0.35")
    _box(ax, cx, 1.85, box_w, 0.6, "RNN\ncell", face=_CELL, fontsize=fs)
    _arrow(ax, (cx, 2.15), (cx, 2.55))
    if not outputs:
        ax.text(cx, 2.72, f"$h_{{{t}}}$", ha="center", va="center", fontsize=11, color="#2c5d8a")
        return
    _box(ax, cx, 2.75, box_w, 0.4, f"logits $l_{{{t}}}$", face=_LOGIT, fontsize=fs - 1)
    _arrow(ax, (cx, 2.95), (cx, 3.3))
    ax.text(cx, 3.45, f"$p(x_{{{t + 1}}} \\mid x_{{\\leq {t}}})$", ha="center", va="center", fontsize=fs,
            color=_INK)


def _rnn_state_arrows(ax, first: float, pitch: float, box_w: float, steps: int, small: bool,
                      outputs: bool) -> None:
    """``h_0`` on the left, and the state carried from each cell into the
    next, through ``W_h``, and out of the last; without ``outputs``, the
    states that go up are labelled as the layer's output."""
    h0_start = max(1.15, first - pitch + box_w / 2)
    ax.text(h0_start - 0.08, 1.85, "$h_0$", ha="right", va="center", fontsize=11, color=_INK)
    if not outputs:
        ax.text(h0_start - 0.08, 2.72, "output", ha="right", va="center", fontsize=10, color="0.35")
    for t in range(1, steps + 1):
        cx = first + (t - 1) * pitch
        start = cx - pitch + box_w / 2 if t > 1 else h0_start
        _arrow(ax, (start, 1.85), (cx - box_w / 2, 1.85), color="#2c5d8a")
        middle = (start + cx - box_w / 2) / 2
        if t > 1:
            ax.text(middle, 1.93, f"$h_{{{t - 1}}}$", ha="center", va="bottom", fontsize=9 if small else 10,
                    color="#2c5d8a")
        ax.text(middle, 1.77, "$W_h$", ha="center", va="top", fontsize=8 if small else 9, color="0.35")
    end = first + (steps - 1) * pitch + box_w / 2
    _arrow(ax, (end, 1.85), (end + 0.42 * pitch, 1.85), color="#2c5d8a")
    ax.text(end + 0.21 * pitch, 1.93, f"$h_{{{steps}}}$", ha="center", va="bottom",
            fontsize=9 if small else 10, color="#2c5d8a")


def unrolled_rnn_figure(steps: int = 4, outputs: bool = False) -> Figure:
    """A recurrent layer unrolled over ``steps`` time steps (1 to 8): each
    step reads its input ``e_t`` and the state ``h_{t-1}`` carried from the
    step before, starting from ``h_0``, and produces ``h_t``.

    Unrolling turns the loop of an RNN into a chain you can read left to
    right, and shows that the same weights are used in every box, which is
    why one layer can read a sequence of any length. With ``outputs`` the
    picture is the language model's (notebook 03 on): each input is a
    token's embedding and each state goes on to logits and a distribution
    over the next token; without, only what one layer computes.
    """
    _check_range("steps", steps, 1, 8)
    if not isinstance(outputs, bool):
        raise ConfigError(f"outputs must be True or False, got {outputs!r}")
    fig, ax = _canvas(10, 4.2 if outputs else 3.4, "An RNN unrolled over time")
    pitch = min(2.0, 8.6 / (steps + 0.45))
    first = 1.2 + (8.6 - pitch * (steps + 0.45)) / 2 + pitch / 2
    box_w = min(1.0, 0.62 * pitch)
    for t in range(1, steps + 1):
        _rnn_column(ax, first + (t - 1) * pitch, t, box_w, steps > 5, outputs)
    _rnn_state_arrows(ax, first, pitch, box_w, steps, steps > 5, outputs)
    step = "$h_t = \\tanh(e_t W_x^\\top + b_x + h_{t-1} W_h^\\top + b_h)$"
    caption = (f"the same $W_x$, $b_x$, $W_h$, $b_h$ at every step:   {step}" if not outputs else
               f"the same $W_x$, $W_h$ at every step:   {step},   $l_t = h_t W_o^\\top + b_o$,   "
               "$p = \\mathrm{softmax}(l_t)$")
    ax.text(5.0, 0.35, caption, ha="center", va="center", fontsize=10, color="0.3")
    return fig


# ---------------------------------------------------------------- shift and mask


def _token_cell(ax, cx: float, cy: float, w: float, token: str, fontsize: float, masked: bool = False,
                crossed: bool = False) -> None:
    """One token in a cell; a masked one is greyed (and, for a target, hatched and crossed out)."""
    if not masked:
        _box(ax, cx, cy, w, 0.46, token, face="white", fontsize=fontsize, family="monospace", color=_INK)
        return
    _box(ax, cx, cy, w, 0.46, face=_MASK if crossed else "0.94", edge="0.6", hatch="////" if crossed else None)
    if crossed:
        for dy in (0.17, -0.17):
            ax.plot([cx - w / 2 + 0.04, cx + w / 2 - 0.04], [cy - dy, cy + dy], color=_MASK_INK, lw=1.2,
                    alpha=0.8, zorder=2.5)
    ax.text(cx, cy, token, ha="center", va="center", fontsize=fontsize, family="monospace", color="0.3",
            zorder=3, bbox=dict(boxstyle="round,pad=0.12", facecolor="0.94", edgecolor="none") if crossed else None)


def _mask_label(ax, xs: list[float], w: float, y: float) -> None:
    """A bracket under the masked target cells and the words saying so."""
    left, right = xs[0] - w / 2, xs[-1] + w / 2
    ax.plot([left, left, right, right], [y + 0.1, y, y, y + 0.1], color=_MASK_INK, lw=1.3)
    label = "masked: not in the loss"
    x = min((left + right) / 2, 9.9 - 0.072 * len(label) / 2)
    ax.text(x, y - 0.17, label, ha="center", va="center", fontsize=10, color=_MASK_INK)


def shift_and_mask_figure(text: str = "RNN", pad: int = 2) -> Figure:
    """How one record of ``text`` (1 to 8 characters, plus ``pad`` <pad>
    tokens, 0 to 4) becomes inputs and targets for training.

    The target at each position is simply the next token, so one pass over a
    sequence gives a prediction exercise at every position; the padding that
    makes records of a batch equally long must not count, so positions whose
    target is ``<pad>`` are left out of the loss.
    """
    if not isinstance(text, str) or not 1 <= len(text) <= 8:
        raise ConfigError(f"text must be a string of 1 to 8 characters, got {text!r}")
    _check_range("pad", pad, 0, 4)
    tokens = [BOS, *text, EOS] + [PAD] * pad
    shown = [repr(c)[1:-1] if not c.isprintable() or c == " " else c for c in text]
    labels = [BOS, *[s if s.strip() else "␣" for s in shown], EOS] + [PAD] * pad
    fig, ax = _canvas(10, 3.8, "Targets are the inputs shifted left by one")
    n = len(tokens)
    pitch = min(0.8, 7.75 / n)
    w, fs = 0.86 * pitch, (10 if pitch >= 0.62 else 9)
    xs = [1.95 + pitch / 2 + i * pitch for i in range(n)]
    y_in, y_out = 2.75, 1.55
    ax.text(1.75, y_in, "input $x_t$", ha="right", va="center", fontsize=11, color=_INK)
    ax.text(1.75, y_out, "target $x_{t+1}$", ha="right", va="center", fontsize=11, color=_INK)
    ax.text(1.75, 3.23, "position $t$", ha="right", va="center", fontsize=9, color="0.45")
    masked = [i for i in range(n - 1) if tokens[i + 1] == PAD]
    for i, (x, label) in enumerate(zip(xs, labels, strict=True)):
        ax.text(x, 3.23, str(i + 1), ha="center", va="center", fontsize=9, color="0.45")
        _token_cell(ax, x, y_in, w, label, fs, masked=i in masked or i == n - 1)
        if i == n - 1:
            _box(ax, x, y_out, w, 0.46, "\u2013", face="white", edge="0.6", fontsize=fs, color="0.5",
                 linestyle="--")
            continue
        _token_cell(ax, x, y_out, w, labels[i + 1], fs, masked=i in masked, crossed=True)
        colour = "0.7" if i in masked else "#2c5d8a"
        _arrow(ax, (xs[i + 1] - 0.04, y_in - 0.25), (x + 0.04, y_out + 0.25), color=colour, lw=1.1)
    if masked:
        _mask_label(ax, [xs[i] for i in masked], w, 1.12)
    caption = ("inputs = tokens[:-1], targets = tokens[1:].  The loss averages $-\\ln\\, p(\\mathrm{target})$ "
               "over the unmasked positions only:\nthe last token has no next one, and a position whose target is "
               "<pad> is masked (ignore_index).")
    ax.text(5.0, 0.42, caption, ha="center", va="center", fontsize=9.5, color="0.3", linespacing=1.5)
    return fig


# ---------------------------------------------------------------- LSTM cell

_GATES = (  # name, symbol, x centre, box colour, function
    ("forget", "f", 2.6, _SIGMA, "\\sigma"),
    ("input", "i", 4.0, _SIGMA, "\\sigma"),
    ("candidate", "g", 5.2, _TANH, "\\tanh"),
    ("output", "o", 6.4, _SIGMA, "\\sigma"),
)


def _lstm_inputs_and_gates(ax, y_bus: float, y_gate: float) -> None:
    """``e_t`` and ``h_{t-1}`` joining on a bus that feeds the four gates."""
    ax.text(0.4, y_bus, "$h_{t-1}$", ha="center", va="center", fontsize=12, color=_INK)
    ax.text(2.0, 0.72, "$e_t$", ha="center", va="center", fontsize=12, color=_INK)
    ax.plot([0.8, 6.4], [y_bus, y_bus], color=_INK, lw=1.4, zorder=1)
    ax.plot([2.0, 2.0], [0.88, y_bus], color=_INK, lw=1.4, zorder=1)
    ax.add_patch(Circle((2.0, y_bus), 0.04, color=_INK, zorder=2))
    for name, _, x, face, fn in _GATES:
        _arrow(ax, (x, y_bus), (x, y_gate - 0.28))
        _box(ax, x, y_gate, 1.0, 0.56, f"{name}\n${fn}$", face=face, fontsize=9.5, color=_INK)


def _lstm_cell_state(ax, y_c: float, y_ig: float, y_gate: float) -> None:
    """The cell-state line: forget (``×``), then add ``i_t ⊙ g_t`` (``+``)."""
    ax.text(0.4, y_c, "$c_{t-1}$", ha="center", va="center", fontsize=12, color=_INK)
    _arrow(ax, (0.8, y_c), (9.45, y_c), lw=2.2)
    _node(ax, 2.6, y_c, "×")
    _node(ax, 4.6, y_c, "+")
    ax.text(3.6, y_c + 0.08, "$f_t \\odot c_{t-1}$", ha="center", va="bottom", fontsize=9, color="0.35")
    _path(ax, [(2.6, y_gate + 0.28), (2.6, y_c - 0.15)])
    ax.text(2.66, (y_gate + y_c) / 2, "$f_t$", ha="left", va="center", fontsize=10)
    _node(ax, 4.6, y_ig, "×")
    _path(ax, [(4.0, y_gate + 0.28), (4.0, y_ig), (4.45, y_ig)])
    _path(ax, [(5.2, y_gate + 0.28), (5.2, y_ig), (4.75, y_ig)])
    ax.text(3.94, y_gate + 0.4, "$i_t$", ha="right", va="bottom", fontsize=10)
    ax.text(5.26, y_gate + 0.4, "$g_t$", ha="left", va="bottom", fontsize=10)
    _arrow(ax, (4.6, y_ig + 0.15), (4.6, y_c - 0.15))
    ax.text(4.66, (y_ig + y_c) / 2, "$i_t \\odot g_t$", ha="left", va="center", fontsize=9, color="0.35")
    ax.text(9.7, y_c, "$c_t$", ha="center", va="center", fontsize=12, color=_INK)


def _lstm_output(ax, y_c: float, y_h: float, y_gate: float) -> None:
    """``h_t = o_t ⊙ tanh(c_t)``, leaving to the next step and up to the logits."""
    y_tanh = (y_c + y_h) / 2 + 0.05
    _arrow(ax, (7.3, y_c), (7.3, y_tanh + 0.15))
    ax.add_patch(Circle((7.3, y_c), 0.04, color=_INK, zorder=2))
    _box(ax, 7.3, y_tanh, 0.6, 0.3, "$\\tanh$", face=_TANH, fontsize=9.5)
    _arrow(ax, (7.3, y_tanh - 0.15), (7.3, y_h + 0.15))
    _node(ax, 7.3, y_h, "×")
    _path(ax, [(6.4, y_gate + 0.28), (6.4, y_h), (7.15, y_h)])
    ax.text(6.46, y_gate + 0.4, "$o_t$", ha="left", va="bottom", fontsize=10)
    _arrow(ax, (7.45, y_h), (9.45, y_h), lw=1.8)
    ax.text(9.7, y_h, "$h_t$", ha="center", va="center", fontsize=12, color=_INK)
    ax.plot([8.6, 8.6], [y_c - 0.09, y_c + 0.09], color="white", lw=6, zorder=1.5)  # a bridge over c_t
    ax.plot([8.6, 8.6], [y_h, 4.0], color=_INK, lw=1.8, zorder=1.6)
    _arrow(ax, (8.6, 3.95), (8.6, 4.15), lw=1.8)
    ax.add_patch(Circle((8.6, y_h), 0.045, color=_INK, zorder=2))
    ax.text(8.7, 4.12, "$h_t$ to logits $l_t$", ha="left", va="center", fontsize=10, color=_INK)


def lstm_cell_figure() -> Figure:
    """An LSTM cell: four gates read ``e_t`` and ``h_{t-1}``; the cell state
    ``c_t`` runs along the top, touched only by a product and a sum.

    That straight top line is the point of the picture: information (and the
    gradient) can pass many steps along it, scaled only by the forget gate,
    instead of being squashed through a ``tanh`` and a matrix at every step.
    """
    fig, ax = _canvas(10, 4.5, "An LSTM cell")
    y_bus, y_gate, y_ig, y_h, y_c = 1.2, 1.85, 2.75, 2.55, 3.55
    ax.add_patch(FancyBboxPatch((1.55, 0.95), 6.45, 3.0, boxstyle="round,pad=0,rounding_size=0.15",
                                facecolor="0.97", edgecolor="0.6", linewidth=1.0, zorder=0))
    _lstm_inputs_and_gates(ax, y_bus, y_gate)
    _lstm_cell_state(ax, y_c, y_ig, y_gate)
    _lstm_output(ax, y_c, y_h, y_gate)
    caption = ("$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$      $h_t = o_t \\odot \\tanh(c_t)$      "
               "each gate: $\\sigma$ or $\\tanh$ of "
               "$e_t W_{i\\cdot}^\\top + b_{i\\cdot} + h_{t-1} W_{h\\cdot}^\\top + b_{h\\cdot}$ (its own weights)")
    ax.text(5.0, 0.3, caption, ha="center", va="center", fontsize=10, color="0.3")
    return fig
