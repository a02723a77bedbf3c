"""Exceptions that carry a message meant for a person, not a stack trace.

The CLI turns any :class:`CharRNNError` (and a file the operating system
cannot open) into one line on stderr and a non-zero exit status; anything
else is a bug and keeps its traceback. So every problem a user can cause
should be raised as one of these, and each names what to change.
"""


class CharRNNError(Exception):
    """Base class for every error charrnn raises on purpose."""


class ConfigError(CharRNNError, ValueError):
    """A setting is out of range or does not fit another one: a config field,
    a function argument, a model that does not fit its vocabulary."""


class DataError(CharRNNError, ValueError):
    """A data file is missing, unreadable or holds no usable record."""


class CheckpointError(CharRNNError, ValueError):
    """A checkpoint file is missing, truncated, foreign, or its weights do not
    fit the model it is loaded into."""


class ModelError(CharRNNError, ValueError):
    """The model cannot do what was asked of it: its weights are not finite."""


class MissingDependencyError(CharRNNError, ImportError):
    """An optional package a feature needs is not installed."""
