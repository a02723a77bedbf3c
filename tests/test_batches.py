"""EncodedCorpus, WindowBatches, RecordBatches, pad_sequences, shift_targets."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from charrnn import CharVocab, DataError, EncodedCorpus, RecordBatches, WindowBatches, pad_sequences, shift_targets
from charrnn.vocab import BOS_ID, EOS_ID, PAD_ID

TEXTS = ["ab", "hello world", "c", "the quick brown fox", "xyz", "jumps over", "q", "lazy dog!"]


@pytest.fixture
def vocab():
    return CharVocab.from_texts(TEXTS)


@pytest.fixture
def corpus(vocab):
    return EncodedCorpus.from_texts(TEXTS, vocab)


def bos_positions(corpus):
    return corpus.offsets[:-1]


# ------------------------------------------------------------ EncodedCorpus
def test_corpus_records_are_bos_text_eos(corpus, vocab):
    assert len(corpus) == len(TEXTS)
    for i, text in enumerate(TEXTS):
        record = corpus.record(i)
        assert record.dtype == torch.long
        assert record[0] == BOS_ID and record[-1] == EOS_ID
        assert vocab.decode(record) == text
        assert len(record) == len(text) + 2


def test_corpus_offsets_and_token_count(corpus):
    lengths = [len(t) + 2 for t in TEXTS]
    assert corpus.offsets.tolist() == [0] + list(torch.tensor(lengths).cumsum(0).tolist())
    assert corpus.num_tokens == sum(lengths) == len(corpus.ids)


@pytest.mark.parametrize("extra_chars", [252, 253, 400])
def test_corpus_keeps_ids_of_large_vocabularies(extra_chars):
    # 4 special tokens + n characters: ids beyond 255 must not wrap around.
    text = "".join(chr(0x100 + i) for i in range(extra_chars))
    vocab = CharVocab.from_texts([text])
    corpus = EncodedCorpus.from_texts([text, text[::-1]], vocab)
    assert vocab.decode(corpus.record(0)) == text
    assert vocab.decode(corpus.record(1)) == text[::-1]
    assert int(corpus.ids.max()) == len(vocab) - 1


def test_corpus_of_no_texts_raises(vocab):
    with pytest.raises(DataError):
        EncodedCorpus.from_texts([], vocab)


# ------------------------------------------------------------- pad/shift
def test_pad_sequences_pads_on_the_right():
    out = pad_sequences([[5, 6, 7], [8], torch.tensor([9, 10])])
    assert out.dtype == torch.long
    assert out.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID], [9, 10, PAD_ID]]


def test_pad_sequences_cuts_at_max_len_and_custom_pad():
    out = pad_sequences([[5, 6, 7, 8], [9]], pad_id=-1, max_len=2)
    assert out.tolist() == [[5, 6], [9, -1]]


def test_pad_sequences_of_nothing_raises():
    with pytest.raises(ValueError):
        pad_sequences([])


def test_shift_targets_masks_bos_targets():
    tokens = torch.tensor([[BOS_ID, 5, 6, EOS_ID, BOS_ID, 7]])
    inputs, targets = shift_targets(tokens)
    assert inputs.tolist() == [[BOS_ID, 5, 6, EOS_ID, BOS_ID]]
    assert targets.tolist() == [[5, 6, EOS_ID, PAD_ID, 7]]
    assert tokens.tolist() == [[BOS_ID, 5, 6, EOS_ID, BOS_ID, 7]]  # input not modified


# ------------------------------------------------------------ WindowBatches
def test_window_batch_shapes(corpus):
    inputs, targets = WindowBatches(corpus, batch_size=5, seq_len=7).batch(0)
    assert inputs.shape == targets.shape == (5, 7)
    assert inputs.dtype == targets.dtype == torch.long


def test_window_targets_are_inputs_shifted_by_one(corpus):
    ids = corpus.ids.long()
    batcher = WindowBatches(corpus, batch_size=16, seq_len=6, seed=3)
    inputs, targets = batcher.batch(0)
    for row_in, row_t in zip(inputs, targets):
        # find the window in the stream and check it against the stream
        starts = [s for s in range(corpus.num_tokens - 6) if torch.equal(ids[s:s + 6], row_in)]
        assert starts
        nxt = ids[starts[0] + 1:starts[0] + 7].clone()
        nxt[nxt == BOS_ID] = PAD_ID
        assert torch.equal(row_t, nxt)
        assert torch.equal(row_in[1:][row_t[:-1] != PAD_ID], row_t[:-1][row_t[:-1] != PAD_ID])


def test_window_bos_targets_become_pad(corpus):
    batcher = WindowBatches(corpus, batch_size=64, seq_len=10)
    inputs, targets = batcher.batch(0)
    assert not (targets == BOS_ID).any()
    # every <eos> input is followed by a (masked) <bos> target, except at the very end
    assert (targets[inputs == EOS_ID] == PAD_ID).all()
    assert (targets == PAD_ID).any()


def test_window_batches_cover_the_last_token(vocab):
    # With seq_len = num_tokens - 1 there is exactly one window: the whole stream.
    corpus = EncodedCorpus.from_texts(["abc", "cab"], vocab)
    batcher = WindowBatches(corpus, batch_size=3, seq_len=corpus.num_tokens - 1)
    inputs, targets = batcher.batch(5)
    assert torch.equal(inputs[0], corpus.ids[:-1].long())
    assert targets[0, -1] == EOS_ID


def test_window_batches_are_deterministic_per_seed_and_step(corpus):
    a = WindowBatches(corpus, batch_size=8, seq_len=5, seed=11)
    b = WindowBatches(corpus, batch_size=8, seq_len=5, seed=11)
    for step in (0, 1, 17):
        x1, y1 = a.batch(step)
        x2, y2 = b.batch(step)
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # order of calls does not matter either
    later = a.batch(17)
    a.batch(3)
    assert torch.equal(a.batch(17)[0], later[0])


def test_window_batches_differ_across_steps_and_seeds(corpus):
    a = WindowBatches(corpus, batch_size=8, seq_len=5, seed=11)
    b = WindowBatches(corpus, batch_size=8, seq_len=5, seed=12)
    assert not torch.equal(a.batch(0)[0], a.batch(1)[0])
    assert not torch.equal(a.batch(0)[0], b.batch(0)[0])


def test_window_batches_reject_a_corpus_shorter_than_a_window(corpus):
    with pytest.raises(DataError, match="seq-len"):
        WindowBatches(corpus, seq_len=corpus.num_tokens)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"seq_len": 0}])
def test_window_batches_reject_non_positive_sizes(corpus, kwargs):
    with pytest.raises(ValueError):
        WindowBatches(corpus, **kwargs)


@pytest.mark.parametrize("seq_len,batch_size", [(4, 3), (7, 2), (10, 100), (1, 5)])
def test_window_eval_batches_cover_each_target_exactly_once(corpus, seq_len, batch_size):
    batcher = WindowBatches(corpus, batch_size=batch_size, seq_len=seq_len)
    batches = list(batcher.eval_batches())
    n = corpus.num_tokens
    inputs = torch.cat([x.reshape(-1) for x, _ in batches])
    targets = torch.cat([y.reshape(-1) for _, y in batches])
    for x, y in batches:
        assert x.shape == y.shape and x.shape[1] <= seq_len
    # The stream read in order: positions 0..n-2 as inputs, 1..n-1 as targets.
    expected_targets = corpus.ids[1:].long().clone()
    expected_targets[expected_targets == BOS_ID] = PAD_ID
    assert torch.equal(inputs[:n - 1], corpus.ids[:-1].long())
    assert torch.equal(targets[:n - 1], expected_targets)
    assert (targets[n - 1:] == PAD_ID).all()
    # Scored targets: every token but the first, minus the <bos> of records 2..R.
    assert int((targets != PAD_ID).sum()) == n - len(corpus)


# ------------------------------------------------------------ RecordBatches
def test_record_batches_pad_to_the_longest_record(corpus, vocab):
    batcher = RecordBatches(corpus, batch_size=3, shuffle=False)
    inputs, targets = batcher.batch(0)
    lengths = [len(TEXTS[i]) + 2 for i in range(3)]
    assert inputs.shape == targets.shape == (3, max(lengths) - 1)
    for row, (x, y) in enumerate(zip(inputs, targets)):
        record = corpus.record(row)
        k = len(record) - 1
        assert torch.equal(x[:k], record[:-1])
        assert torch.equal(y[:k], record[1:])
        if k < len(x):  # a shorter record still reads its <eos>, with a pad target
            assert x[k] == EOS_ID
        assert (x[k + 1:] == PAD_ID).all() and (y[k:] == PAD_ID).all()


def test_record_batches_do_not_cut_long_records():
    long_text = "abc " * 100  # 400 characters: no 100-character cut
    vocab = CharVocab.from_texts([long_text])
    corpus = EncodedCorpus.from_texts([long_text, "ab"], vocab)
    inputs, targets = RecordBatches(corpus, batch_size=2, shuffle=False).batch(0)
    assert inputs.shape[1] == len(long_text) + 1
    assert targets[0, -1] == EOS_ID


def test_record_batches_cut_at_max_len(corpus):
    inputs, targets = RecordBatches(corpus, batch_size=4, max_len=5, shuffle=False).batch(0)
    assert inputs.shape == (4, 5)
    assert torch.equal(targets[3], corpus.record(3)[1:6])


def test_batches_per_epoch_rounds_up(corpus):
    assert RecordBatches(corpus, batch_size=3).batches_per_epoch == math.ceil(len(TEXTS) / 3) == 3
    assert RecordBatches(corpus, batch_size=4).batches_per_epoch == 2
    assert RecordBatches(corpus, batch_size=100).batches_per_epoch == 1


@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_record_batches_use_every_record_once_per_epoch(corpus, vocab, epoch):
    batcher = RecordBatches(corpus, batch_size=3, seed=4)
    per_epoch = batcher.batches_per_epoch
    seen = Counter()
    sizes = []
    for step in range(epoch * per_epoch, (epoch + 1) * per_epoch):
        inputs, _ = batcher.batch(step)
        sizes.append(len(inputs))
        for row in inputs:
            seen[vocab.decode(row)] += 1
    assert sizes == [3, 3, 2]  # the last, smaller batch is used
    assert seen == Counter(TEXTS)


def test_record_batches_reshuffle_each_epoch_deterministically(corpus, vocab):
    def epoch_order(batcher, epoch):
        per_epoch = batcher.batches_per_epoch
        return [vocab.decode(row) for step in range(epoch * per_epoch, (epoch + 1) * per_epoch)
                for row in batcher.batch(step)[0]]

    a = RecordBatches(corpus, batch_size=3, seed=1)
    b = RecordBatches(corpus, batch_size=3, seed=1)
    orders = [epoch_order(a, e) for e in range(4)]
    assert len({tuple(o) for o in orders}) > 1          # reshuffled
    assert [epoch_order(b, e) for e in (3, 0, 2, 1)] == [orders[3], orders[0], orders[2], orders[1]]
    c = RecordBatches(corpus, batch_size=3, seed=2)
    assert [epoch_order(c, e) for e in range(4)] != orders


def test_record_batches_without_shuffle_keep_file_order(corpus, vocab):
    batcher = RecordBatches(corpus, batch_size=3, shuffle=False)
    for epoch in range(2):
        rows = [vocab.decode(r) for s in range(epoch * 3, epoch * 3 + 3) for r in batcher.batch(s)[0]]
        assert rows == TEXTS


def test_record_eval_batches_cover_every_record_in_order(corpus, vocab):
    batches = list(RecordBatches(corpus, batch_size=3, seed=9).eval_batches())
    rows = [vocab.decode(r) for x, _ in batches for r in x]
    assert rows == TEXTS
    scored = sum(int((y != PAD_ID).sum()) for _, y in batches)
    assert scored == sum(len(t) + 1 for t in TEXTS)  # each character and each <eos>


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"max_len": 0}])
def test_record_batches_reject_invalid_sizes(corpus, kwargs):
    with pytest.raises(ValueError):
        RecordBatches(corpus, **kwargs)
