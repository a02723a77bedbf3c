"""What notebook 04 (training) claims about its section 4 and 5 runs, on the
same split, settings and seeds: the student's own model gets past the bigram
line by a full bit and writes mostly real words. The notebook prints these
numbers to one decimal (the second moves with the CPU); the claims and the
targets of issue 22 (at most 2.7 bits per character, at least half of the
sampled words known) are held here."""

from __future__ import annotations

import random

import pytest
import torch

import charrnn

SIZES = {"embed_dim": 32, "hidden_size": 128}
CONFIG = charrnn.TrainConfig(steps=400, lr=1e-2, clip_norm=1.0, eval_every=100, eval_batches=None, device="cpu")


@pytest.fixture(scope="module")
def split():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the notebook
    train_records, val_records = charrnn.split_records(charrnn.load_records(), 0.1)
    train_texts = [charrnn.format_record(r) for r in train_records]
    val_texts = [charrnn.format_record(r) for r in val_records]
    vocab = charrnn.CharVocab.from_texts(train_texts)
    train = charrnn.EncodedCorpus.from_texts(train_texts, vocab)
    val = charrnn.EncodedCorpus.from_texts(val_texts, vocab)
    yield train_texts, val_texts, vocab, train, val
    torch.set_num_threads(threads)


def trained(split, cell):
    _, _, vocab, train, val = split
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell=cell, **SIZES)
    history = charrnn.Trainer(model, vocab, charrnn.WindowBatches(train, batch_size=32, seq_len=64, seed=0),
                              charrnn.WindowBatches(val, batch_size=64, seq_len=64), CONFIG).fit(progress=False)
    return model, [charrnn.bits_per_char(x) for x in history.val_loss]


@pytest.fixture(scope="module")
def lstm_run(split):
    return trained(split, "lstm")


@pytest.fixture(scope="module")
def bigram_bits(split):
    _, _, vocab, train, val = split
    return charrnn.ngram_bits_per_char(train, val, len(vocab), order=2)


def test_the_lstm_reaches_the_issue_target_and_a_full_bit_below_the_bigram(lstm_run, bigram_bits):
    _, bits = lstm_run
    assert bits[-1] <= 2.7
    assert bigram_bits - bits[-1] >= 1.0
    assert bits[0] < bigram_bits  # "below the bigram line already" at step 100
    assert bits == sorted(bits, reverse=True)  # every validation better than the one before
    printed = [round(b, 1) for b in bits]
    assert printed == [3.1, 2.8, 2.7, 2.6]
    assert all(abs((b * 10) % 1 - 0.5) > 0.1 for b in bits)  # at least 0.01 bit from a rounding boundary


def test_most_words_of_the_lstm_samples_are_real(split, lstm_run):
    train_texts, val_texts, vocab, _, _ = split
    model, _ = lstm_run
    known = charrnn.word_list(train_texts)
    samples = [charrnn.generate(model, vocab, "", 300, temperature=0.8, seed=seed) for seed in range(4)]
    assert charrnn.known_word_share(samples, known) >= 0.5
    assert charrnn.known_word_share(val_texts, known) == pytest.approx(0.84, abs=0.005)


def test_bigram_text_has_few_real_words(split):
    """Section 4's yardstick: text drawn from the bigram table (Python's
    random on Python floats: the same on every machine)."""
    train_texts, _, vocab, train, _ = split
    ids = train.ids.long()
    prev, nxt = ids[:-1], ids[1:]
    keep = nxt != vocab.bos_id
    V = len(vocab)
    counts = torch.zeros(V, V)
    counts.index_put_((prev[keep], nxt[keep]), torch.ones(int(keep.sum())), accumulate=True)
    allowed = torch.ones(V)
    allowed[[vocab.pad_id, vocab.bos_id]] = 0
    table = (counts + 0.1) * allowed
    table = table / table.sum(1, keepdim=True)
    dice, text, previous = random.Random(0), "", vocab.bos_id
    while len(text) < 1200:
        previous = dice.choices(range(V), weights=table[previous].tolist())[0]
        if previous == vocab.eos_id:
            text, previous = text + " ", vocab.bos_id
        else:
            text += vocab.decode([previous])
    assert charrnn.known_word_share([text], charrnn.word_list(train_texts)) == pytest.approx(0.26, abs=0.005)


def test_gated_cells_are_ahead_after_400_steps(split, lstm_run):
    _, lstm_bits = lstm_run
    gru_bits = trained(split, "gru")[1][-1]
    rnn_bits = trained(split, "rnn")[1][-1]
    assert lstm_bits[-1] < gru_bits < rnn_bits
    assert [round(b, 1) for b in (lstm_bits[-1], gru_bits, rnn_bits)] == [2.6, 2.7, 2.8]
