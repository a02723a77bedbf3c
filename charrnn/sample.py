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

import torch

from .model import state_to
from .vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, CharVocab

# Tokens the model may never produce: they are not text.
_NEVER_SAMPLED = (PAD_ID, BOS_ID, UNK_ID)
# Temperatures this small (0 included) cannot be divided by in float32: greedy.
_GREEDY_BELOW = torch.finfo(torch.float32).tiny


def check_sampling_args(temperature: float = 1.0, top_k: int | None = None,
                        top_p: float | None = None) -> None:
    """Raise ``ValueError`` with a clear message for impossible settings."""
    if not temperature >= 0:  # also catches NaN
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def next_char_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None) -> torch.Tensor:
    """Probabilities of the next token from logits ``(..., vocab)`` after the
    temperature, top-k and top-p rules. Temperature 0 puts all mass on the
    argmax. Special tokens other than ``<eos>`` get probability 0."""
    check_sampling_args(temperature, top_k, top_p)
    logits = logits.float().clone()
    logits[..., list(_NEVER_SAMPLED)] = -torch.inf
    if temperature < _GREEDY_BELOW:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    # Shift by the max first: the best logit becomes 0, so dividing by a tiny
    # temperature cannot overflow (it tends to greedy, as it should).
    logits = (logits - logits.max(-1, keepdim=True).values) / temperature
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


@torch.no_grad()
def generate_batch(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", n: int = 1,
                   max_new_chars: int = 200, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, seed: int | None = None,
                   stop_at_eos: bool = True) -> list[str]:
    """``n`` continuations of ``prefix``, generated together as one batch.

    Each returned string is the prefix followed by up to ``max_new_chars``
    generated characters, ending early at ``<eos>`` (the end of a record).
    An empty prefix starts a new record from ``<bos>``. ``seed`` makes the
    result repeatable.
    """
    check_sampling_args(temperature, top_k, top_p)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    if n < 0:
        raise ValueError(f"n (the number of samples) must be >= 0, got {n}")
    if max_new_chars < 0:
        raise ValueError(f"max_new_chars must be >= 0, got {max_new_chars}")
    if n == 0:
        return []
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else int(torch.randint(2 ** 62, ())))
    was_training = model.training
    model.eval()
    try:
        # Read the prefix once, for one sequence, then copy its state n times.
        ids = torch.tensor([vocab.encode(prefix, add_bos=True)], device=device)
        logits, state = model(ids)
        state = state_to(state, lambda s: s.repeat(1, n, 1))
        last = logits[:, -1].expand(n, -1)
        out = torch.full((n, max_new_chars), PAD_ID, dtype=torch.long, device=device)
        finished = torch.zeros(n, dtype=torch.bool, device=device)
        for t in range(max_new_chars):
            probs = next_char_probs(last, temperature, top_k, top_p)
            if temperature < _GREEDY_BELOW:
                nxt = probs.argmax(-1)
            else:
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = nxt.masked_fill(finished, PAD_ID)
            out[:, t] = nxt
            if stop_at_eos:
                finished |= nxt == EOS_ID
                if bool(finished.all()):
                    break
            logits, state = model(nxt[:, None], state)
            last = logits[:, -1]
    finally:
        model.train(was_training)
    texts = []
    for row in out.tolist():
        if stop_at_eos and EOS_ID in row:
            row = row[:row.index(EOS_ID)]
        texts.append(prefix + vocab.decode(row))
    return texts


def generate(model: torch.nn.Module, vocab: CharVocab, prefix: str = "", max_new_chars: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, stop_at_eos: bool = True) -> str:
    """One continuation of ``prefix`` (see :func:`generate_batch`)."""
    return generate_batch(model, vocab, prefix, 1, max_new_chars, temperature, top_k, top_p,
                          seed, stop_at_eos)[0]
