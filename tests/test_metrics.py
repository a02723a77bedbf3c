"""Loss units and evaluation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from charrnn import LossReport, bits_per_char, evaluate, masked_cross_entropy, perplexity
from charrnn.metrics import surprisal_bits
from charrnn.vocab import PAD_ID

VOCAB = 11


def test_bits_per_char_converts_nats_to_bits():
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(math.log(256)) == pytest.approx(8.0)
    assert bits_per_char(0.0) == 0.0


def test_perplexity_is_exp_of_nats():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(5)) == pytest.approx(5.0)
    assert perplexity(1000.0) == math.inf  # no OverflowError


def test_loss_report_units_and_str():
    report = LossReport(nats=2 * math.log(2), tokens=12345)
    assert report.bits_per_char == pytest.approx(2.0)
    assert report.perplexity == pytest.approx(4.0)
    text = str(report)
    assert "1.3863 nats" in text
    assert "2.0000 bits/char" in text
    assert "perplexity 4.00" in text
    assert "12,345 characters" in text


def test_masked_cross_entropy_ignores_pad_targets():
    logits = torch.randn(2, 4, VOCAB)
    targets = torch.tensor([[5, 6, PAD_ID, PAD_ID], [7, PAD_ID, 8, 9]])
    keep = targets != PAD_ID
    expected = F.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(masked_cross_entropy(logits, targets), expected)
    total = masked_cross_entropy(logits, targets, reduction="sum")
    assert torch.allclose(total, expected * keep.sum())


def test_surprisal_bits_is_minus_log2_of_each_targets_probability():
    logits = torch.randn(5, VOCAB)
    targets = torch.tensor([0, 3, 3, 10, 7])
    probs = torch.softmax(logits, -1)[torch.arange(5), targets]
    bits = surprisal_bits(logits, targets)
    assert bits.shape == (5,) and bool((bits >= 0).all())
    assert torch.allclose(bits, -torch.log2(probs), atol=1e-5)
    # one value per position; their mean is the cross-entropy, in bits
    assert bits.mean().item() == pytest.approx(bits_per_char(F.cross_entropy(logits, targets).item()), rel=1e-5)


def test_surprisal_bits_of_a_sure_guess_and_of_a_coin_flip():
    assert surprisal_bits(torch.tensor([[0.0, -1e4]]), torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-6)
    assert surprisal_bits(torch.tensor([[2.0, 2.0]]), torch.tensor([1])).item() == pytest.approx(1.0)


def test_evaluate_ignores_pad_targets(make_model):
    model = make_model(VOCAB, "gru")
    batches = [
        (torch.randint(4, VOCAB, (2, 5)), torch.tensor([[4, 5, 6, PAD_ID, PAD_ID], [7, 8, 9, 10, 4]])),
        (torch.randint(4, VOCAB, (1, 3)), torch.tensor([[PAD_ID, 5, 6]])),
    ]
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in batches:
            logp = torch.log_softmax(model(inputs)[0], -1)
            for b in range(targets.shape[0]):
                for t in range(targets.shape[1]):
                    if targets[b, t] != PAD_ID:
                        total -= logp[b, t, targets[b, t]].item()
                        count += 1
    report = evaluate(model, batches)
    assert report.tokens == count == 10
    assert report.nats == pytest.approx(total / count, rel=1e-5)


def test_evaluate_uses_a_batchers_eval_batches(make_model):
    model = make_model(VOCAB, "rnn")
    batch = (torch.randint(4, VOCAB, (2, 5)), torch.randint(4, VOCAB, (2, 5)))

    class Batcher:
        def eval_batches(self):
            yield batch

    assert evaluate(model, Batcher()) == evaluate(model, [batch])


def test_evaluate_max_batches_limits_the_batches(make_model):
    model = make_model(VOCAB, "rnn")
    batches = [(torch.randint(4, VOCAB, (2, 5)), torch.randint(4, VOCAB, (2, 5))) for _ in range(3)]
    assert evaluate(model, batches, max_batches=1) == evaluate(model, batches[:1])
    assert evaluate(model, batches, max_batches=2).tokens == 20


def test_evaluate_restores_training_mode_and_disables_dropout(make_model):
    model = make_model(VOCAB, "lstm", layers=2, dropout=0.5)
    batches = [(torch.randint(4, VOCAB, (2, 5)), torch.randint(4, VOCAB, (2, 5)))]
    model.train()
    first = evaluate(model, batches)
    assert model.training
    assert evaluate(model, batches) == first  # deterministic: dropout was off
    model.eval()
    evaluate(model, batches)
    assert not model.training


def test_evaluate_without_scored_targets_raises(make_model):
    model = make_model(VOCAB, "rnn")
    with pytest.raises(ValueError, match="non-pad"):
        evaluate(model, [(torch.ones(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))])
