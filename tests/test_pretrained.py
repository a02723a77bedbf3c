"""The model shipped with the package loads in one call and is good on text
it never saw (the embedded corpus was written for the project, not taken
from arXiv)."""

import pytest
import torch

import charrnn
from charrnn.errors import CheckpointError


@pytest.fixture(scope="module")
def pretrained():
    return charrnn.load_pretrained()


def test_pretrained_loads_in_one_call(pretrained):
    model, vocab = pretrained
    assert isinstance(model, charrnn.CharRNN) and not model.training
    assert model.config.vocab_size == len(vocab)
    assert next(model.parameters()).dtype == torch.float32  # stored as fp16, used as fp32


def test_pretrained_file_is_compact():
    assert charrnn.pretrained_path().stat().st_size < 20 * 1024 * 1024


def test_pretrained_checkpoint_carries_its_history_and_settings():
    ckpt = charrnn.load_checkpoint(charrnn.pretrained_path())
    assert ckpt["optimizer_state"] is None
    assert len(ckpt["history"]["train_loss"]) == ckpt["step"] > 0
    assert ckpt["data_config"]["val_fraction"] > 0


def test_pretrained_beats_gzip_on_the_embedded_corpus(pretrained):
    model, vocab = pretrained
    texts = charrnn.load_texts()[:12]
    corpus = charrnn.EncodedCorpus.from_texts(texts, vocab)
    report = charrnn.evaluate(model, charrnn.RecordBatches(corpus, 8, shuffle=False))
    assert report.bits_per_char < 2.2
    assert report.bits_per_char < charrnn.compressor_bits_per_char(texts)["gzip"]


def test_pretrained_writes_words(pretrained):
    model, vocab = pretrained
    known = charrnn.word_list(charrnn.load_texts())
    samples = charrnn.generate_batch(model, vocab, "We propose", n=4, max_new_chars=120,
                                     temperature=0.5, seed=0)
    assert charrnn.known_word_share(samples, known) > 0.8


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(CheckpointError, match="no pretrained model called 'nope'"):
        charrnn.load_pretrained("nope")
