"""Scoring at the limit (issue 15): records batched by length and long
batches read in chunks with the state carried give the loss that one call
over each whole padded batch gives, to float rounding, over the same
characters. Speed is measured in ``benchmarks/`` (side by side), not here."""

from __future__ import annotations

import pytest
import torch

import charrnn
from charrnn import EncodedCorpus, LengthBatches, RecordBatches, WindowBatches, evaluate
from charrnn.metrics import masked_cross_entropy, score_batch
from charrnn.vocab import PAD_ID


def whole_batch_evaluate(model, batches) -> tuple[float, int]:
    """What ``evaluate`` computed before issue 15: one forward call over each
    whole padded batch; the summed nats and the scored targets."""
    total, count = 0.0, 0
    with charrnn.evaluating(model):
        for inputs, targets in batches.eval_batches():
            logits, _ = model(inputs)
            total += masked_cross_entropy(logits, targets, reduction="sum").item()
            count += int((targets != PAD_ID).sum())
    return total / count, count


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "scratch"])
def test_length_batches_in_chunks_give_the_record_batches_loss(make_model, small_corpus, corpus_vocab, cell):
    model = make_model(len(corpus_vocab), cell=cell, layers=2)
    nats, count = whole_batch_evaluate(model, RecordBatches(small_corpus, 8, shuffle=False))
    report = evaluate(model, LengthBatches(small_corpus, 8), chunk_len=50)
    assert report.tokens == count == small_corpus.num_tokens - len(small_corpus)
    assert report.nats == pytest.approx(nats, rel=1e-6)


def test_chunks_keep_the_loss_of_windows_with_pad_targets_inside(make_model, small_texts, corpus_vocab):
    """Windows hold ``<bos>`` targets (scored as pad) in the middle of rows,
    so a row is not done at its first pad target."""
    model = make_model(len(corpus_vocab), layers=2)
    windows = WindowBatches(EncodedCorpus.from_texts(small_texts[:6], corpus_vocab), batch_size=5, seq_len=300)
    nats, count = whole_batch_evaluate(model, windows)
    report = evaluate(model, windows, chunk_len=64)
    assert (report.nats, report.tokens) == (pytest.approx(nats, rel=1e-6), count)


def test_done_rows_are_dropped_and_the_loss_stays(make_model, corpus_vocab):
    """Rows of very different lengths: the short ones leave after their
    chunk, the state of the others goes on with the right rows."""
    model = make_model(len(corpus_vocab), layers=2).eval()
    texts = ["a" * 5, "Long record " * 40, "", "mid length text " * 8, "b" * 130]
    corpus = EncodedCorpus.from_texts(texts, corpus_vocab)
    inputs, targets = next(RecordBatches(corpus, len(texts), shuffle=False).eval_batches())
    with torch.no_grad():
        whole = score_batch(model, inputs, targets, chunk_len=None)
        for chunk_len in (1, 7, 32, 10_000):
            chunked = score_batch(model, inputs, targets, chunk_len=chunk_len)
            assert chunked[1] == whole[1] == corpus.num_tokens - len(corpus)
            assert chunked[0] == pytest.approx(whole[0], rel=1e-6)


def test_length_batches_hold_every_record_once_longest_first(small_corpus, corpus_vocab):
    batches = list(LengthBatches(small_corpus, 16).eval_batches())
    assert [len(x) for x, _ in batches] == [16, 16, 8]
    scored = torch.cat([(y != PAD_ID).sum(1) for _, y in batches]).tolist()  # record length - 1
    assert scored == sorted(scored, reverse=True)
    assert sorted(scored) == sorted(len(small_corpus.record(i)) - 1 for i in range(len(small_corpus)))
    with pytest.raises(charrnn.ConfigError):
        LengthBatches(small_corpus, 0)


def test_the_pretrained_model_scores_the_same_in_chunks(corpus_texts):
    """The shipped 8M-parameter LSTM on a few embedded records: chunked and
    by length against one call per padded batch in file order."""
    model, vocab = charrnn.load_pretrained()
    corpus = EncodedCorpus.from_texts(sorted(corpus_texts, key=len)[:6], vocab)
    nats, count = whole_batch_evaluate(model, RecordBatches(corpus, 4, shuffle=False))
    report = evaluate(model, LengthBatches(corpus, 4), chunk_len=48)
    assert report.tokens == count
    assert report.nats == pytest.approx(nats, rel=1e-6)
    assert f"{report.bits_per_char:.4f}" == f"{charrnn.bits_per_char(nats):.4f}"


def test_the_int8_pretrained_model_scores_close_to_the_float_one(corpus_texts):
    """``load_pretrained(int8=True)``: the same model class and vocabulary,
    a copy whose LSTM and output layer are int8; within 0.01 bits/char of
    the float32 model on a few records (the bar of issue 15)."""
    model, vocab = charrnn.load_pretrained()
    int8, int8_vocab = charrnn.load_pretrained(int8=True)
    assert isinstance(int8, charrnn.CharRNN) and int8_vocab == vocab and not int8.training
    assert next(model.parameters()).dtype == torch.float32  # the float model is untouched
    corpus = EncodedCorpus.from_texts(sorted(corpus_texts, key=len)[:6], vocab)
    bits = [evaluate(m, LengthBatches(corpus, 6)).bits_per_char for m in (int8, model)]
    assert abs(bits[0] - bits[1]) <= 0.01
    assert charrnn.generate(int8, vocab, "We propose", max_new_chars=20, seed=0).startswith("We propose")
    with pytest.raises(charrnn.ConfigError, match="CPU"):
        charrnn.load_pretrained(device="meta", int8=True)
    from charrnn.pretrained import quantize_int8

    with pytest.raises(charrnn.ConfigError, match="for the CPU; this model is on meta"):
        quantize_int8(model.to("meta"))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_quantized_copy_reports_the_size_of_its_model(cell):
    """Dynamic quantization packs the recurrent and output weights outside
    ``parameters()``; ``num_parameters`` (and ``print(model)``) still count
    them, so the int8 copy is not shown as a model of a few thousand numbers.
    The count is checked against a layer-by-layer sum of the float model."""
    from charrnn.pretrained import quantize_int8

    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=20, cell=cell, embed_dim=6, hidden_size=10, num_layers=2)
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    per_layer = [gates * 10 * (inputs + 10 + 2) for inputs in (6, 10)]  # W_ih, W_hh, two biases
    expected = 20 * 6 + sum(per_layer) + (10 * 20 + 20)
    quantized = quantize_int8(model)
    assert model.num_parameters == expected
    assert quantized.num_parameters == expected
    left_as_parameters = sum(p.numel() for p in quantized.parameters())
    # PyTorch quantizes LSTM and GRU layers, not the plain tanh RNN, which stays float
    assert left_as_parameters == (20 * 6 + (sum(per_layer) if cell == "rnn" else 0))
    assert f"{expected:,} parameters" in repr(quantized)
