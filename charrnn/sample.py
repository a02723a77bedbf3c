"""Generating text: greedy, temperature, top-k and top-p sampling.

The logits for the next character are turned into probabilities with the
temperature softmax::

    p_i = exp(l_i / tau) / sum_j exp(l_j / tau)

A small ``tau`` sharpens the distribution towards the most likely character
(``tau = 0`` *is* greedy: always the argmax); ``tau = 1`` samples from the
model as trained; a large ``tau`` flattens it towards uniform. Top-k keeps
only the k most likely characters, top-p the smallest set whose probability
adds up to p.

The prefix is read once; after that each step feeds only the newest character
and carries the recurrent state, so n characters cost O(n) model steps (the
origin notebook re-read the whole text every step: O(n^2)). Many samples are
generated together as one batch.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch

from .config import MAX_SEED, is_seed
from .errors import ConfigError, ModelError
from .model import in_eval_mode, state_to
from .vocab import BOS_ID, EOS_ID, PAD_ID, UNK, UNK_ID, CharVocab

# Tokens the model may never produce: they are not text.
_NEVER_SAMPLED = (PAD_ID, BOS_ID, UNK_ID)
# Temperatures this small (0 included) cannot be divided by in float32: greedy.
_GREEDY_BELOW = torch.finfo(torch.float32).tiny
# A larger temperature would become inf in float32 (and -inf / inf is nan);
# dividing by this one already gives the uniform distribution it tends to.
_FLOAT32_MAX = torch.finfo(torch.float32).max
# Steps per block: of uniform numbers drawn at once, and of ids turned into text.
_BLOCK = 256
# One call generates at most this many samples (a batch: every step holds
# n x vocabulary probabilities and n recurrent states) and this many
# characters in all (n x max_new_chars, the worst case: hours of CPU time
# with the pretrained LSTM, at about a millisecond per character).
MAX_SAMPLES = 10_000
MAX_GENERATED_CHARS = 10_000_000


def check_sampling_args(temperature: float = 1.0, top_k: int | None = None,
                        top_p: float | None = None) -> None:
    """Raise :class:`~charrnn.errors.ConfigError` (a ``ValueError``) with a
    clear message for impossible settings."""
    if not temperature >= 0:  # also catches NaN
        raise ConfigError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if not math.isfinite(temperature):
        raise ConfigError(f"temperature must be a finite number (0 means greedy, a large one is close to "
                          f"uniform), got {temperature}")
    if top_k is not None and (not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool)):
        raise ConfigError(f"top_k must be a whole number, got {top_k!r}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:  # also catches NaN
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def check_seed(seed) -> None:
    """Raise :class:`~charrnn.errors.ConfigError` for a seed torch's generator
    cannot take (it needs 0 to 2**63 - 1; a larger one fails deep inside with
    "Overflow when unpacking long long")."""
    if not is_seed(seed):
        raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED} (2**63 - 1), got {seed!r}")


def check_sample_size(n: int, max_new_chars: int) -> None:
    """Raise :class:`~charrnn.errors.ConfigError` for a number of samples or a
    length that is not a whole number >= 0, or a call so large that it would
    run for days or exhaust memory: a mistyped size should fail at once."""
    for name, value in (("n (the number of samples)", n), ("max_new_chars", max_new_chars)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    if n > MAX_SAMPLES:
        raise ConfigError(f"n = {n:,} samples is more than {MAX_SAMPLES:,} in one batch; for more samples "
                          "make several calls, each with its own seed")
    if n * max_new_chars > MAX_GENERATED_CHARS:
        raise ConfigError(f"n x max_new_chars = {n:,} x {max_new_chars:,} = {n * max_new_chars:,} characters is "
                          f"more than {MAX_GENERATED_CHARS:,} in one call (hours of computing); split the work "
                          "into several calls (another seed each, or the end of one text as the next prefix)")


@lru_cache(maxsize=16)
def _never_sampled_mask(vocab_size: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(vocab_size,)`` mask of the tokens that may never be produced."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[list(_NEVER_SAMPLED)] = True
    return mask.to(device)


def _uniforms(n: int, steps: int, generator: torch.Generator, device: torch.device,
              block: int = 256) -> Iterator[torch.Tensor]:
    """``steps`` columns of ``n`` uniform numbers in (0, 1], each ``(n, 1)``,
    drawn ``block`` steps at a time: one call per block instead of two small
    tensor operations per generated character."""
    for start in range(0, steps, block):
        shape = (min(block, steps - start), n, 1)
        yield from (1.0 - torch.rand(shape, generator=generator, device=device)).unbind(0)


def _sample(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One token per row of ``probs`` ``(n, vocab)``, as ``(n, 1)`` ids, from
    the uniform numbers ``u`` ``(n, 1)`` in (0, 1].

    Inverse-CDF sampling: each row's ``u`` is located in its cumulative
    probabilities. ``torch.multinomial`` draws one random number per
    vocabulary entry per row instead (the argmax of p / E with E
    exponential), which for a batch of 64 samples took longer than the
    model's step. The chosen token ``i`` has ``cdf[i-1] < u * total <=
    cdf[i]``, so a token of probability 0 is never chosen.
    """
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:])


