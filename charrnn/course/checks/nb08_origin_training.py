"""Notebook 08's exercises, three bugs of the origin notebook fixed by the
student: ``clip_gradients`` (a global-norm clipping at a threshold the
gradients reach, not ``1e5``; checked against
:func:`torch.nn.utils.clip_grad_norm_`, the clipping of
:func:`charrnn.training.train_step`), ``epoch_mean`` (the loss per character
of an epoch whose last batch is smaller; checked against
:func:`charrnn.evaluate`) and ``greedy_carrying_state`` (greedy generation
that reads each character once; checked against :func:`charrnn.generate`,
counting the tokens the model is fed)."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable

import torch

from ...batches import EncodedCorpus, RecordBatches, WindowBatches
from ...data import load_texts
from ...metrics import evaluate, masked_cross_entropy
from ...model import CharRNN
from ...pretrained import load_pretrained
from ...sample import generate
from ...vocab import PAD_ID, CharVocab
from .common import ExerciseError, _call, _changed_in_place, _keeps_random_state

__all__ = ["check_clip_gradients", "check_epoch_mean", "check_greedy_carrying_state"]


# ------------------------------------------------------------------ clipping
def _origin_gradients() -> list[list[torch.Tensor]]:
    """The gradients of the origin notebook's small RNN (embedding 30, hidden
    43), untrained, on three batches of 64 windows of 100 characters of the
    embedded corpus: what an ordinary step of that model sees."""
    texts = load_texts()
    vocab = CharVocab.from_texts(texts)
    torch.manual_seed(0)
    model = CharRNN(vocab_size=len(vocab), cell="rnn", embed_dim=30, hidden_size=43)
    batches = WindowBatches(EncodedCorpus.from_texts(texts, vocab), batch_size=64, seq_len=100, seed=0)
    found = []
    for step in range(3):
        model.zero_grad()
        inputs, targets = batches.batch(step)
        masked_cross_entropy(model(inputs)[0], targets).backward()
        found.append([p.grad.clone() for p in model.parameters()])
    return found


def _norm(grads: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))


def _reference_clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params]


def _clip_hint(got: list[torch.Tensor], grads: list[torch.Tensor]) -> str:
    """Name the usual mistake from the lengths and the direction of the result."""
    flat_in = torch.cat([g.flatten() for g in grads]).double()
    flat_out = torch.cat([g.flatten() for g in got]).double()
    cosine = float(flat_in @ flat_out / (flat_in.norm() * flat_out.norm()).clamp_min(1e-30))
    if cosine < 1 - 1e-5:
        per_tensor = any(_norm([g]) < _norm([o]) * (1 - 1e-4) or _norm([g]) > _norm([o]) * (1 + 1e-4)
                         for g, o in zip(grads, got, strict=True))
        return ("\nHint: the result points in another direction than the gradient. Clipping shortens the whole "
                "gradient, all the tensors together, by one factor: "
                + ("was each tensor clipped on its own, or each number cut off at the threshold?" if per_tensor else
                   "is every number multiplied by the same factor?"))
    return ""


@_keeps_random_state
def check_clip_gradients(clip_gradients: Callable[[list[torch.Tensor]], list[torch.Tensor]]) -> None:
    """Check ``clip_gradients(grads) -> clipped`` on the gradients of the
    origin notebook's small RNN: an ordinary step (three batches, norms
    about 0.5) must pass unchanged, and a spike (10 and 1000 times such a
    gradient) must come back in the same direction, shortened to the
    threshold the student chose, as the library's global-norm clipping
    would. So the threshold lies above the ordinary norms and below the
    spikes: one the gradients reach. The given tensors must be left as they
    were."""
    ordinary = _origin_gradients()
    spikes = [[1000 * g for g in ordinary[0]], [10 * g for g in ordinary[1]]]
    threshold = None
    for index, grads in enumerate(spikes + ordinary):
        norm_in = _norm(grads)
        kind = "a spike" if index < len(spikes) else "an ordinary gradient"
        given = [g.clone() for g in grads]
        call = f"clip_gradients({kind} of norm {norm_in:.3g})"
        got = _call("clip_gradients", clip_gradients, given, shown=f"{kind} of norm {norm_in:.3g}")
        if not isinstance(got, (list, tuple)) or len(got) != len(grads) or not all(
                isinstance(o, torch.Tensor) and o.shape == g.shape for o, g in zip(got, grads, strict=False)):
            raise ExerciseError(f"{call} returned {type(got).__name__}; expected a list of {len(grads)} tensors "
                                "shaped like the gradients it was given.")
        if any(not torch.equal(a, b) for a, b in zip(given, grads, strict=True)):
            raise _changed_in_place(call, "gradients", advice="return new tensors and leave the given ones as "
                                    "they were")
        got = [o.detach().float() for o in got]
        norm_out = _norm(got)
        if not math.isfinite(norm_out):
            raise ExerciseError(f"{call} returned values that are not finite (norm {norm_out}).")
        if threshold is None:  # the first spike: it shows the student's threshold, or that there is none
            if norm_out >= norm_in * (1 - 1e-4):
                raise ExerciseError(f"{call} came back with norm {norm_out:.3g}: the spike passed unchanged.\n"
                                    f"Hint: a threshold that the gradients never reach clips nothing, as 1e5 "
                                    f"did in the origin notebook. This model's ordinary gradients have a norm "
                                    f"of about {_norm(ordinary[0]):.2f}: where must the threshold lie to act on "
                                    "a spike and leave an ordinary step alone?")
            threshold = norm_out
        if kind == "an ordinary gradient" and norm_out < norm_in * (1 - 1e-4):
            raise ExerciseError(f"{call} came back with norm {norm_out:.4g}: your threshold of {threshold:.4g} is "
                                f"below this model's ordinary gradient norm ({norm_in:.3g})."
                                "\nHint: clipping would then act at every step, a smaller learning rate in disguise, "
                                "not a guard against spikes. Where must the threshold lie?")
        expected = _reference_clip(grads, threshold)
        if all(torch.allclose(o, e, rtol=1e-4, atol=1e-7) for o, e in zip(got, expected, strict=True)):
            continue
        hint = _clip_hint(got, grads)
        if not hint and kind == "an ordinary gradient" and norm_out > norm_in:
            hint = ("\nHint: clipping lengthened a gradient that was shorter than the threshold. It only ever "
                    "shortens a gradient that is too long.")
        elif not hint and norm_out > threshold * (1 + 1e-4):
            hint = (f"\nHint: the first spike came back with norm {threshold:.3g}, this one with {norm_out:.3g}. "
                    "Every gradient longer than the threshold is shortened to exactly the threshold.")
        elif not hint:
            hint = ("\nHint: a gradient longer than the threshold is multiplied by one factor, the threshold "
                    "divided by its norm (the norm of all the tensors together).")
        raise ExerciseError(f"{call} came back with norm {norm_out:.4g}; with your threshold of {threshold:.4g} "
                            f"it should have norm {_norm(expected):.4g}, in the same direction.{hint}")
    print(f"✓ clip_gradients is correct: {len(ordinary)} ordinary gradients pass unchanged, {len(spikes)} spikes "
          "are cut to the threshold")


# ------------------------------------------------------------------ averages
# (records of the embedded corpus, batch size): the last batch holds 2, 3 and 1 of them; the last case
# has equal batches.
_MEAN_CASES = ((18, 4), (13, 5), (15, 7), (12, 4))


def _batch_losses(records: int, batch_size: int) -> tuple[list[float], list[int], float]:
    """Per-batch mean losses and scored characters of a small untrained model
    over whole records (the starts of the embedded corpus's), and the loss
    per character of all of them (:func:`charrnn.evaluate`)."""
    texts = [text[:40 + 23 * (i % 4)] for i, text in enumerate(load_texts()[:records])]  # records of 40 to 109
    vocab = CharVocab.from_texts(texts)
    torch.manual_seed(records)
    model = CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=8, hidden_size=16).eval()
    with torch.no_grad():
        model.head.weight.mul_(8)  # confident and often wrong: losses that differ from batch to batch
    data = RecordBatches(EncodedCorpus.from_texts(texts, vocab), batch_size=batch_size, seed=0)
    losses, counts = [], []
    with torch.no_grad():
        for inputs, targets in data.eval_batches():
            losses.append(masked_cross_entropy(model(inputs)[0], targets).item())
            counts.append(int((targets != PAD_ID).sum()))
    return losses, counts, evaluate(model, data).nats


def _mean_hint(got: float, losses: list[float], counts: list[int]) -> str:
    weighted = sum(loss * n for loss, n in zip(losses, counts, strict=True))
    candidates = [
        (sum(losses) / (len(losses) - 1), f"you divided the sum of {len(losses)} batch losses by "
                                          f"{len(losses) - 1}: one batch fewer than were summed (the origin "
                                          "notebook's count, rounded down)."),
        (sum(losses) / len(losses), f"every batch counts the same, but the last one scored only {counts[-1]} "
                                    f"characters and the others about {counts[0]}. What is the epoch's loss per "
                                    "character?"),
        (weighted / len(losses), "the batch losses are weighted by their characters, but then divided by the "
                                 "number of batches. What does the weighted sum add up?"),
        (weighted, "that is a sum of losses, not a mean."),
    ]
    for value, hint in candidates:
        if math.isclose(got, value, rel_tol=1e-6):
            return "\nHint: " + hint
    return ""


@_keeps_random_state
def check_epoch_mean(epoch_mean: Callable[[list[float], list[int]], float]) -> None:
    """Check ``epoch_mean(losses, counts) -> float``: ``losses[i]`` is batch
    ``i``'s mean loss per scored character and ``counts[i]`` the number of
    characters it scored; the answer is the epoch's loss per character, as
    :func:`charrnn.evaluate` computes it over the same batches. The lists
    must be left as they were."""
    for records, batch_size in _MEAN_CASES:
        losses, counts, expected = _batch_losses(records, batch_size)
        given_losses, given_counts = list(losses), list(counts)
        call = f"epoch_mean(losses of {len(losses)} batches, counts {counts})"
        got = _call("epoch_mean", epoch_mean, given_losses, given_counts,
                    shown=f"losses of {len(losses)} batches, counts {counts}")
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, numbers.Real) or isinstance(got, bool):
            raise ExerciseError(f"{call} returned {got!r} ({type(got).__name__}); expected a number.")
        if given_losses != losses or given_counts != counts:
            raise _changed_in_place(call, "lists", advice="compute the mean without changing them")
        if not math.isclose(float(got), expected, rel_tol=1e-5):
            raise ExerciseError(f"{call} returned {float(got):.5f}, expected {expected:.5f} nats per character "
                                f"(losses {[round(x, 4) for x in losses]}){_mean_hint(float(got), losses, counts)}")
    print(f"✓ epoch_mean is correct: {len(_MEAN_CASES)} epochs agree with charrnn.evaluate")


# --------------------------------------------------------------- generation
class _Counting(torch.nn.Module):
    """A model that counts its calls and the tokens it is fed. It reads
    without oneDNN, as generation does, so one token at a time is fast and
    computes what :func:`charrnn.generate` computes."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.calls = self.tokens = 0

    def forward(self, x, state=None):
        self.calls += 1
        self.tokens += int(torch.as_tensor(x).numel())
        with warnings.catch_warnings():  # switching oneDNN off and on warns about Intel GPUs
            warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
            with torch.backends.mkldnn.flags(enabled=False):
                return self.model(x, state)


_SMALL_TEXT = "We study the spectral gap of random graphs ; Learning to learn."


def _greedy_models() -> list[tuple[str, torch.nn.Module, CharVocab]]:
    """The pretrained LSTM of notebook 05 (real text: what it writes depends
    on every character read) and a small untrained GRU."""
    pretrained, pre_vocab = load_pretrained()
    vocab = CharVocab.from_texts([_SMALL_TEXT])
    torch.manual_seed(3)
    small = CharRNN(vocab_size=len(vocab), cell="gru", embed_dim=16, hidden_size=32)
    return [("the pretrained LSTM", pretrained.eval(), pre_vocab), ("a small GRU", small.eval(), vocab)]


# (model, prompt, new characters): greedy choices that win by a clear margin at every step
_GREEDY_CASES = ((0, "learning", 16), (0, "Quantum", 10), (1, "", 12))


@_keeps_random_state
def check_greedy_carrying_state(greedy_carrying_state: Callable[..., str]) -> None:
    """Check ``greedy_carrying_state(model, vocab, prefix, n) -> str``: the
    prompt and ``n`` characters chosen greedily, as
    ``charrnn.generate(model, vocab, prefix, max_new_chars=n, temperature=0,
    stop_at_eos=False)`` writes them, and the model fed each token once:
    ``<bos>`` and the prompt, then one character per step (at most
    ``len(prefix) + 1 + n`` tokens, not the ``O(n^2)`` of re-reading)."""
    models = _greedy_models()
    for which, prefix, n in _GREEDY_CASES:
        name, model, vocab = models[which]
        expected = generate(model, vocab, prefix, max_new_chars=n, temperature=0, stop_at_eos=False)
        counting = _Counting(model)
        call = f"greedy_carrying_state({name}, its vocab, {prefix!r}, {n})"
        got = _call("greedy_carrying_state", greedy_carrying_state, counting, vocab, prefix, n,
                    shown=f"{name}, its vocab, {prefix!r}, {n}")
        if not isinstance(got, str):
            raise ExerciseError(f"{call} returned {type(got).__name__}; expected the text: the prompt and the "
                                "new characters, decoded with vocab.decode.")
        if got != expected:
            raise ExerciseError(f"{call} returned\n{got!r}\nexpected\n{expected!r}"
                                f"{_greedy_hint(got, expected, prefix)}")
        allowed = len(prefix) + 1 + n
        if counting.tokens > allowed:
            raise ExerciseError(f"{call} wrote the right text but fed the model {counting.tokens} tokens in "
                                f"{counting.calls} calls; carrying the state needs at most {allowed}: <bos> and "
                                f"the prompt once, then one character per step.\nHint: the state the model "
                                "returns already sums up everything it has read. What does the next step need "
                                "besides it?")
    print(f"✓ greedy_carrying_state is correct: {len(_GREEDY_CASES)} texts agree with charrnn.generate, each "
          "token read once")


def _greedy_hint(got: str, expected: str, prefix: str) -> str:
    if not got.startswith(prefix):
        return "\nHint: the text starts with the prompt, then the new characters."
    new_got, new_expected = got[len(prefix):], expected[len(prefix):]
    if not new_got[:1] or new_got[:1] != new_expected[:1]:
        return ("\nHint: the first new character already differs. Read the prompt as in training, after a "
                "<bos> and with nothing after it (bug 10), take the logits of its last position, and choose "
                "among the characters the model may write, as greedy_rereading does.")
    agree = next((i for i, (a, b) in enumerate(zip(new_got, new_expected, strict=False)) if a != b),
                 min(len(new_got), len(new_expected)))
    return (f"\nHint: the first {agree} new character(s) agree, then the texts part. Each step feeds one "
            "character: does the model know everything that came before it, the <bos>, the prompt and the "
            "characters already written? And is each character chosen as greedy_rereading chooses it?")
