"""What the speed-ups in sample.py rest on, and a smoke run of benchmarks/.

Generation samples by inverting the cumulative distribution with one
uniform number per row (drawn in blocks) instead of ``torch.multinomial``,
and masks the special tokens with a cached mask; these tests pin down that
the samples still follow the probabilities exactly and that tokens of
probability 0 can never come out.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from helpers import FixedLogits

import charrnn
from charrnn.sample import _inverse_cdf_sample, _uniforms, next_char_probs
from charrnn.vocab import BOS_ID, PAD_ID, UNK_ID

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CPU = torch.device("cpu")


def assert_counts_follow(counts: torch.Tensor, probs: torch.Tensor, n: int) -> None:
    """Each count within 5 standard deviations of n * p; none where p = 0."""
    assert counts[probs == 0].sum() == 0
    sigma = (n * probs * (1 - probs)).sqrt()
    assert ((counts - n * probs).abs() <= 5 * sigma).all(), (counts, n * probs)


def test_inverse_cdf_samples_follow_the_probabilities():
    probs = torch.tensor([0.0, 0.1, 0.0, 0.2, 0.3, 0.4, 0.0])
    n = 40_000
    u = next(_uniforms(n, 1, torch.Generator().manual_seed(0), CPU))
    ids = _inverse_cdf_sample(probs.expand(n, -1), u)
    assert ids.shape == (n, 1) and ids.dtype == torch.long
    assert_counts_follow(torch.bincount(ids.flatten(), minlength=len(probs)).float(), probs, n)


def test_zero_probability_tokens_are_never_chosen_even_at_the_extremes():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]])
    smallest, largest = torch.tensor([[2.0 ** -24]]), torch.ones(1, 1)  # u is in (0, 1]
    assert _inverse_cdf_sample(probs, smallest).item() == 1
    assert _inverse_cdf_sample(probs, largest).item() == 3
    assert _inverse_cdf_sample(probs * 3, largest).item() == 3  # rows need not sum to exactly 1


def test_uniforms_are_in_zero_one_and_repeat_with_the_seed():
    def draw(seed: int) -> torch.Tensor:
        return torch.cat(list(_uniforms(3, 600, torch.Generator().manual_seed(seed), CPU)), 1)

    a = draw(0)
    assert a.shape == (3, 600)  # 600 steps span three blocks
    assert (a > 0).all() and (a <= 1).all()
    assert torch.equal(a, draw(0)) and not torch.equal(a, draw(1))


def test_generated_characters_follow_the_model_distribution():
    vocab = charrnn.CharVocab.from_texts(["abcd"])
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = torch.full((len(vocab),), -math.inf)
    logits[[vocab.stoi[c] for c in "abcd"]] = p.log()
    rows, length = 400, 25
    texts = charrnn.generate_batch(FixedLogits(logits), vocab, "", n=rows, max_new_chars=length,
                                   temperature=1.0, seed=0, stop_at_eos=False)
    joined = "".join(texts)
    assert len(joined) == rows * length
    counts = torch.tensor([joined.count(c) for c in "abcd"], dtype=torch.float)
    assert_counts_follow(counts, p, rows * length)


def test_temperature_one_gives_the_masked_softmax_bit_for_bit():
    logits = torch.randn(5, 30) * 4
    masked = logits.clone()
    masked[:, [PAD_ID, BOS_ID, UNK_ID]] = -math.inf
    # What next_char_probs computed before it skipped the shift at temperature 1.
    shifted = torch.softmax((masked - masked.max(-1, keepdim=True).values) / 1.0, -1)
    assert torch.equal(next_char_probs(logits, 1.0), shifted)


def test_the_benchmarks_run_and_write_one_report(monkeypatch, capsys, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import run_all

    out = tmp_path / "bench.md"
    status = run_all.main(["--steps", "1", "--rounds", "1", "--warmup", "0", "--lengths", "3",
                           "--gen-rounds", "1", "--eval-records", "2", "--eval-rounds", "1",
                           "--int8-chars", "3", "--out", str(out)])
    assert status == 0
    text = out.read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == text.strip()
    first = text.splitlines()[0]
    assert f"torch {torch.__version__}" in first and "threads" in first and "cores" in first
    assert "| benchmark | variant | chars/s | ratio | target | result |" in text
    for variant in ("bare step", "charrnn Trainer", "origin loop", "origin (re-run whole text)",
                    "charrnn incremental", "charrnn batched x64 (total)", "bare forward 64x256",
                    "evaluate before", "evaluate by length in chunks", "float32", "int8 dynamic quantization"):
        assert f"| {variant}" in text
    # Targets at this length: the Trainer's and batched generation's (incremental's is at 500),
    # the evaluation's and int8 generation's.
    assert text.count("| >= ") == 4


def test_prepare_speed_reports_prepare_against_the_parse_floors(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import prepare_speed

    assert prepare_speed.main(["--mb", "0.2", "--skip-pandas", "--floors"]) == 0
    text = capsys.readouterr().out
    assert "| charrnn prepare_dataset |" in text
    assert "| run | seconds | CPU seconds | MB/s | records | vs json.loads floor |" in text
    for row in ("| bare json.loads loop |", "| prepare_dataset as shipped |", "| prepare_dataset, json.loads only |"):
        assert row in text
