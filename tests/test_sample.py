"""Generation: greedy, temperature, top-k, top-p, seeds, batching, state."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import FixedLogits, NextTokenTable
from torch import nn
from torch.testing import assert_close

from charrnn import CELLS, CharVocab, generate, generate_batch, next_char_probs
from charrnn.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEVER = [PAD_ID, BOS_ID, UNK_ID]


@pytest.fixture
def vocab():
    return CharVocab.from_texts(["abcdefghij"])  # ids 4..13 are a..j


@pytest.fixture
def model(make_model, vocab):
    """A small random LSTM that never ends a record, so samples are long."""
    model = make_model(len(vocab), "lstm", hidden=24, embed=8)
    with torch.no_grad():
        model.head.bias[EOS_ID] = -20.0
    return model.eval()


def fixed(vocab, char_logits: dict[str, float], default: float = -30.0, **special) -> FixedLogits:
    logits = torch.full((len(vocab),), default)
    for ch, value in char_logits.items():
        logits[vocab.stoi[ch]] = value
    for name, value in special.items():
        logits[{"pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID, "unk": UNK_ID}[name]] = value
    return FixedLogits(logits)


def greedy_by_recomputing(model, vocab, prefix: str, max_new_chars: int) -> str:
    """Reference greedy decoding: rerun the model over the whole text at
    every step and take the argmax among tokens that may be produced."""
    ids = vocab.encode(prefix, add_bos=True)
    out = []
    with torch.no_grad():
        for _ in range(max_new_chars):
            logits = model(torch.tensor([ids]))[0][0, -1].clone()
            logits[NEVER] = -math.inf
            nxt = int(logits.argmax())
            if nxt == EOS_ID:
                break
            out.append(nxt)
            ids.append(nxt)
    return prefix + vocab.decode(out)


# ------------------------------------------------------------------ greedy
@pytest.mark.parametrize("cell", CELLS)
def test_greedy_equals_argmax_stepping(make_model, vocab, cell):
    model = make_model(len(vocab), cell, hidden=24, embed=8).eval()
    with torch.no_grad():
        model.head.bias[EOS_ID] = -20.0
    expected = greedy_by_recomputing(model, vocab, "abc", 25)
    assert len(expected) == 3 + 25
    assert generate(model, vocab, "abc", 25, temperature=0) == expected


def test_greedy_is_deterministic_without_a_seed(model, vocab):
    runs = {generate(model, vocab, "fig", 30, temperature=0) for _ in range(3)}
    assert len(runs) == 1
    rows = generate_batch(model, vocab, "fig", n=4, max_new_chars=30, temperature=0)
    assert set(rows) == runs


@pytest.mark.parametrize("temperature", [1e-4, 1e-12])
def test_tiny_temperature_matches_greedy(model, vocab, temperature):
    greedy = generate(model, vocab, "be", 40, temperature=0)
    assert generate(model, vocab, "be", 40, temperature=temperature, seed=3) == greedy


def test_extremely_small_positive_temperature_matches_greedy(model, vocab):
    # Any temperature > 0 is accepted; as it goes to 0 sampling must become
    # greedy, not fail on inf/nan probabilities.
    greedy = generate(model, vocab, "be", 20, temperature=0)
    assert generate(model, vocab, "be", 20, temperature=1e-300, seed=3) == greedy


def test_greedy_probs_are_one_hot_on_the_allowed_argmax():
    logits = torch.tensor([[9.0, 8.0, 1.0, 7.0, 2.0, 3.0]])
    probs = next_char_probs(logits, temperature=0)
    assert probs.tolist() == [[0, 0, 0, 0, 0, 1]]  # pad/bos/unk are never chosen


# ---------------------------------------------------- temperature / top-k/p
def test_next_char_probs_is_the_temperature_softmax():
    logits = torch.randn(3, 10)
    for temperature in (0.5, 1.0, 2.0):
        probs = next_char_probs(logits, temperature)
        masked = logits.clone()
        masked[:, NEVER] = -math.inf
        assert_close(probs, torch.softmax(masked / temperature, -1))
        assert (probs[:, NEVER] == 0).all()
        assert_close(probs.sum(-1), torch.ones(3))


def test_high_temperature_flattens_the_distribution():
    logits = torch.tensor([0.0, 0.0, 0.0, 0.0, 3.0, 1.0, 0.0])
    sharp, flat = next_char_probs(logits, 0.5), next_char_probs(logits, 5.0)
    assert sharp[4] > next_char_probs(logits, 1.0)[4] > flat[4]
    assert flat[4] - flat[6] < 0.5


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_support_is_exactly_the_k_best(k):
    torch.manual_seed(1)
    logits = torch.randn(4, 20)
    probs = next_char_probs(logits, 1.0, top_k=k)
    masked = logits.clone()
    masked[:, NEVER] = -math.inf
    best = masked.topk(k, -1).indices
    for row in range(4):
        support = set(torch.nonzero(probs[row]).flatten().tolist())
        assert support == set(best[row].tolist())
    assert_close(probs.sum(-1), torch.ones(4))


def test_top_k_larger_than_the_vocabulary_changes_nothing():
    logits = torch.randn(2, 9)
    assert_close(next_char_probs(logits, 1.0, top_k=50), next_char_probs(logits, 1.0))


def test_top_k_never_samples_outside_the_top_k(vocab):
    model = fixed(vocab, {"a": 3.0, "b": 2.9, "c": 2.8, "d": 2.7, "e": 2.6, "f": 2.5}, default=2.0)
    texts = generate_batch(model, vocab, "", n=64, max_new_chars=40, temperature=1.0, top_k=3, seed=0)
    used = set("".join(texts))
    assert used == {"a", "b", "c"}


def test_top_p_keeps_the_smallest_set_reaching_p():
    # probabilities 0.5, 0.3, 0.15, 0.05 for four characters
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = torch.full((8,), -math.inf)
    logits[4:] = p.log()
    probs = next_char_probs(logits, 1.0, top_p=0.75)
    assert_close(probs[4:], torch.tensor([0.625, 0.375, 0.0, 0.0]))
    probs = next_char_probs(logits, 1.0, top_p=0.9)
    assert_close(probs[4:], torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95)
    assert_close(next_char_probs(logits, 1.0, top_p=1.0)[4:], p)
    # a tiny p keeps only the most likely character
    assert_close(next_char_probs(logits, 1.0, top_p=0.01)[4:], torch.tensor([1.0, 0.0, 0.0, 0.0]))


def test_top_p_never_samples_outside_the_nucleus(vocab):
    model = fixed(vocab, {"a": math.log(0.5), "b": math.log(0.3), "c": math.log(0.15),
                          "d": math.log(0.05)}, default=-math.inf, eos=-math.inf)
    texts = generate_batch(model, vocab, "", n=64, max_new_chars=40, temperature=1.0, top_p=0.75, seed=0)
    assert set("".join(texts)) == {"a", "b"}


# --------------------------------------------------------------------- seeds
def test_same_seed_gives_same_samples(model, vocab):
    a = generate_batch(model, vocab, "a", n=3, max_new_chars=50, temperature=1.0, seed=42)
    b = generate_batch(model, vocab, "a", n=3, max_new_chars=50, temperature=1.0, seed=42)
    assert a == b


def test_different_seeds_give_different_samples(model, vocab):
    a = generate_batch(model, vocab, "a", n=3, max_new_chars=50, temperature=1.0, seed=1)
    b = generate_batch(model, vocab, "a", n=3, max_new_chars=50, temperature=1.0, seed=2)
    assert a != b


def test_seeded_sampling_leaves_the_global_rng_alone(model, vocab):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, vocab, "a", 20, temperature=1.0, seed=5)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------ batching
def test_batched_generation_returns_n_strings_with_the_prefix(model, vocab):
    texts = generate_batch(model, vocab, "cafe", n=5, max_new_chars=12, temperature=1.0, seed=0)
    assert len(texts) == 5
    for text in texts:
        assert text.startswith("cafe")
        assert len(text) == 4 + 12
        assert set(text) <= set(vocab.chars)
    assert len(set(texts)) > 1  # the rows are sampled independently


def test_n_zero_returns_an_empty_list(model, vocab):
    assert generate_batch(model, vocab, "a", n=0) == []


def test_zero_new_characters_returns_the_prefix(model, vocab):
    assert generate(model, vocab, "bad", max_new_chars=0) == "bad"


def test_empty_prefix_starts_a_record(model, vocab):
    text = generate(model, vocab, "", 15, temperature=0)
    assert text == greedy_by_recomputing(model, vocab, "", 15)
    assert len(text) == 15


def test_prefix_with_unknown_characters_is_kept_verbatim(model, vocab):
    with pytest.warns(UserWarning, match="not in the vocabulary"):
        text = generate(model, vocab, "aXb", 5, temperature=0)
    assert text.startswith("aXb") and len(text) == 8


def test_generation_restores_training_mode(model, vocab):
    model.train()
    generate(model, vocab, "a", 5, seed=0)
    assert model.training


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.5},
    {"temperature": float("nan")},
    {"top_p": 0.0},
    {"top_p": 1.5},
    {"top_k": 0},
    {"min_p": -0.1},
    {"min_p": 1.5},
    {"n": -1},
    {"max_new_chars": -1},
], ids=["negative-temperature", "nan-temperature", "top_p-0", "top_p-1.5", "top_k-0", "min_p-negative",
        "min_p-1.5", "negative-n", "negative-length"])
def test_invalid_arguments_raise_value_error(model, vocab, kwargs):
    with pytest.raises(ValueError):
        generate_batch(model, vocab, "a", **{"n": 1, **kwargs})


@pytest.mark.parametrize("kwargs", [{"temperature": -1.0}, {"temperature": float("nan")},
                                    {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": 0}, {"min_p": float("nan")}])
def test_next_char_probs_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        next_char_probs(torch.randn(6), **kwargs)


def test_prefix_must_be_a_string(model, vocab):
    with pytest.raises(TypeError):
        generate(model, vocab, ["a", "b"])


# ----------------------------------------------------------- incremental state
@pytest.mark.parametrize("cell", CELLS)
def test_stepwise_logits_equal_recomputing_the_whole_prefix(make_model, cell):
    model = make_model(17, cell, layers=2).eval()
    x = torch.randint(4, 17, (2, 12))
    with torch.no_grad():
        full, _ = model(x)
        state, steps = None, []
        for t in range(x.shape[1]):
            logits, state = model(x[:, t:t + 1], state)
            steps.append(logits)
    assert_close(torch.cat(steps, 1), full)


class Recorder(nn.Module):
    """Wraps a model and records the shape of every input it is given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.shapes = model, []

    def forward(self, x, state=None):
        self.shapes.append(tuple(x.shape))
        return self.model(x, state)


