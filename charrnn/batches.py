"""Turning texts into (input, target) tensor batches.

The corpus is encoded once into one flat tensor of ids (each record wrapped in
``<bos>`` ... ``<eos>``) plus record offsets; batches are slices of it. The
origin notebook rebuilt tensors from Python lists for every batch, which
cost about 10% of its training time on the CPU (``benchmarks/``) and more
where the model step is faster, as on a GPU.

Two ways to batch, both giving ``targets = inputs shifted left by one``:

* :class:`WindowBatches` - random contiguous windows of ``seq_len`` tokens
  over the whole stream. No padding, every position does useful work: the
  fast way to train.
* :class:`RecordBatches` - whole records padded with ``<pad>`` to the longest
  in the batch (the origin notebook's way, without its 100-character cut
  unless ``max_len`` asks for one). The model sees each record from its start.

Targets that are ``<pad>`` are ignored by the loss, and so are ``<bos>``
targets in windows (the token after ``<eos>`` is always ``<bos>``: predicting
it is free and would flatter the loss), so both modes score the same thing:
every character and every ``<eos>``.

Batches are a pure function of ``(seed, step)``, which is what lets a resumed
training run see exactly the batches the uninterrupted run would have seen.

In a distributed run (:mod:`charrnn.scale.distributed`) each process builds its
batcher with its ``rank`` and the ``world_size`` and draws its own share:
``batch(step)`` is then a pure function of ``(seed, step, rank)``. Rank 0
draws exactly the single-process batches, so a one-process run is rank 0 of
any world size and its batches do not change with this feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from .config import DataConfig, check_positive
from .errors import ConfigError, DataError
from .vocab import BOS_ID, PAD_ID, UNK_ID, CharVocab

_DEFAULTS = DataConfig.defaults()
# Validation is scored on at most this many tokens (the first records of the
# split, the last one cut): more data makes the estimate barely better, and a
# split with one 50 MB record must not keep `train`'s closing check running
# for many minutes. About 2 M tokens: 250 batches of 64 windows of 128.
VALIDATION_TOKENS = 1 << 21

Batch = tuple[torch.Tensor, torch.Tensor]


class EncodedCorpus:
    """All records encoded once: ``ids`` holds them back to back, record ``i``
    is ``ids[offsets[i]:offsets[i + 1]]`` (``<bos>`` text ``<eos>``).

    ``unknown_count`` is how many characters of the texts were not in the
    vocabulary and became ``<unk>`` (a validation split often has a few)."""

    def __init__(self, ids: torch.Tensor, offsets: torch.Tensor, unknown_count: int = 0):
        self.ids = ids
        self.offsets = offsets
        self.unknown_count = unknown_count

    @classmethod
    def from_texts(cls, texts: Iterable[str], vocab: CharVocab) -> EncodedCorpus:
        """Encode every text as ``<bos>`` text ``<eos>``, back to back.

        Each text is cut down to the small integer dtype as soon as it is
        encoded, so a 100 MB text costs about one byte per character here,
        not the eight of the int64 ids that encoding returns."""
        dtype = np.uint8 if len(vocab) <= 256 else np.int32
        arrays, unknown = [], 0
        for text in texts:
            ids = vocab.encode_array(text, add_bos=True, add_eos=True)
            unknown += int((ids == UNK_ID).sum())
            arrays.append(ids.astype(dtype))
        if not arrays:
            raise DataError("no texts to encode")
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return cls(torch.from_numpy(np.concatenate(arrays)), torch.from_numpy(offsets), unknown)

    def __len__(self) -> int:
        """The number of records."""
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        """Tokens of all records, ``<bos>`` and ``<eos>`` included."""
        return int(self.offsets[-1])

    def record(self, i: int) -> torch.Tensor:
        """Record ``i`` as a LongTensor of ids."""
        return self.ids[int(self.offsets[i]):int(self.offsets[i + 1])].long()

    def head(self, max_tokens: int) -> EncodedCorpus:
        """The first records, up to ``max_tokens`` tokens in all (the last
        record cut short): a validation split capped at
        :data:`VALIDATION_TOKENS`. The ids are shared, not copied; the
        corpus itself when it is no longer."""
        if self.num_tokens <= max_tokens:
            return self
        starts = torch.as_tensor(self.offsets[:len(self)]).long()
        last = int(torch.searchsorted(starts, max_tokens)) - 1  # the last record that starts before max_tokens
        offsets = torch.cat([starts[:last + 1], torch.tensor([max_tokens])])
        return EncodedCorpus(self.ids, offsets, self.unknown_count)


def capped_validation(corpus: EncodedCorpus | None,
                      max_tokens: int | None = None) -> tuple[EncodedCorpus | None, str]:
    """A validation corpus cut to ``max_tokens`` (:data:`VALIDATION_TOKENS`
    by default) and the note that says so, ``""`` when nothing was cut, so
    the output states the cap whatever the data source."""
    max_tokens = VALIDATION_TOKENS if max_tokens is None else max_tokens
    if corpus is None or corpus.num_tokens <= max_tokens:
        return corpus, ""
    return corpus.head(max_tokens), (f"validation on the first {max_tokens:,} of {corpus.num_tokens:,} "
                                     "tokens (the cap on validation)")


def pad_sequences(sequences: Sequence[Sequence[int] | torch.Tensor], pad_id: int = PAD_ID,
                  max_len: int | None = None) -> torch.Tensor:
    """Stack id sequences into a ``(batch, length)`` LongTensor, padding on the
    right with ``pad_id`` to the longest one (or cutting at ``max_len``)."""
    if not sequences:
        raise ConfigError("cannot pad an empty list of sequences")
    seqs = [torch.as_tensor(s, dtype=torch.long)[:max_len] for s in sequences]
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    for row, s in zip(out, seqs, strict=True):
        row[:len(s)] = s
    return out


def shift_targets(tokens: torch.Tensor) -> Batch:
    """``(inputs, targets)`` from a padded ``(batch, length)`` tensor: the
    target at each position is the next token; pad and ``<bos>`` targets
    become ``<pad>`` so the loss ignores them."""
    inputs = tokens[:, :-1]           # (batch, length) -> (batch, length - 1)
    targets = tokens[:, 1:].clone()   # the same positions, one token later
    targets[targets == BOS_ID] = PAD_ID
    return inputs, targets


def _check_shard(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")


def _generator(seed: int, *salt: int) -> torch.Generator:
    """A generator seeded from ``seed`` and ``salt`` (step, rank, epoch):
    batches are a pure function of these numbers."""
    g = torch.Generator()
    value = seed
    for s in salt:
        value = value * 1_000_003 + s
    return g.manual_seed(value % (2 ** 63))


class WindowBatches:
    """Random windows of ``seq_len`` inputs (and their shifted targets) over
    the encoded stream; ``batch(step)`` depends only on ``seed`` and ``step``
    (and ``rank``: each process of a distributed run draws other windows)."""

    def __init__(self, corpus: EncodedCorpus, batch_size: int = _DEFAULTS["batch_size"],
                 seq_len: int = _DEFAULTS["seq_len"], seed: int = _DEFAULTS["seed"],
                 rank: int = 0, world_size: int = 1):
        check_positive("batch_size", batch_size)
        check_positive("seq_len", seq_len)
        _check_shard(rank, world_size)
        if corpus.num_tokens < seq_len + 1:
            raise DataError(f"the corpus has {corpus.num_tokens} tokens, fewer than one window "
                            f"of seq_len + 1 = {seq_len + 1}; use a smaller --seq-len")
        self.corpus, self.batch_size, self.seq_len, self.seed = corpus, batch_size, seq_len, seed
        self.rank, self.world_size = rank, world_size
        self._span = torch.arange(seq_len + 1)

    def batch(self, step: int) -> Batch:
        """``(inputs, targets)``, each ``(batch_size, seq_len)``, for ``step``."""
        high = self.corpus.num_tokens - self.seq_len
        # Rank 0 keeps the unsalted single-process stream; other ranks salt it.
        salt = (step,) if self.rank == 0 else (step, self.rank)
        starts = torch.randint(high, (self.batch_size,), generator=_generator(self.seed, *salt))
        positions = starts[:, None] + self._span  # (batch, 1) + (seq_len + 1,) -> (batch, seq_len + 1)
        return shift_targets(self.corpus.ids[positions].long())

    def eval_batches(self) -> Iterator[Batch]:
        """Consecutive windows covering every target token exactly once."""
        ids, n, step = self.corpus.ids, self.corpus.num_tokens, self.seq_len
        starts = list(range(0, n - 1, step))
        for i in range(0, len(starts), self.batch_size):
            chunk = [ids[s:s + step + 1] for s in starts[i:i + self.batch_size]]
            yield shift_targets(pad_sequences(chunk))


class RecordBatches:
    """Whole records, padded per batch, reshuffled every epoch.

    In a distributed run the ranks share each epoch's order and take turns:
    at ``step`` rank ``r`` takes batch ``step * world_size + r`` of the
    sequence of epochs, so together they go through the records once per
    epoch, as one process does (``world_size=1`` is the single-process order).
    """

    def __init__(self, corpus: EncodedCorpus, batch_size: int = _DEFAULTS["batch_size"],
                 max_len: int | None = _DEFAULTS["max_len"], seed: int = _DEFAULTS["seed"],
                 shuffle: bool = True, rank: int = 0, world_size: int = 1):
        check_positive("batch_size", batch_size)
        _check_shard(rank, world_size)
        check_positive("max_len", max_len, none_allowed=True)
        self.corpus, self.batch_size, self.max_len = corpus, batch_size, max_len
        self.seed, self.shuffle = seed, shuffle
        self.rank, self.world_size = rank, world_size
        self._epoch, self._order = -1, torch.arange(len(corpus))

    @property
    def batches_per_epoch(self) -> int:
        """Rounded up: the last, smaller batch is used, not dropped."""
        return -(-len(self.corpus) // self.batch_size)

    def _rows(self, indices: Iterable[int]) -> Batch:
        cut = None if self.max_len is None else self.max_len + 1  # +1: inputs and targets
        return shift_targets(pad_sequences([self.corpus.record(int(i)) for i in indices], max_len=cut))

    def batch(self, step: int) -> Batch:
        """The records of ``step``, padded to the longest, as ``(inputs, targets)``."""
        epoch, index = divmod(step * self.world_size + self.rank, self.batches_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = (torch.randperm(len(self.corpus), generator=_generator(self.seed, epoch))
                           if self.shuffle else torch.arange(len(self.corpus)))
        return self._rows(self._order[index * self.batch_size:(index + 1) * self.batch_size])

    def eval_batches(self) -> Iterator[Batch]:
        """Every record once, in order, ``batch_size`` at a time."""
        for i in range(0, len(self.corpus), self.batch_size):
            yield self._rows(range(i, min(i + self.batch_size, len(self.corpus))))


class LengthBatches:
    """Every record once for scoring, ``batch_size`` records of similar
    length at a time, the longest first.

    Padding a record to the longest of its batch costs as much as reading
    real text; with neighbours in length order little of it is left (about
    2% of the arXiv held-out split at 64 records a batch, against about half
    of it in file order). The batch that comes out short, the last, holds the
    shortest records, where a narrow batch costs least. The loss is a sum
    over records, so the order does not change it."""

    def __init__(self, corpus: EncodedCorpus, batch_size: int = _DEFAULTS["batch_size"]):
        check_positive("batch_size", batch_size)
        self.corpus, self.batch_size = corpus, batch_size

    def eval_batches(self) -> Iterator[Batch]:
        """``(inputs, targets)`` of each batch of records, longest first."""
        offsets = torch.as_tensor(self.corpus.offsets[:])  # [:]: a prepared corpus's offsets in one read
        order = torch.argsort(offsets[1:] - offsets[:-1], descending=True, stable=True)
        for i in range(0, len(order), self.batch_size):
            rows = [self.corpus.record(int(j)) for j in order[i:i + self.batch_size]]
            yield shift_targets(pad_sequences(rows))


def make_batches(corpus: EncodedCorpus, config: DataConfig, rank: int = 0, world_size: int = 1):
    """The batcher ``config.batching`` names, with the config's sizes and seed."""
    if config.batching == "records":
        return RecordBatches(corpus, config.batch_size, config.max_len, seed=config.seed,
                             rank=rank, world_size=world_size)
    return WindowBatches(corpus, config.batch_size, config.seq_len, seed=config.seed,
                         rank=rank, world_size=world_size)
