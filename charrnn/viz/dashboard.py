"""A live loss plot for training in a notebook.

In Jupyter the plot is redrawn in place while the model trains (the
progress bar stays above it); anywhere else ``LiveLossPlot`` does nothing,
so the same code runs in a terminal with a plain progress bar.

Redrawing is throttled by wall-clock time (every ``min_interval`` seconds),
because a redraw costs a matplotlib render; the last step is always drawn,
so what stays in the notebook is the finished curve whatever the speed of
the machine.
"""

from __future__ import annotations

import io
import time


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab, VS Code),
    False in a terminal, a script or plain IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveLossPlot:
    """Training callback: ``trainer.fit(callbacks=[LiveLossPlot()])``.

    The plot is :func:`charrnn.viz.plots.plot_history` (training loss per
    step, its moving average and the validation loss, in bits per character,
    with ``baselines`` as dashed lines).
    """

    def __init__(self, min_interval: float = 1.0, bits: bool = True, title: str | None = None,
                 enabled: bool | None = None, baselines: dict[str, float] | None = None):
        self.min_interval = min_interval
        self.bits = bits
        self.title = title
        self.baselines = baselines  # {"bigram": bits/char, ...}: dashed lines to beat
        self.enabled = in_notebook() if enabled is None else enabled
        self.redraws = 0
        self._handle = None
        self._last = -float("inf")

    def on_step_end(self, trainer) -> None:
        """Redraw, at most every ``min_interval`` seconds."""
        if self.enabled and time.monotonic() - self._last >= self.min_interval:
            self.draw(trainer.history)

    def on_fit_end(self, trainer) -> None:
        """Always draw the last step, so the finished curve stays."""
        if self.enabled and trainer.history.steps:
            self.draw(trainer.history)

    def render(self, history) -> bytes:
        """The plot of ``history`` as PNG bytes."""
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        from .plots import plot_history

        fig = Figure(figsize=(7, 3.6))
        ax = fig.add_subplot()
        plot_history(history, ax=ax, bits=self.bits, title=self.title, baselines=self.baselines)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
        plt.close(fig)
        return buffer.getvalue()

    def draw(self, history) -> None:
        """Show the plot of ``history`` under the cell, replacing the last one."""
        from IPython.display import Image, display

        image = Image(data=self.render(history), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self.redraws += 1
        self._last = time.monotonic()