def test_generation_reads_each_character_once(model, vocab):
    recorder = Recorder(model)
    texts = generate_batch(recorder, vocab, "abc", n=3, max_new_chars=10, temperature=1.0, seed=0)
    assert recorder.shapes[0] == (1, 4)              # <bos> + prefix, once for all rows
    assert recorder.shapes[1:] == [(3, 1)] * (len(recorder.shapes) - 1)
    assert len(recorder.shapes) <= 11
    assert all(len(t) == 13 for t in texts)


@pytest.mark.parametrize("cell", CELLS)
def test_incremental_greedy_generation_equals_recomputing(make_model, vocab, cell):
    model = make_model(len(vocab), cell, hidden=24, embed=8, layers=2).eval()
    with torch.no_grad():
        model.head.bias[EOS_ID] = -20.0
    assert generate(model, vocab, "hij", 30, temperature=0) == greedy_by_recomputing(model, vocab, "hij", 30)


# ----------------------------------------------------------- special tokens
@pytest.mark.parametrize("temperature", [0.0, 1.0, 3.0])
def test_pad_bos_unk_are_never_produced(vocab, temperature):
    # The specials are by far the most likely tokens; they must still never come out.
    model = fixed(vocab, {"a": 0.0, "b": 0.0}, default=-math.inf, pad=10.0, bos=10.0, unk=10.0)
    texts = generate_batch(model, vocab, "", n=8, max_new_chars=30, temperature=temperature, seed=0)
    for text in texts:
        assert len(text) == 30 and set(text) <= {"a", "b"}


