"""Exceptions that carry a message meant for a person, not a stack trace.

The CLI turns any :class:`CharRNNError` into one line on stderr and a non-zero
exit status, so every problem a user can cause (a bad file, a bad argument, a
checkpoint that does not fit) should be raised as one of these.
"""


class CharRNNError(Exception):
    """Base class for every error charrnn raises on purpose."""


class DataError(CharRNNError, ValueError):
    """A data file is missing, unreadable or holds no usable record."""


class CheckpointError(CharRNNError, ValueError):
    """A checkpoint is truncated, foreign, or does not fit the model/vocabulary."""
