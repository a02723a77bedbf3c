"""Notebook 09's autograded part: the model a student hands in.

What is handed in is a checkpoint file, so the check starts from the file,
not from anything in the notebook's memory: it must load, its vocabulary
must be the one the student's data gives, and on the held-out records of
that data it must beat the bigram count model. Everything is recomputed
from the file and the data, so editing a printed number changes nothing.

The notebook runs as shipped on the embedded corpus, and the check passes
there; the homework is a model of text the student chose, so when the
check counts (nbgrader's hidden re-check sets ``common.GRADING``) the
embedded corpus scores zero.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...baselines import ngram_bits_per_char
from ...batches import WindowBatches
from ...checkpoint import load_model
from ...config import DataConfig
from ...corpus import load_corpora
from ...errors import CharRNNError
from ...metrics import evaluate
from . import common
from .common import ExerciseError, _keeps_random_state

__all__ = ["check_saved_model"]


@_keeps_random_state
def check_saved_model(path: str | os.PathLike, data: DataConfig) -> None:
    """Check that the checkpoint at ``path`` loads, was trained on the
    records ``data`` selects (same vocabulary), and scores fewer bits per
    character than the bigram model on their validation split."""
    path = Path(path)
    if common.GRADING and data.data is None:
        raise ExerciseError("this notebook trained on the embedded corpus; the homework is a model of text you "
                            "chose: set DATA in section 1 (an OAI download or your own .txt), train, save, and "
                            "hand in again")
    if not path.is_file():
        raise ExerciseError(f"there is no saved model at {path} yet: the cell that saves it (section 5) has not "
                            "run, or saved it somewhere else")
    try:
        model, vocab = load_model(path)
    except CharRNNError as e:
        raise ExerciseError(f"{path} does not load as a charrnn model: {e}") from None
    corpora = load_corpora(data, vocab=None)
    if vocab.itos != corpora.vocab.itos:
        raise ExerciseError(
            f"the model in {path} has a vocabulary of {len(vocab)} tokens, but the data of section 1 gives "
            f"{len(corpora.vocab)}, or the same number in another order: was it trained on other data (DATA, "
            "SAMPLE or MIN_FREQ changed since)? Train and save again with the data you report on")
    if corpora.val is None:
        raise ExerciseError("the data has no validation records (val_fraction is 0): the model cannot be judged")
    bits = evaluate(model, WindowBatches(corpora.val, batch_size=64, seq_len=64)).bits_per_char
    bigram = ngram_bits_per_char(corpora.train, corpora.val, len(vocab), order=2)
    if not bits < bigram:
        raise ExerciseError(
            f"on the held-out records your saved model scores {bits:.2f} bits per character and the bigram table "
            f"{bigram:.2f}: it has not learned more than which character follows which. Read your loss curve: "
            "still falling at the end (train longer), flat or jumping from the start (the learning rate), or "
            "validation rising while training falls (too little data for the model)?")
    print(f"✓ your saved model scores {bits:.1f} bits per character on the held-out records, "
          f"below the bigram model's {bigram:.1f}")
    if data.data is None:
        print("  (this is the embedded corpus: the homework asks for text you chose, and only a model of it "
              "earns this check's points)")
