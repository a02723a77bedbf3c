"""charrnn: character-level RNN language models on scientific text.

The companion library of the charrnn notebooks. Data flows
vocab -> data -> batches -> model -> training -> sample::

    import charrnn
    texts = charrnn.load_texts()                      # the embedded corpus
    vocab = charrnn.CharVocab.from_texts(texts)
    batches = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab))
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="lstm")
    charrnn.train(model, vocab, batches, steps=200)
    print(charrnn.generate(model, vocab, "We propose", temperature=0.5))

The names below are that course path, grouped by stage; they import only
the core modules. What builds on the core lives in subpackages, imported
when first used: ``charrnn.viz`` (plots, the live loss plot, widgets),
``charrnn.scale`` (prepared datasets, downloads, several processes) and
``charrnn.course`` (exercise checks, student versions).
"""

# ruff: noqa: I001  (the imports follow the stages of the course, not the alphabet)
from importlib import import_module

# settings and errors
from .config import CELLS, DataConfig, ModelConfig, TrainConfig
from .errors import CharRNNError, CheckpointError, ConfigError, DataError, MissingDependencyError, ModelError
from .optional import DISTRIBUTION

# 1. text -> characters -> ids
from .vocab import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, CharVocab
from .data import (HashSplit, ReadStats, default_corpus_path, format_record, iter_records, load_records,
                   load_texts, normalize_whitespace, split_records, write_records)
from .batches import (EncodedCorpus, LengthBatches, RecordBatches, WindowBatches, make_batches, pad_sequences,
                      shift_targets)
from .corpus import load_corpora

# 2. the network
from .layers import RNNCell, ScratchRNN
from .model import CharRNN, evaluating

# 3. training and measuring
from .metrics import LossReport, bits_per_char, evaluate, masked_cross_entropy, perplexity, surprisal_bits
from .baselines import compressor_bits_per_char, ngram_bits_per_char
from .callbacks import Callback, Checkpoints, ProgressBar, SampleEvery, TimeLimit
from .devices import pick_device
from .training import History, Trainer, train, train_step
from .checkpoint import load_checkpoint, load_model, save_checkpoint

# 4. generating
from .sample import SamplingRule, generate, generate_batch, next_char_probs, stream_batch
from .pretrained import load_pretrained, pretrained_path
from .wordcheck import known_word_share, word_list, words

__version__ = "0.1.0"

__all__ = [
    # settings and errors
    "DataConfig", "ModelConfig", "TrainConfig", "DISTRIBUTION",
    "CharRNNError", "CheckpointError", "ConfigError", "DataError", "MissingDependencyError", "ModelError",
    # 1. text -> characters -> ids
    "BOS", "EOS", "PAD", "SPECIAL_TOKENS", "UNK", "CharVocab",
    "HashSplit", "ReadStats", "default_corpus_path", "format_record", "iter_records",
    "load_records", "load_texts", "normalize_whitespace", "split_records", "write_records",
    "EncodedCorpus", "LengthBatches", "RecordBatches", "WindowBatches", "make_batches", "pad_sequences",
    "shift_targets", "load_corpora",
    # 2. the network
    "RNNCell", "ScratchRNN", "CharRNN", "CELLS", "evaluating",
    # 3. training and measuring
    "LossReport", "bits_per_char", "evaluate", "masked_cross_entropy", "perplexity", "surprisal_bits",
    "compressor_bits_per_char", "ngram_bits_per_char",
    "Callback", "Checkpoints", "ProgressBar", "SampleEvery", "TimeLimit",
    "pick_device", "History", "Trainer", "train", "train_step",
    "load_checkpoint", "load_model", "save_checkpoint",
    # 4. generating
    "SamplingRule", "generate", "generate_batch", "next_char_probs", "stream_batch", "load_pretrained",
    "pretrained_path",
    "known_word_share", "word_list", "words",
    # built on the core, imported on first use
    "open_prepared", "prepare_dataset",
]

# Names from the subpackages, imported the first time they are used, so
# `import charrnn` loads neither DDP, the prepared-data pipeline, widgets
# nor the course tools.
_LAZY = {"open_prepared": "charrnn.scale.prepared", "prepare_dataset": "charrnn.scale.prepared"}
_SUBPACKAGES = ("viz", "scale", "course")


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return import_module(f"charrnn.{name}")
    raise AttributeError(f"module 'charrnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))
