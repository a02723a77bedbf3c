"""A text with one colour per character, as HTML (for notebooks) or PNG (for READMEs).

Surprisal and hidden-unit activations are both "one number per character";
showing them means colouring each character's background. The HTML keeps the
text selectable and puts the exact value in a hover tooltip; the PNG is the
same picture for places that cannot run a notebook.

matplotlib is imported inside the functions, so ``import charrnn`` stays light.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence

import numpy as np


def value_colours(values: Sequence[float], cmap: str, vmin: float, vmax: float) -> list[str]:
    """CSS ``rgb(...)`` colours of ``values`` on the matplotlib colour map
    ``cmap``, clipped to ``[vmin, vmax]``."""
    import matplotlib

    if not vmax > vmin:
        raise ValueError(f"the colour scale needs vmin < vmax, got {vmin} and {vmax}")
    scaled = (np.clip(np.asarray(values, dtype=float), vmin, vmax) - vmin) / (vmax - vmin)
    rgba = matplotlib.colormaps[cmap](scaled)
    return [f"rgb({int(255 * r)},{int(255 * g)},{int(255 * b)})" for r, g, b, _ in np.atleast_2d(rgba)]


def readable_text_colour(css_rgb: str) -> str:
    """Black or white, whichever reads better on the background ``css_rgb``
    (by its relative luminance): dark red cells get white letters."""
    r, g, b = (int(x) / 255 for x in css_rgb[4:-1].split(","))
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _check_lengths(text: str, values: Sequence[float]) -> None:
    if len(text) != len(values):
        raise ValueError(f"one value per character is needed: the text has {len(text)} characters, "
                         f"got {len(values)} values")


def coloured_text_html(text: str, values: Sequence[float], *, cmap: str, vmin: float, vmax: float,
                       unit: str, legend_values: Sequence[float], caption: str = "") -> str:
    """HTML: each character of ``text`` on the background colour of its value,
    the value in a tooltip, and a legend of ``legend_values`` under it."""
    _check_lengths(text, values)
    colours = value_colours(values, cmap, vmin, vmax)
    spans = "".join(
        f'<span title="{html.escape(repr(ch))}: {v:.2f} {unit}" style="background:{c}; '
        f'color:{readable_text_colour(c)}">{html.escape(ch)}</span>'
        for ch, v, c in zip(text, np.asarray(values, dtype=float), colours, strict=True))
    legend = " ".join(f'<span style="background:{c}; color:{readable_text_colour(c)}; padding:0 6px">'
                      f'{v:g} {unit}</span>'
                      for v, c in zip(legend_values, value_colours(legend_values, cmap, vmin, vmax), strict=True))
    caption_html = f"{html.escape(caption)}: " if caption else ""
    return ('<div class="charrnn-coloured-text">'
            '<div style="font-family:monospace; line-height:1.7; white-space:pre-wrap; color:black">'
            f"{spans}</div>"
            f'<div style="margin-top:6px; font-size:90%">{caption_html}{legend}</div></div>')


def wrap_positions(text: str, width: int) -> list[tuple[int, int]]:
    """(row, column) of every character when ``text`` is wrapped at ``width``
    columns, breaking after spaces where possible and at newlines always."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    positions, row, col, i = [], 0, 0, 0
    while i < len(text):
        if text[i] == "\n":
            if col >= width:
                row, col = row + 1, 0
            positions.append((row, col))
            row, col, i = row + 1, 0, i + 1
            continue
        end = i
        while end < len(text) and text[end] not in " \n":
            end += 1
        word_len = end - i + (1 if end < len(text) and text[end] == " " else 0)
        if col and col + word_len > width:
            row, col = row + 1, 0
        for _ in range(word_len):
            if col >= width:  # a word longer than a whole line
                row, col = row + 1, 0
            positions.append((row, col))
            col += 1
        i += word_len
    return positions


def save_coloured_text_png(path: str | os.PathLike, text: str, values: Sequence[float], *, cmap: str,
                           vmin: float, vmax: float, label: str, width: int = 90, title: str = "",
                           dpi: int = 110) -> None:
    """The same picture as :func:`coloured_text_html`, as a PNG with a colour bar."""
    import matplotlib
    from matplotlib.figure import Figure  # not pyplot: no global backend switch, nothing left open
    from matplotlib.patches import Rectangle

    _check_lengths(text, values)
    positions = wrap_positions(text, width)
    rows = (max(r for r, _ in positions) + 1) if positions else 1
    colour_map = matplotlib.colormaps[cmap]
    norm = matplotlib.colors.Normalize(vmin, vmax, clip=True)
    char_w, line_h = 0.105, 0.24  # inches per character cell at 9 pt monospace
    top, gap, bar, bottom = (0.45 if title else 0.15), 0.3, 0.16, 0.5  # inches
    text_h = rows * line_h
    fig_w, fig_h = width * char_w + 0.6, top + text_h + gap + bar + bottom
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([0.3 / fig_w, (bottom + bar + gap) / fig_h, width * char_w / fig_w, text_h / fig_h])
    ax.set_xlim(0, width)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    for ch, value, (r, c) in zip(text, np.asarray(values, dtype=float), positions, strict=True):
        background = colour_map(norm(value))
        ax.add_patch(Rectangle((c, r), 1, 1, color=background, linewidth=0))
        if not ch.isspace():
            css = "rgb({},{},{})".format(*(int(255 * x) for x in background[:3]))
            ax.text(c + 0.5, r + 0.55, ch, ha="center", va="center", family="monospace", fontsize=9,
                    color=readable_text_colour(css))
    if title:
        fig.suptitle(title.replace("$", r"\$"), fontsize=10, y=1 - 0.12 / fig_h, va="top")
    bar_ax = fig.add_axes([0.3, bottom / fig_h, 0.4, bar / fig_h])
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colour_map), cax=bar_ax,
                 orientation="horizontal", label=label)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