def test_generation_stops_at_eos(vocab):
    a, b, c = (vocab.stoi[ch] for ch in "abc")
    model = NextTokenTable({BOS_ID: a, a: b, b: c, c: EOS_ID, EOS_ID: a}, len(vocab))
    assert generate(model, vocab, "", 50, temperature=0) == "abc"
    assert generate(model, vocab, "b", 50, temperature=0) == "bc"
    assert generate_batch(model, vocab, "", n=3, max_new_chars=50, temperature=0.5, seed=1) == ["abc"] * 3


def test_generation_goes_on_past_eos_when_asked(vocab):
    a, b, c = (vocab.stoi[ch] for ch in "abc")
    model = NextTokenTable({BOS_ID: a, a: b, b: c, c: EOS_ID, EOS_ID: a}, len(vocab))
    # <eos> counts as a generated token but is not text
    assert generate(model, vocab, "", 8, temperature=0, stop_at_eos=False) == "abcabc"


def test_finished_rows_stay_finished(vocab):
    # 'a' ends the record half of the time; other rows keep going meanwhile.
    a, b = vocab.stoi["a"], vocab.stoi["b"]
    logits = torch.full((len(vocab), len(vocab)), -30.0)
    logits[:, a] = 0.0
    logits[:, b] = 0.0
    logits[a, :] = -30.0
    logits[a, EOS_ID] = 0.0
    logits[a, b] = 0.0

    class Stub(NextTokenTable):
        def __init__(self):
            super().__init__({}, len(vocab))
            self.logits = logits

    texts = generate_batch(Stub(), vocab, "", n=32, max_new_chars=30, temperature=1.0, seed=0)
    lengths = {len(t) for t in texts}
    assert len(lengths) > 1
    for text in texts:
        assert set(text) <= {"a", "b"}


