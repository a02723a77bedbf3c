"""Generating text: greedy, temperature, top-k, top-p and min-p sampling.

The logits for the next character are turned into probabilities with the
temperature softmax::

    p_i = exp(l_i / tau) / sum_j exp(l_j / tau)

A small ``tau`` sharpens the distribution towards the most likely character
(``tau = 0`` *is* greedy: always the argmax); ``tau = 1`` samples from the
model as trained; a large ``tau`` flattens it towards uniform. Top-k keeps
only the k most likely characters, top-p the smallest set whose probability
adds up to p, min-p those at least min_p times as likely as the most likely.

A :class:`SamplingRule` holds these settings and turns logits into
probabilities; each rule is also a function of its own here
(:func:`temperature_probs`, :func:`top_p_filter`, ...), which the notebooks'
exercises are checked against.

The prefix is read once; after that each step feeds only the newest character
and carries the recurrent state, so n characters cost O(n) model steps (the
origin notebook re-read the whole text every step: O(n^2)). Many samples are
generated together as one batch. The whole loop is
:func:`_generation_loop`; the helpers below it are the speed tricks it uses,
each with the reason it exists.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from .config import SavedAsDict, check_seed
from .errors import ConfigError, ModelError
from .model import in_eval_mode, map_state
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
# The limits of one call (and of one `sample` command): a mistyped size fails
# at once instead of running for hours. With the pretrained LSTM a CPU writes
# about 1,000 characters a second, so the largest call takes about 20 minutes;
# every step holds n x vocabulary probabilities and n recurrent states.
MAX_SAMPLES = 1_000
MAX_NEW_CHARS = 100_000
MAX_GENERATED_CHARS = 1_000_000


@dataclass(frozen=True)
class SamplingRule(SavedAsDict):
    """How the next character is chosen from the model's scores (logits).

    The rules apply in this order: the temperature reshapes the scores, top-k
    keeps the k best, the softmax turns them into probabilities, top-p keeps
    the most likely characters until their mass reaches p, and min-p drops
    every character less likely than ``min_p`` times the most likely one.
    ``None`` switches a filter off. The one place the settings are checked:
    an impossible one raises :class:`~charrnn.errors.ConfigError` when the
    rule is made, before any text is generated. Each field's help is the
    ``sample`` command's flag for it (``--top-p``), as for the configs.
    """

    temperature: float = field(default=1.0, metadata={
        "help": "a finite number >= 0 the logits are divided by: below 1 safer, above 1 wilder, 0 greedy"})
    top_k: int | None = field(default=None, metadata={
        "help": "draw only from the k likeliest characters"})
    top_p: float | None = field(default=None, metadata={
        "help": "draw only from the likeliest characters whose probabilities add up to p (nucleus sampling)"})
    min_p: float | None = field(default=None, metadata={
        "help": "draw only from the characters at least min_p times as likely as the likeliest one"})

    def __post_init__(self) -> None:
        t, k, p, m = self.temperature, self.top_k, self.top_p, self.min_p
        if not t >= 0:  # also catches NaN
            raise ConfigError(f"temperature must be >= 0 (0 means greedy), got {t}")
        if not math.isfinite(t):
            raise ConfigError(f"temperature must be a finite number (0 means greedy, a large one is close to "
                              f"uniform), got {t}")
        if k is not None and (not isinstance(k, numbers.Integral) or isinstance(k, bool)):
            raise ConfigError(f"top_k must be a whole number, got {k!r}")
        if k is not None and k < 1:
            raise ConfigError(f"top_k must be at least 1, got {k}")
        if p is not None and not 0 < p <= 1:  # also catches NaN
            raise ConfigError(f"top_p must be in (0, 1], got {p}")
        if m is not None and not 0 <= m <= 1:  # also catches NaN
            raise ConfigError(f"min_p must be in [0, 1], got {m}")

    @property
    def greedy(self) -> bool:
        """Temperature 0 (or one too small to divide by in float32): always the argmax."""
        return self.temperature < _GREEDY_BELOW

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities of the next token from logits ``(..., vocab)``.
        Special tokens other than ``<eos>`` get probability 0: they are not text."""
        logits = _without_special_tokens(logits)
        if self.greedy:
            return _one_hot_argmax(logits)
        logits = scale_by_temperature(logits, self.temperature)
        if self.top_k is not None:
            logits = top_k_logits(logits, self.top_k)
        probs = torch.softmax(logits, dim=-1)
        if self.top_p is not None:
            probs = top_p_filter(probs, self.top_p)
        if self.min_p is not None:
            probs = min_p_filter(probs, self.min_p)
        return probs