def next_char_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None) -> torch.Tensor:
    """Probabilities of the next token from logits ``(..., vocab)`` after the
    temperature, top-k and top-p rules. Temperature 0 puts all mass on the
    argmax. Special tokens other than ``<eos>`` get probability 0."""
    check_sampling_args(temperature, top_k, top_p)
    # One masked_fill with a cached mask: this runs once per generated
    # character, where copying the logits and indexing them with a Python
    # list (a new index tensor every call) cost more than the softmax.
    never = _never_sampled_mask(logits.shape[-1], logits.device)
    logits = logits.float().masked_fill(never, -torch.inf)
    if temperature < _GREEDY_BELOW:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    if temperature != 1.0:
        # Shift by the max first: the best logit becomes 0, so dividing by a
        # tiny temperature cannot overflow (it tends to greedy, as it should).
        # At temperature 1 there is nothing to divide, and softmax already
        # subtracts the max: the result is the same, bit for bit.
        logits = (logits - logits.max(-1, keepdim=True).values) / min(temperature, _FLOAT32_MAX)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep a token while the mass before it is still below top_p.
        drop_sorted = (sorted_probs.cumsum(-1) - sorted_probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def generate_batch(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", n: int = 1,
                   max_new_chars: int = 200, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, seed: int | None = None,
                   stop_at_eos: bool = True) -> list[str]:
    """``n`` continuations of ``prefix``, generated together as one batch.

    Each returned string is the prefix followed by up to ``max_new_chars``
    generated characters, ending early at ``<eos>`` (the end of a record).
    An empty prefix starts a new record from ``<bos>``. ``seed`` makes the
    result repeatable. Characters of the prefix that the vocabulary lacks
    are read as ``<unk>`` (with a warning naming them) and kept in the text.
    At most :data:`MAX_SAMPLES` samples and :data:`MAX_GENERATED_CHARS`
    characters (``n * max_new_chars``) per call; a model whose logits are
    not finite raises :class:`~charrnn.errors.ModelError`.
    """
    pieces = _stream(model, vocab, prefix, n, max_new_chars, (temperature, top_k, top_p), seed, stop_at_eos)
    return ["".join(parts) for parts in zip(*pieces, strict=True)] if n else []


def stream_batch(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", n: int = 1,
                 max_new_chars: int = 200, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None,
                 stop_at_eos: bool = True) -> Iterator[list[str]]:
    """The samples of :func:`generate_batch` (same arguments, same text) as
    they are written: lists of ``n`` pieces, one per sample, the first
    starting with the prefix. A long text can be shown, or saved, while it
    grows, and an interrupted run keeps what it wrote. The arguments are
    checked at once; the model stays in evaluation mode until the last
    piece has been read (or the iterator is closed)."""
    return _stream(model, vocab, prefix, n, max_new_chars, (temperature, top_k, top_p), seed, stop_at_eos)


def _stream(model: torch.nn.Module, vocab: CharVocab, prefix: str, n: int, max_new_chars: int,
            rule: tuple, seed: int | None, stop_at_eos: bool) -> Iterator[list[str]]:
    """Check everything, draw the seed, then return the (lazy) generator."""
    check_sampling_args(*rule)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    check_sample_size(n, max_new_chars)
    if n == 0:
        return iter(())
    unknown = vocab.unknown_chars(prefix)
    if unknown:  # stacklevel 3: the caller of generate_batch or stream_batch
        warnings.warn(f"{len(unknown)} character(s) of the prefix not in the vocabulary were read as "
                      f"{UNK}: {', '.join(repr(c) for c in unknown[:10])}", stacklevel=3)
    if seed is None:
        seed = int(torch.randint(2 ** 62, ()))
    check_seed(seed)
    return _pieces(model, vocab, prefix, n, max_new_chars, rule, seed, stop_at_eos)


def _pieces(model: torch.nn.Module, vocab: CharVocab, prefix: str, n: int, max_new_chars: int,
            rule: tuple, seed: int, stop_at_eos: bool) -> Iterator[list[str]]:
    """Text, block by block: the ids of each block become ``n`` strings at
    once (about a byte per character), and a row stops at its ``<eos>``.

    The model stays in eval mode from the first block to the last
    (:func:`~charrnn.model.in_eval_mode`), but the thread-wide settings of
    :func:`_generating` are switched on only while a block is computed: a
    generator that yielded inside them would leave them on in the caller's
    code between pieces (no gradients for a training step run there, for
    one)."""
    first, started = prefix, False
    with in_eval_mode(model) as device:
        generator = torch.Generator(device=device).manual_seed(seed)
        blocks = _id_blocks(model, vocab.encode(prefix, add_bos=True), n, max_new_chars, rule,
                            generator, stop_at_eos)
        while True:
            with _generating(device):
                block = next(blocks, None)
            if block is None:
                break
            pieces = []
            for row in block.tolist():
                if stop_at_eos and EOS_ID in row:
                    row = row[:row.index(EOS_ID)]  # later blocks of this row are all <pad>: ""
                pieces.append(first + vocab.decode(row))
            first, started = "", True
            yield pieces
    if not started:  # nothing generated (max_new_chars 0): the prefix alone
        yield [prefix] * n


@contextmanager
def _generating(device: torch.device) -> Iterator[None]:
    """What a block of generation runs under: no gradients and, on the CPU,
    the one-token settings of :func:`_one_token_steps_on_cpu` and inference
    mode, which also skips autograd's bookkeeping (a fifth of each step's
    time for a small model; nothing computed here leaves as a tensor). Not
    on a GPU: there ``nn.LSTM`` may re-pack its weights for cuDNN inside a
    forward call, and weights re-packed in inference mode could no longer be
    trained."""
    if device.type != "cpu":
        with torch.no_grad():
            yield
        return
    with torch.inference_mode(), _one_token_steps_on_cpu():
        yield


@contextmanager
def _one_token_steps_on_cpu() -> Iterator[None]:
    """Without oneDNN for the block. Generation feeds one character per step,
    and for such tiny inputs PyTorch's oneDNN path of ``nn.LSTM``/``nn.GRU``
    costs far more than the arithmetic: the pretrained LSTM writes text about
    7x faster on a CPU without it, the same text to the last character."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def _bad_logits(logits: torch.Tensor, step: int) -> ModelError:
    """The error for nan logits, or +inf ones, or none above -inf: a token
    drawn from them is garbage (and may be an id past the vocabulary, which
    the model cannot read back), so generation stops before one is kept or
    fed back."""
    kind = "nan" if bool(torch.isnan(logits).any()) else "infinite"
    return ModelError(f"the model produced {kind} logits at generation step {step}: its weights are not finite "
                      "(or too large); no text could be sampled. Load a checkpoint saved before training "
                      "diverged, or train again with a lower learning rate")


def _id_blocks(model: torch.nn.Module, prefix_ids: list[int], n: int, max_new_chars: int,
               rule: tuple, generator: torch.Generator, stop_at_eos: bool) -> Iterator[torch.Tensor]:
    """The generation loop: ``(n, <= _BLOCK)`` new ids after ``prefix_ids``,
    one block at a time, on the CPU; ``rule`` is ``(temperature, top_k,
    top_p)``. Rows that reached ``<eos>`` produce ``<pad>`` until all have
    (then the loop stops). Memory does not grow with the length: only the
    current block's columns are kept."""
    device = generator.device
    # Read the prefix once, for one sequence, then copy its state n times.
    logits, state = model(torch.tensor([prefix_ids], device=device))  # (1, prefix, vocab)
    state = state_to(state, lambda s: s.repeat(1, n, 1))               # (layers, 1, H) -> (layers, n, H)
    last = logits[:, -1].expand(n, -1)                                  # (1, vocab) -> (n, vocab)
    # Each step costs a handful of small tensor operations, so the loop
    # keeps to as few as it can, and to one wait for the device: whether
    # the logits were finite and all rows have ended are read together.
    # A token drawn from bad logits is dropped before it is kept or fed back.
    columns: list[torch.Tensor] = []
    finished = torch.zeros((n, 1), dtype=torch.bool, device=device)
    uniforms = _uniforms(n, max_new_chars, generator, device, _BLOCK)
    greedy = rule[0] < _GREEDY_BELOW
    for step in range(max_new_chars):
        probs = next_char_probs(last, *rule)                            # (n, vocab)
        nxt = probs.argmax(-1, keepdim=True) if greedy else _sample(probs, next(uniforms))  # (n, 1)
        if stop_at_eos:
            nxt = nxt.masked_fill(finished, PAD_ID)  # finished rows produce padding
            finished |= nxt == EOS_ID
        # One number read back per step. Each row of probabilities adds up
        # to 1, so all of them to n, and nan anywhere in the logits, +inf, or
        # no logit above -inf makes that sum nan (a -inf logit alone is fine:
        # that character is never drawn); 1 is added once every row has ended.
        health = probs.sum() + last.amax() * 0
        if stop_at_eos:
            health = health + finished.all()
        health = float(health)
        if not math.isfinite(health):
            raise _bad_logits(last, step)
        done = health > n + 0.5
        columns.append(nxt)
        if done or len(columns) == _BLOCK:
            yield torch.cat(columns, 1).cpu()                           # (n, block)
            columns = []
        if done:
            return
        logits, state = model(nxt, state)                               # (n, 1, vocab)
        last = logits[:, -1]                                            # (n, vocab)
    if columns:
        yield torch.cat(columns, 1).cpu()


def generate(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", max_new_chars: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, stop_at_eos: bool = True) -> str:
    """One continuation of ``prefix`` (see :func:`generate_batch`)."""
    return generate_batch(model, vocab, prefix, 1, max_new_chars, temperature, top_k, top_p,
                          seed, stop_at_eos)[0]
