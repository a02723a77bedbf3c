"""Things that happen around training, not in it: a progress bar, periodic
checkpoints, samples printed while the model learns.

:meth:`charrnn.Trainer.fit` is a short loop of optimisation steps; at named
moments it calls every callback that has a method of that name, with the
trainer as the only argument:

``on_fit_start``       before the first step of this ``fit`` call
``on_validation_end``  after a validation check (``trainer.history.val_loss[-1]`` is new)
``on_step_end``        after every step (and its validation, when there is one)
``on_fit_end``         when ``fit`` returns, finished or interrupted (``trainer.interrupted``)

A callback is any object with some of those methods; subclassing
:class:`Callback` is optional. The live loss plot of notebooks,
:class:`charrnn.viz.dashboard.LiveLossPlot`, is one more. In a distributed
run callbacks run on rank 0 only, except those with ``all_ranks = True``
(checkpoints: every rank must reach the same barrier).
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from .sample import generate


class Callback:
    """A base class with every event as a method that does nothing."""

    all_ranks = False  # True: also called on ranks other than 0 in a distributed run

    def on_fit_start(self, trainer) -> None:
        """Before the first step of a ``fit`` call."""

    def on_validation_end(self, trainer) -> None:
        """After a validation check."""

    def on_step_end(self, trainer) -> None:
        """After every optimisation step."""

    def on_fit_end(self, trainer) -> None:
        """When ``fit`` returns, finished or interrupted."""


def due_at_this_step(trainer, every: int) -> bool:
    """True every ``every`` steps and at the last step of the ``fit`` call."""
    return trainer.step % every == 0 or trainer.step == trainer.target_step


def call_event(callbacks, event: str, trainer) -> None:
    """Call ``event`` on every callback that has it, in order."""
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(trainer)


class ProgressBar(Callback):
    """A tqdm bar with the loss, the latest validation loss and the
    throughput in characters per second (of all ranks together); at the end
    a line with the steps, the time and the throughput."""

    def __init__(self):
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        """Open the bar at the current step and start the clock."""
        self.bar = tqdm(total=trainer.target_step, initial=trainer.step, desc="training",
                        unit="step", dynamic_ncols=True)
        self._first_step, self._first_chars = trainer.step, trainer.history.chars_trained
        self._started = time.perf_counter()

    def on_step_end(self, trainer) -> None:
        """Advance the bar; show the loss, validation loss and throughput."""
        h = trainer.history
        postfix = {"loss": f"{h.train_loss[-1]:.3f}"}
        if h.val_loss:
            postfix["val"] = f"{h.val_loss[-1]:.3f}"
        postfix["chars/s"] = f"{self._rate(trainer):,.0f}"
        self.bar.update(1)
        self.bar.set_postfix(postfix, refresh=False)

    def _rate(self, trainer) -> float:
        elapsed = time.perf_counter() - self._started
        return (trainer.history.chars_trained - self._first_chars) / max(elapsed, 1e-9)

    def on_fit_end(self, trainer) -> None:
        """Close the bar and print the summary line."""
        self.bar.close()
        steps = trainer.step - self._first_step
        if steps:
            ranks = f" on {trainer.context.world_size} processes" if trainer.context.is_distributed else ""
            tqdm.write(f"{steps} steps in {time.perf_counter() - self._started:.1f} s{ranks}: "
                       f"{self._rate(trainer):,.0f} characters/second")


class Checkpoints(Callback):
    """Write ``trainer.checkpoint_path`` every ``every`` steps, at the last
    step, and when training is interrupted (so nothing done is lost). A run
    that diverged (:class:`~charrnn.errors.ModelError`) writes nothing: the
    last good checkpoint stays."""

    all_ranks = True  # saving ends at a barrier every rank must reach

    def __init__(self, every: int):
        self.every = every

    def on_step_end(self, trainer) -> None:
        """Save every ``every`` steps and at the last one."""
        if due_at_this_step(trainer, self.every):
            trainer.save()

    def on_fit_end(self, trainer) -> None:
        """Save what an interrupted run has done, or a validation a resumed
        run redid, unless the file already holds it (a stop during
        validation is saved at that step already)."""
        if (trainer.interrupted or trainer.completed) and trainer.unsaved:
            trainer.save()


class SampleEvery(Callback):
    """Watch the model learn: generate text at the start of training and
    every ``every`` steps, print it under the progress bar, and keep it in
    ``self.samples`` (``{step: text}``).

    The same ``seed`` is used each time, so differences between the samples
    come from the model, not from the dice."""

    def __init__(self, every: int, prefix: str = "", length: int = 120, temperature: float = 0.8,
                 seed: int = 0, show: bool = True):
        self.every, self.prefix, self.length = every, prefix, length
        self.temperature, self.seed, self.show = temperature, seed, show
        self.samples: dict[int, str] = {}

    def _write_sample(self, trainer) -> None:
        text = generate(trainer.model, trainer.vocab, self.prefix, self.length,
                        temperature=self.temperature, seed=self.seed)
        self.samples[trainer.step] = text
        if self.show:
            tqdm.write(f"step {trainer.step:>5}: {text}")

    def on_fit_start(self, trainer) -> None:
        """A sample before training: what the untrained model writes."""
        if trainer.step not in self.samples:
            self._write_sample(trainer)

    def on_step_end(self, trainer) -> None:
        """A sample every ``every`` steps and at the last one."""
        if due_at_this_step(trainer, self.every):
            self._write_sample(trainer)


class TimeLimit(Callback):
    """Train for a length of time rather than a number of steps: "what does
    my model reach in 5 minutes on this laptop?" is the question a time
    budget answers, and steps per minute differ tenfold between machines.

    After each step it estimates the time of one more step (the mean so far
    in this ``fit``, validation and callbacks included); when that step would
    end past ``minutes``, it makes that step the last one of the ``fit``. The
    run then ends as a run of that many steps would: with a validation, a
    sample from :class:`SampleEvery` and a checkpoint. ``fit`` can be called
    again to go on. Not for runs under ``torchrun``: each process has its own
    clock, and all must stop at the same step."""

    def __init__(self, minutes: float, clock=time.perf_counter):
        if not minutes > 0:
            raise ValueError(f"minutes must be positive, got {minutes!r}")
        self.seconds, self.clock = minutes * 60, clock
        self.stopped_early = False  # True when the time, not the step count, ended the fit

    def on_fit_start(self, trainer) -> None:
        """Start the clock."""
        if trainer.context.is_distributed:
            raise ValueError("TimeLimit cannot stop a distributed run: each process has its own clock")
        self._started, self._first_step, self.stopped_early = self.clock(), trainer.step, False

    def on_step_end(self, trainer) -> None:
        """Make the next step the last when it would end after the limit."""
        elapsed = self.clock() - self._started
        next_step_ends = elapsed + elapsed / (trainer.step - self._first_step)
        if next_step_ends >= self.seconds and trainer.target_step > trainer.step + 1:
            trainer.target_step = trainer.step + 1
            self.stopped_early = True