# ------------------------------------------------------------- the rules, one by one
# The references the notebooks' exercises are checked against
# (charrnn.course.checks): each is the formula of the notebook, as used here.
def scale_by_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``, computed so that it cannot overflow.

    Shifting by the max first makes the best logit 0, so a tiny temperature
    sends the others to -inf (greedy in the limit, as it should) instead of
    overflowing; the softmax does not change under a shift. A temperature
    above float32's largest number is capped there. At 1 nothing is done,
    which keeps the result bit for bit what the softmax alone gives."""
    if temperature == 1.0:
        return logits
    return (logits - logits.max(-1, keepdim=True).values) / min(temperature, _FLOAT32_MAX)


def temperature_probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The temperature softmax ``p_i = exp(l_i / tau) / sum_j exp(l_j / tau)``
    over the last dimension; ``tau = 0`` is its limit, a one-hot vector at the
    argmax (NB05, exercise 1)."""
    if temperature < _GREEDY_BELOW:
        return _one_hot_argmax(logits)
    return torch.softmax(scale_by_temperature(logits, temperature), dim=-1)


def top_k_logits(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits with all but the ``k`` largest of each row set to -inf (ties with
    the k-th are kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -torch.inf)


def top_p_filter(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering (NB05, exercise 2): keep the smallest set of most
    likely tokens whose probabilities add up to at least ``p``, set the rest
    to 0 and renormalise. A token is kept while the mass of the tokens more
    likely than it is still below ``p``."""
    if p >= 1:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    drop_sorted = (sorted_probs.cumsum(-1) - sorted_probs) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    kept = probs.masked_fill(drop, 0.0)
    return kept / kept.sum(-1, keepdim=True)


def min_p_filter(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """Min-p filtering: keep the tokens whose probability is at least
    ``min_p`` times the largest one's, set the rest to 0 and renormalise.
    Where the model is sure, the bar is high and few tokens pass; where it
    hesitates, the bar drops and many do."""
    kept = probs.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), 0.0)
    return kept / kept.sum(-1, keepdim=True)


def _one_hot_argmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()


def _without_special_tokens(logits: torch.Tensor) -> torch.Tensor:
    """float32 logits with ``<pad>``, ``<bos>`` and ``<unk>`` at -inf. One
    masked_fill with a cached mask: this runs once per generated character,
    where indexing with a Python list (a new index tensor every call) cost
    more than the softmax."""
    never = _never_sampled_mask(logits.shape[-1], logits.device)
    return logits.float().masked_fill(never, -torch.inf)


def next_char_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, min_p: float | None = None) -> torch.Tensor:
    """Probabilities of the next token from logits ``(..., vocab)`` under the
    :class:`SamplingRule` with these settings."""
    return SamplingRule(temperature, top_k, top_p, min_p).probs(logits)


def check_sample_size(n: int, max_new_chars: int) -> None:
    """Raise :class:`~charrnn.errors.ConfigError` for a number of samples or a
    length that is not a whole number >= 0, or beyond :data:`MAX_SAMPLES`,
    :data:`MAX_NEW_CHARS` or :data:`MAX_GENERATED_CHARS`, saying how to go
    further. The one home of these limits: the library and the CLI both ask here."""
    for name, value in (("n (the number of samples)", n), ("max_new_chars (the length)", max_new_chars)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    if max_new_chars > MAX_NEW_CHARS:
        raise ConfigError(f"a length of {max_new_chars:,} is more than {MAX_NEW_CHARS:,} characters per sample; "
                          "for a longer text, continue with the end of this one as the prefix")
    if n > MAX_SAMPLES:
        raise ConfigError(f"n = {n:,} samples is more than {MAX_SAMPLES:,} at once; for more samples, "
                          "generate again with another seed")
    if n * max_new_chars > MAX_GENERATED_CHARS:
        raise ConfigError(f"n x length = {n:,} x {max_new_chars:,} = {n * max_new_chars:,} characters is more "
                          f"than {MAX_GENERATED_CHARS:,} at once; lower one of them, and generate again with "
                          "another seed for more")


@lru_cache(maxsize=16)
def _never_sampled_mask(vocab_size: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(vocab_size,)`` mask of the tokens that may never be produced."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[list(_NEVER_SAMPLED)] = True
    return mask.to(device)


# ------------------------------------------------------------------ generation
def generate(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", max_new_chars: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, stop_at_eos: bool = True, min_p: float | None = None) -> str:
    """One continuation of ``prefix`` (see :func:`generate_batch`)."""
    pieces = stream_batch(model, vocab, prefix, 1, max_new_chars, temperature, top_k, top_p, seed, stop_at_eos,
                          min_p)
    return "".join(piece for (piece,) in pieces)


def generate_batch(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", n: int = 1,
                   max_new_chars: int = 200, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, seed: int | None = None,
                   stop_at_eos: bool = True, min_p: float | None = None) -> list[str]:
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
    pieces = stream_batch(model, vocab, prefix, n, max_new_chars, temperature, top_k, top_p, seed, stop_at_eos,
                          min_p)
    return ["".join(parts) for parts in zip(*pieces, strict=True)] if n else []


def stream_batch(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", n: int = 1,
                 max_new_chars: int = 200, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None,
                 stop_at_eos: bool = True, min_p: float | None = None) -> Iterator[list[str]]:
    """The samples of :func:`generate_batch` (same arguments, same text) as
    they are written: lists of ``n`` pieces, one per sample, the first
    starting with the prefix. A long text can be shown, or saved, while it
    grows, and an interrupted run keeps what it wrote. The arguments are
    checked at once (not when the first piece is asked for); the model stays
    in evaluation mode until the last piece has been read (or the iterator
    is closed)."""
    rule = SamplingRule(temperature, top_k, top_p, min_p)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    check_sample_size(n, max_new_chars)
    unknown = vocab.unknown_chars(prefix)
    if unknown:
        warnings.warn(f"{len(unknown)} character(s) of the prefix not in the vocabulary were read as "
                      f"{UNK}: {', '.join(repr(c) for c in unknown[:10])}", stacklevel=_first_caller_outside())
    if seed is None:
        seed = int(torch.randint(2 ** 62, ()))
    check_seed(seed)
    if n == 0:
        return iter(())
    return _generation_loop(model, vocab, prefix, n, max_new_chars, rule, seed, stop_at_eos)


def _generation_loop(model: torch.nn.Module, vocab: CharVocab, prefix: str, n: int, max_new_chars: int,
                     rule: SamplingRule, seed: int, stop_at_eos: bool) -> Iterator[list[str]]:
    """The loop: read the prefix once, then one character per step for all
    ``n`` rows, feeding each back with the carried state (O(n) steps, not
    O(n^2) re-reading). Every ``_BLOCK`` steps the new ids become text and
    are handed out; a row stops at its ``<eos>`` and the loop when all have."""
    with in_eval_mode(model) as device:
        uniforms = _uniforms(n, max_new_chars, torch.Generator(device=device).manual_seed(seed), device)
        finished = torch.zeros((n, 1), dtype=torch.bool, device=device)
        with _generating(device):
            logits, state = model(torch.tensor([vocab.encode(prefix, add_bos=True)], device=device))
            state = map_state(state, lambda s: s.repeat(1, n, 1))  # (layers, 1, H) -> (layers, n, H)
            last = logits[:, -1].expand(n, -1)                    # (1, vocab) -> (n, vocab)
        head, steps_left, done = prefix, max_new_chars, False
        while steps_left > 0 and not done:
            columns = []
            with _generating(device):  # never across a yield: see _generating
                for _ in range(min(_BLOCK, steps_left)):
                    probs = rule.probs(last)                                               # (n, vocab)
                    if rule.greedy:
                        nxt = probs.argmax(-1, keepdim=True)                               # (n, 1)
                    else:
                        nxt = _inverse_cdf_sample(probs, next(uniforms))                   # (n, 1)
                    if stop_at_eos:
                        nxt = nxt.masked_fill(finished, PAD_ID)  # finished rows produce padding
                        finished |= nxt == EOS_ID
                    columns.append(nxt)                                                    # (n, 1)
                    done = _all_finished(probs, last, finished if stop_at_eos else None,
                                         max_new_chars - steps_left + len(columns) - 1)
                    if done:
                        break
                    logits, state = model(nxt, state)                                      # (n, 1, vocab)
                    last = logits[:, -1]                                                   # (n, vocab)
            steps_left -= len(columns)
            yield [head + text for text in _decode_rows(vocab, torch.cat(columns, 1).cpu(), stop_at_eos)]
            head = ""
    if max_new_chars == 0:  # nothing generated: the prefix alone
        yield [prefix] * n


# ------------------------------------------------------- what the loop relies on
def _uniforms(n: int, steps: int, generator: torch.Generator, device: torch.device,
              block: int = _BLOCK) -> Iterator[torch.Tensor]:
    """``steps`` columns of ``n`` uniform numbers in (0, 1], each ``(n, 1)``,
    drawn ``block`` steps at a time: one call per block instead of two small
    tensor operations per generated character."""
    for start in range(0, steps, block):
        shape = (min(block, steps - start), n, 1)
        yield from (1.0 - torch.rand(shape, generator=generator, device=device)).unbind(0)


def _inverse_cdf_sample(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
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


def _all_finished(probs: torch.Tensor, logits: torch.Tensor, finished: torch.Tensor | None, step: int) -> bool:
    """Whether every row has ended; raises if the logits were not finite.

    One number is read back from the device per step, because waiting for
    the device costs more than the arithmetic: every row of ``probs`` adds
    up to 1, so all of them to n, and nan anywhere in the logits, +inf, or
    no logit above -inf makes that sum nan (a -inf logit alone is fine: that
    character is never drawn); 1 is added once every row has ended."""
    n = probs.shape[0]
    health = probs.sum() + logits.amax() * 0
    if finished is not None:
        health = health + finished.all()
    health = float(health)
    if not math.isfinite(health):
        raise _bad_logits(logits, step)
    return health > n + 0.5


def _decode_rows(vocab: CharVocab, ids: torch.Tensor, stop_at_eos: bool) -> list[str]:
    """``(n, steps)`` ids as ``n`` strings, each cut at its ``<eos>`` (the
    padding a finished row produces decodes to "")."""
    texts = []
    for row in ids.tolist():
        if stop_at_eos and EOS_ID in row:
            row = row[:row.index(EOS_ID)]
        texts.append(vocab.decode(row))
    return texts


def _first_caller_outside() -> int:
    """The ``stacklevel`` that makes a warning name the first line outside
    this module (the user's call of generate, generate_batch or stream_batch)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


@contextmanager
def _generating(device: torch.device) -> Iterator[None]:
    """What a block of generation runs under: no gradients and, on the CPU,
    the one-token settings of :func:`_one_token_steps_on_cpu` and inference
    mode, which also skips autograd's bookkeeping (a fifth of each step's
    time for a small model; nothing computed here leaves as a tensor). Not
    on a GPU: there ``nn.LSTM`` may re-pack its weights for cuDNN inside a
    forward call, and weights re-packed in inference mode could no longer be
    trained. Entered per block, never across a ``yield``: a generator that
    yielded inside it would leave these thread-wide settings on in the
    caller's code between pieces (no gradients for a training step run
    there, for one)."""
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
