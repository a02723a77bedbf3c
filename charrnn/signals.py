"""Stopping a training run cleanly when the user (or a scheduler) asks.

Ctrl-C and Jupyter's interrupt button send SIGINT; ``kill``, torchrun and
batch schedulers send SIGTERM. Python turns SIGINT into a
``KeyboardInterrupt`` wherever the program happens to be, which could be in
the middle of an optimizer update: half the weights changed and the step
count not. :class:`StopSignals` catches both signals while ``fit`` runs and
decides *when* to act on them, so a stopped run is always one a checkpoint
can continue exactly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopSignals:
    """While ``fit`` runs, SIGINT and SIGTERM ask training to stop.

    Inside :meth:`holding` (an update in progress) or with ``hold_always``
    (a distributed run, where the ranks must agree on the step they stop
    after) a signal is only noted in ``received``; elsewhere it raises
    ``KeyboardInterrupt`` at once, as Ctrl-C does. ``signum`` keeps the first
    signal, so the CLI can exit with 128 + signum as shells expect."""

    def __init__(self, hold_always: bool = False):
        self.received = False
        self.signum: int | None = None
        self._hold_always = hold_always
        self._holding: str | None = "always" if hold_always else None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        repeated, self.received = self.received, True
        self.signum = self.signum or signum
        # A validation pass is finished for the first signal; a second one
        # means "now" (resume redoes the pass). An update always finishes.
        if self._holding is None or (self._holding == "validation" and repeated):
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers: main thread only
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    @contextmanager
    def holding(self, what: str = "update") -> Iterator[None]:
        """Note signals without acting on them until the block is done
        (``what="validation"``: a second signal stops at once)."""
        self._holding = "always" if self._hold_always else what
        try:
            yield
        finally:
            self._holding = "always" if self._hold_always else None

    def stop_if_noted(self) -> None:
        """Act on a signal that :meth:`holding` kept waiting: raise
        ``KeyboardInterrupt`` now. With ``hold_always`` it keeps waiting: the
        ranks of a distributed run stop together, once they have agreed."""
        if self.received and not self._hold_always:
            raise KeyboardInterrupt