def test_nan_logits_give_a_clear_error_not_garbage():
    import torch

    import charrnn
    from charrnn.vocab import CharVocab

    class NanModel(torch.nn.Module):
        def __init__(self, vocab_size):
            super().__init__()
            self.vocab_size = vocab_size
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, state=None):
            return torch.full((*x.shape, self.vocab_size), float("nan")), state

    vocab = CharVocab("abc")
    with pytest.raises(charrnn.ModelError, match="nan logits"):
        charrnn.generate(NanModel(len(vocab)), vocab, "ab", max_new_chars=5, seed=0)


# ------------------------------------------------------------------ min-p
# Logits of the special tokens (ids 0-3) then of five characters with
# probabilities in the ratios 8 : 4 : 2 : 1 : 1 (<eos> at -inf: no mass).
MIN_P_LOGITS = torch.tensor([0.0, 0.0, -math.inf, 0.0] + [math.log(w) for w in (8, 4, 2, 1, 1)])


@pytest.mark.parametrize("min_p, kept", [(0.0, 5), (0.1, 5), (0.2, 3), (0.5, 2), (0.51, 1), (1.0, 1)])
def test_min_p_keeps_the_tokens_at_least_min_p_times_as_likely_as_the_best(min_p, kept):
    probs = next_char_probs(MIN_P_LOGITS, min_p=min_p)
    assert int((probs > 0).sum()) == kept
    assert probs.sum().item() == pytest.approx(1.0)
    weights = torch.tensor([8.0, 4, 2, 1, 1])[:kept]
    assert_close(probs[4:4 + kept], weights / weights.sum())  # the kept ones keep their ratios


def test_min_p_applies_after_the_temperature():
    # tau = 2 halves the log-ratios: 8 : 4 : 2 : 1 : 1 becomes sqrt of each, so 0.4 keeps 3, not 2
    assert int((next_char_probs(MIN_P_LOGITS, temperature=2.0, min_p=0.4) > 0).sum()) == 3
    assert int((next_char_probs(MIN_P_LOGITS, min_p=0.4) > 0).sum()) == 2


def test_min_p_of_one_writes_the_greedy_text(model, vocab):
    greedy = generate(model, vocab, "a", 40, temperature=0, seed=0)
    assert generate(model, vocab, "a", 40, min_p=1.0, seed=3) == greedy


def test_min_p_combines_with_top_k_and_top_p():
    probs = next_char_probs(MIN_P_LOGITS, top_k=4, top_p=0.95, min_p=0.2)
    assert int((probs > 0).sum()) == 3  # top-k keeps 4, top-p all 4 of them, min-p drops the 1
