"""Checkers for the notebooks' "your turn" exercises.

A student writes a small function in a notebook cell (``encode``,
``pad_batch``, ...) and the next cell calls the matching ``check_*`` here. The
checker runs the student's function on a handful of cases and compares each
answer with the library's own implementation, so the reference can never
drift from what the rest of the course uses.

On success it prints one ``✓ ... correct`` line. On failure it raises
:class:`ExerciseError` (an ``AssertionError``, so nbval and pytest treat it
as a failed check) whose message says which input was tried, what was
expected and what came back: a student should be able to fix the function
from the message alone, without reading these files. In a notebook that
message is all it shows, with the student's own frames when their function
raised, never the check's code (:mod:`.display`); the cell still fails.

One module per notebook holds that notebook's checks (``nb01_data`` ...
``nb06_surprisal``, ``nb07_origin_data``, ``nb08_origin_training``,
``nb09_capstone``); :mod:`.common` holds what they share: the error, the
shortcuts each exercise refuses while the student's function runs, and the
one wording of each failure several checks report. Notebooks import this
package (``from charrnn.course import checks``) and need not know the split.
Grading reloads every one of these modules, ``common`` first
(:func:`charrnn.course.nbgrader_course.prepare_source`), so keep new checks
in modules of this package.
"""

from .common import SHORTCUTS, ExerciseError, refusing_shortcuts
from .nb01_data import check_encode, check_pad_batch
from .nb02_rnn_cell import check_rnn_backward, check_rnn_layer
from .nb03_language_model import check_char_model, check_count_parameters, check_lstm_step, check_masked_loss
from .nb04_training import check_tbptt_step, check_train_step
from .nb05_sampling import check_temperature_probs, check_top_p_probs
from .nb06_surprisal import check_most_surprising
from .nb07_origin_data import check_build_stoi, check_frame_record, check_training_windows
from .nb08_origin_training import check_clip_gradients, check_epoch_mean, check_greedy_carrying_state
from .nb09_capstone import check_saved_model

__all__ = [
    "SHORTCUTS",
    "ExerciseError",
    "check_build_stoi",
    "check_char_model",
    "check_clip_gradients",
    "check_count_parameters",
    "check_encode",
    "check_epoch_mean",
    "check_frame_record",
    "check_greedy_carrying_state",
    "check_lstm_step",
    "check_masked_loss",
    "check_most_surprising",
    "check_pad_batch",
    "check_rnn_backward",
    "check_rnn_layer",
    "check_saved_model",
    "check_tbptt_step",
    "check_temperature_probs",
    "check_top_p_probs",
    "check_train_step",
    "check_training_windows",
    "refusing_shortcuts",
]
