"""charrnn: character-level RNN language models on scientific text.

The companion library of the charrnn notebooks. Data flows
vocab -> data -> batches -> model -> train -> sample::

    import charrnn
    texts = charrnn.load_texts()                      # the embedded corpus
    vocab = charrnn.CharVocab.from_texts(texts)
    batches = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab))
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="lstm")
    charrnn.train(model, vocab, batches, steps=200)
    print(charrnn.generate(model, vocab, "We propose", temperature=0.5))
"""

from .baselines import compressor_bits_per_char
from .batches import EncodedCorpus, RecordBatches, WindowBatches, pad_sequences, shift_targets
from . import checks, student
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .data import (ReadStats, default_corpus_path, format_record, iter_records, load_records,
                   load_texts, normalize_whitespace, split_records, write_records)
from .errors import CharRNNError, CheckpointError, DataError
from .layers import RNNCell, ScratchRNN
from .metrics import LossReport, bits_per_char, evaluate, masked_cross_entropy, perplexity
from .model import CELLS, CharRNN, ModelConfig
from .pretrained import load_pretrained, pretrained_path
from .prepared import open_prepared, prepare_dataset
from .sample import generate, generate_batch, next_char_probs
from .training import History, TrainConfig, Trainer, pick_device, train
from .vocab import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, CharVocab
from .wordcheck import known_word_share, word_list, words

__version__ = "0.1.0"

__all__ = [
    "BOS", "CELLS", "CharRNN", "CharRNNError", "CharVocab", "CheckpointError", "DataError",
    "EOS", "EncodedCorpus", "History", "LossReport", "ModelConfig", "PAD", "RNNCell",
    "ReadStats", "RecordBatches", "SPECIAL_TOKENS", "ScratchRNN", "TrainConfig", "Trainer",
    "UNK", "WindowBatches", "bits_per_char", "default_corpus_path", "evaluate",
    "compressor_bits_per_char", "format_record", "generate", "generate_batch", "iter_records", "load_checkpoint",
    "known_word_share", "load_model", "load_pretrained", "load_records", "load_texts", "masked_cross_entropy", "next_char_probs",
    "normalize_whitespace", "open_prepared", "pad_sequences", "prepare_dataset", "perplexity", "pick_device", "pretrained_path",
    "save_checkpoint",
    "checks", "student",
    "shift_targets", "split_records", "train", "word_list", "words", "write_records",
]
