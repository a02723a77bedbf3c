"""What notebook 05 (sampling) shows with numbers, asserted here: the claims
it makes about the pretrained model, the explorer and the generator widget,
on the same prefixes and settings (with shorter texts). The generic
behaviour of generate / next_char_probs / the widgets is tested in
test_sample.py and test_widgets.py; these tests pin the notebook's own story.
"""

from __future__ import annotations

import pytest
import torch

import charrnn

PREFIX = "In this paper we "          # section 2: the next-character distribution
TEXT_PREFIX = "We propose"             # sections 3 and 7: generated texts
BATCH_PREFIX = "Neural networks"       # section 6: a batch of samples


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One thread, as the notebook runs (``torch.set_num_threads(1)``); the
    previous setting is put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pretrained():
    return charrnn.load_pretrained()


@pytest.fixture(scope="module")
def last_logits(pretrained):
    model, vocab = pretrained
    with torch.no_grad():
        logits, _ = model(torch.tensor([vocab.encode(PREFIX, add_bos=True)]))
    return logits[0, -1]


def entropy_bits(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


# ------------------------------------------------------ section 2: temperature
def test_temperature_keeps_the_favourite_and_spreads_the_mass(pretrained, last_logits):
    # The table of section 2: the same most likely character at every
    # temperature, its probability and the entropy moving in opposite
    # directions, and every distribution summing to 1.
    probs = [charrnn.next_char_probs(last_logits, temperature=t) for t in (0.3, 1.0, 2.0)]
    assert len({int(p.argmax()) for p in probs}) == 1
    tops = [float(p.max()) for p in probs]
    assert tops[0] > tops[1] > tops[2]
    entropies = [entropy_bits(p) for p in probs]
    assert entropies[0] < entropies[1] < entropies[2]
    for p in probs:
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


def test_temperature_zero_is_the_argmax_with_all_the_mass(last_logits):
    greedy = charrnn.next_char_probs(last_logits, temperature=0)
    assert int(greedy.argmax()) == int(last_logits.argmax())
    assert float(greedy.max()) == 1.0
    assert int((greedy > 0).sum()) == 1


def test_the_explorer_shows_what_next_char_probs_computes(pretrained, last_logits):
    from charrnn.viz.widgets import TemperatureExplorer

    explorer = TemperatureExplorer(*pretrained, prefix=PREFIX)
    order = charrnn.next_char_probs(last_logits, temperature=1.0).argsort(descending=True)[:15]
    explorer.temperature.value = 0.3
    _, cold = explorer.probabilities()
    explorer.temperature.value = 2.0
    _, hot = explorer.probabilities()
    assert cold[0] > hot[0]
    expected = charrnn.next_char_probs(last_logits, temperature=2.0)[order]
    assert torch.allclose(torch.from_numpy(hot), expected, atol=1e-6)


# ------------------------------------------------ section 3: generated texts
def test_greedy_text_is_repeatable_and_starts_with_the_prefix(pretrained):
    greedy = charrnn.generate(*pretrained, TEXT_PREFIX, max_new_chars=20, temperature=0)
    assert greedy.startswith(TEXT_PREFIX)
    assert charrnn.generate(*pretrained, TEXT_PREFIX, max_new_chars=20, temperature=0) == greedy


def test_the_same_seed_gives_the_same_sample(pretrained):
    a = charrnn.generate(*pretrained, TEXT_PREFIX, max_new_chars=20, temperature=1.0, seed=1)
    b = charrnn.generate(*pretrained, TEXT_PREFIX, max_new_chars=20, temperature=1.0, seed=1)
    assert a == b


# ---------------------------------------- section 5: carrying the state is exact
def test_carrying_the_state_gives_the_logits_of_reading_the_whole_text(pretrained):
    _, vocab = pretrained
    torch.manual_seed(0)
    small = charrnn.CharRNN(vocab_size=len(vocab), cell="rnn", embed_dim=30, hidden_size=43).eval()
    ids = torch.tensor([vocab.encode("We study sparse random graphs and their spectra.", add_bos=True)])
    with torch.no_grad():
        full, _ = small(ids)
        steps, state = [], None
        for t in range(ids.shape[1]):
            logits, state = small(ids[:, t:t + 1], state)
            steps.append(logits)
    incremental = torch.cat(steps, 1)
    assert full.shape == incremental.shape == (1, 49, len(vocab))
    assert torch.allclose(full, incremental, atol=1e-5)


def test_re_reading_reads_130_250_characters_to_write_500_and_carrying_the_state_510():
    # section 5's text, from the notebook's chars_read: <bos> + the prefix + the text so far, at every step
    def chars_read(prefix_len, n, rereading):
        return sum(prefix_len + 1 + i for i in range(n)) if rereading else prefix_len + n

    assert chars_read(10, 500, True) == 130_250 and chars_read(10, 500, False) == 510
    assert chars_read(10, 300, True) == 48_150 and chars_read(20, 1000, True) == 520_500


# ------------------------------------------------------------ section 6: batch
def test_a_batch_starts_with_the_prefix_stays_in_the_limit_and_repeats_with_its_seed(pretrained):
    kwargs = dict(n=8, max_new_chars=20, temperature=0.8, seed=0)
    batch = charrnn.generate_batch(*pretrained, BATCH_PREFIX, **kwargs)
    assert len(batch) == 8
    assert all(t.startswith(BATCH_PREFIX) for t in batch)
    assert all(len(t) <= len(BATCH_PREFIX) + 20 for t in batch)
    assert len(set(batch)) == 8                         # the samples differ from one another
    assert charrnn.generate_batch(*pretrained, BATCH_PREFIX, **kwargs) == batch


@pytest.fixture(scope="module")
def int8_model():
    return charrnn.load_pretrained(int8=True)[0]


def test_int8_weights_are_a_quarter_of_the_bytes_for_a_few_thousandths_of_a_bit(pretrained, int8_model):
    # The int8 cell of section 6: the same count of weights, about a quarter
    # of the bytes saved, and bits/char on the first 30 records of the
    # embedded corpus within 0.01 of float32 (the bar of benchmarks/README.md).
    import io

    model, vocab = pretrained
    scored = charrnn.EncodedCorpus.from_texts(charrnn.load_texts()[:30], vocab)
    sizes, bits = [], []
    for m in (model, int8_model):
        saved = io.BytesIO()
        torch.save(m.state_dict(), saved)
        sizes.append(saved.tell())
        bits.append(charrnn.evaluate(m, charrnn.LengthBatches(scored, 30)).bits_per_char)
    assert int8_model.num_parameters == model.num_parameters
    assert 0.24 < sizes[1] / sizes[0] < 0.27
    assert abs(bits[1] - bits[0]) < 0.01


# -------------------------------------------------------- section 7: the widget
def test_the_generator_widget_as_the_notebook_drives_it(pretrained, int8_model):
    from charrnn.viz.widgets import GeneratorWidget

    generator = GeneratorWidget(int8_model, pretrained[1], prefix=TEXT_PREFIX, strategy="temperature", temperature=0.8,
                                length=200, seed=0)
    generator.strategy.value = "greedy"
    assert generator.settings()["temperature"] == 0.0
    generator.length.value = 15
    for kind in ("greedy", "temperature", "top-k", "top-p"):
        generator.strategy.value = kind
        generator.button.click()
        assert generator.text.startswith(TEXT_PREFIX), kind

    generator.strategy.value = "temperature"
    generator.temperature.value = 0.5
    cool = generator.generate()
    generator.temperature.value = 1.5
    hot = generator.generate()
    assert hot != cool                                  # another temperature, another text from the same seed
    assert generator.generate() == hot                  # the same settings write the same text again


# ------------------------------------------------- the temperature_probs exercise
def test_the_generator_at_temperature_0_gives_a_tie_to_the_first_tied_token():
    # "at temperature 0, charrnn's generator gives all the mass to one token, the first of the tied ones"
    from helpers import FixedLogits

    vocab = charrnn.CharVocab(list("abcde"))
    logits = torch.full((len(vocab),), -5.0)
    logits[[vocab.stoi["d"], vocab.stoi["b"], vocab.stoi["e"]]] = 2.0      # a three-way tie
    assert charrnn.generate(FixedLogits(logits), vocab, "", max_new_chars=5, temperature=0) == "bbbbb"
    greedy = charrnn.next_char_probs(logits, temperature=0)
    assert int(greedy.argmax()) == vocab.stoi["b"] and float(greedy.sum()) == 1.0


def test_banned_tokens_keep_probability_0_at_every_temperature():
    # next_char_probs bans <pad>, <bos> and <unk> (logits of -inf)
    from charrnn.vocab import BOS_ID, PAD_ID, UNK_ID

    logits = torch.zeros(10)
    for tau in (0.0, 1e-3, 1.0, 1e6):
        p = charrnn.next_char_probs(logits, temperature=tau)
        assert p[[PAD_ID, BOS_ID, UNK_ID]].tolist() == [0.0, 0.0, 0.0]
        assert float(p.sum()) == pytest.approx(1.0)


def test_the_limits_of_the_exercise_are_those_of_the_library():
    # the rows the notebook prints after the check, on (2, 1, 1, -inf) and (1, 3, 3, 0)
    from charrnn.sample import temperature_probs

    banned, tied = torch.tensor([2.0, 1.0, 1.0, -float("inf")]), torch.tensor([1.0, 3.0, 3.0, 0.0])
    assert temperature_probs(banned, 0.0).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert temperature_probs(banned, 1e-3).tolist() == [1.0, 0.0, 0.0, 0.0]
    torch.testing.assert_close(temperature_probs(banned, float("inf")), torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0]))
    assert temperature_probs(tied, 0.0).tolist() == [0.0, 1.0, 0.0, 0.0]                  # greedy: the first tied
    torch.testing.assert_close(temperature_probs(tied, 1e-3), torch.tensor([0.0, 0.5, 0.5, 0.0]))  # the limit
    torch.testing.assert_close(temperature_probs(tied, 1e3), torch.full((4,), 0.25), atol=1e-3, rtol=0)
