"""Claims that notebooks 01 and 02 make in words and numbers, kept as
assertions: the notebooks print the values (a difference, a ratio, a norm),
these tests check the inequality the text draws from them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

import charrnn

# ------------------------------------------------------------------ notebook 01


def test_shift_and_mask_of_one_padded_record():
    """The worked example: `<bos> R N N <eos>` + 2 `<pad>` scores N = 4 positions."""
    vocab = charrnn.CharVocab.from_texts(["RNN"])
    tokens = charrnn.pad_sequences([vocab.encode("RNN", add_bos=True, add_eos=True)], pad_id=vocab.pad_id)
    tokens = torch.cat([tokens, torch.full((1, 2), vocab.pad_id)], dim=1)
    inputs, targets = charrnn.shift_targets(tokens)
    assert inputs.shape == targets.shape == (1, 6)
    assert (targets != vocab.pad_id).sum().item() == 4



def _padding_share(batches, steps: int, pad_id: int) -> float:
    pads = total = 0
    for step in range(steps):
        _, y = batches.batch(step)
        pads, total = pads + int((y == pad_id).sum()), total + y.numel()
    return pads / total


def test_record_batches_pad_about_a_quarter_for_every_seed_and_windows_almost_nothing():
    """Section 4: 'for every seed about a quarter of the record batches' targets are padding, while
    windows have almost none' (batches of 8 over one epoch of 19 batches, seeds 0 1 2)."""
    texts = charrnn.load_texts()
    vocab = charrnn.CharVocab.from_texts(texts)
    corpus = charrnn.EncodedCorpus.from_texts(texts, vocab)
    epoch = charrnn.RecordBatches(corpus, batch_size=8).batches_per_epoch
    records = [_padding_share(charrnn.RecordBatches(corpus, batch_size=8, seed=s), epoch, vocab.pad_id)
               for s in (0, 1, 2)]
    windows = [_padding_share(charrnn.WindowBatches(corpus, batch_size=8, seq_len=64, seed=s), epoch, vocab.pad_id)
               for s in (0, 1, 2)]
    assert epoch == 19 and len(vocab) == 98
    assert all(0.2 < r < 0.3 for r in records), records
    assert all(w < 0.005 for w in windows), windows  # only the <bos> targets after an <eos>


def test_the_round_trip_at_min_freq_5_loses_exactly_the_rare_characters():
    """Section 3, after exercise 1: 138 of 150 records survive the round trip through the min_freq=5
    vocabulary, and the characters lost are those seen fewer than 5 times, listed just before."""
    texts = charrnn.load_texts()
    rare_vocab = charrnn.CharVocab.from_texts(texts, min_freq=5)
    survive = sum(rare_vocab.decode(rare_vocab.encode(t)) == t for t in texts)
    counts = Counter("".join(texts))
    assert survive == 138
    assert rare_vocab.unknown_chars("".join(texts)) == sorted(c for c, n in counts.items() if n < 5)
    assert "".join(rare_vocab.unknown_chars("".join(texts))) == "*@[]~éöő–"

# ------------------------------------------------------------------ notebook 02: the recurrence


def test_rnn_cell_output_stays_inside_minus_one_one():
    torch.manual_seed(0)
    cell = charrnn.RNNCell(3, 4)
    h = cell(torch.randn(2, 3), torch.zeros(2, 4))
    assert h.abs().max().item() < 1


@pytest.mark.parametrize("make", [
    lambda: charrnn.ScratchRNN(3, 16, num_layers=2),
    lambda: nn.RNN(3, 16, num_layers=2, batch_first=True),
], ids=["ScratchRNN", "nn.RNN"])
def test_top_layer_last_state_is_the_last_output(make):
    torch.manual_seed(0)
    output, h_n = make()(torch.randn(2, 5, 3))
    assert torch.equal(h_n[-1], output[:, -1])


def _run(net, e, h0, loss_weights):
    e_in = e.clone().requires_grad_(True)
    output, h_n = net(e_in, h0)
    net.zero_grad()
    ((output * loss_weights).sum() + h_n.sum()).backward()
    return output, h_n, e_in.grad


def test_scratch_rnn_agrees_with_nn_rnn_to_five_decimals_in_float32():
    """Section 3 of notebook 02: every printed difference rounds to 0.00000."""
    torch.manual_seed(1)
    reference = nn.RNN(3, 16, num_layers=2, batch_first=True)
    scratch = charrnn.ScratchRNN(3, 16, num_layers=2).copy_from(reference)
    e, h0, loss_weights = torch.randn(4, 7, 3), torch.randn(2, 4, 16), torch.randn(4, 7, 16)
    for a, b in zip(_run(reference, e, h0, loss_weights), _run(scratch, e, h0, loss_weights), strict=True):
        assert (a - b).abs().max().item() < 5e-6
    for i, cell in enumerate(scratch.cells):
        pairs = [(f"weight_ih_l{i}", cell.input_to_hidden.weight), (f"bias_ih_l{i}", cell.input_to_hidden.bias),
                 (f"weight_hh_l{i}", cell.hidden_to_hidden.weight), (f"bias_hh_l{i}", cell.hidden_to_hidden.bias)]
        for name, p in pairs:
            assert (getattr(reference, name).grad - p.grad).abs().max().item() < 5e-6, name


def test_the_row_convention_formula_is_what_nn_rnn_computes():
    torch.manual_seed(2)
    rnn = nn.RNN(3, 16, batch_first=True)
    e, h0 = torch.randn(4, 7, 3), torch.randn(1, 4, 16)
    output, h_n = rnn(e, h0)
    h = h0[0]
    for t in range(e.shape[1]):
        h = torch.tanh(e[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        assert (h - output[:, t]).abs().max().item() < 5e-6
    assert (h - h_n[0]).abs().max().item() < 5e-6


def test_a_state_passed_back_in_continues_the_sequences_as_if_read_in_one_call():
    """Section 2 of notebook 02: three steps, then two from the state they
    left, give the five states of one call (printed as 0.00000)."""
    torch.manual_seed(3)
    rnn = nn.RNN(3, 4, batch_first=True)
    e = torch.randn(2, 5, 3)
    output, h_n = rnn(e)
    first, h_3 = rnn(e[:, :3])
    rest, h_5 = rnn(e[:, 3:], h_3)
    assert (torch.cat([first, rest], dim=1) - output).abs().max().item() < 5e-6
    assert (h_5 - h_n).abs().max().item() < 5e-6


# ------------------------------------------------------------------ notebook 02: BPTT and clipping
# As in the notebook, in float64: with rho = 3 the tanh RNN magnifies float32
# rounding into the second printed digit, which then differs between machines.
H, T = 32, 60
DTYPE = torch.float64


def recurrent_matrix(rho: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(H, H, generator=gen, dtype=DTYPE) / H ** 0.5
    return W * rho / torch.linalg.eigvals(W).abs().max()


def _inputs():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(H, 4, generator=gen, dtype=DTYPE) / 2, torch.randn(T, 4, generator=gen, dtype=DTYPE)


def state_gradient_norms(W_h: torch.Tensor, activation) -> torch.Tensor:
    W_x, es = _inputs()
    h = torch.zeros(H, dtype=DTYPE, requires_grad=True)
    states = []
    for t in range(T):
        h = activation(es[t] @ W_x.T + h @ W_h.T)
        states.append(h)
    grads = torch.autograd.grad(states[-1].sum(), states)
    return torch.stack([g.norm() for g in grads])


def ratios(rho: float, activation) -> list[float]:
    """||delta_1|| / ||delta_60|| for the notebook's five draws of W_h, sorted."""
    out = []
    for seed in range(5):
        n = state_gradient_norms(recurrent_matrix(rho, seed), activation)
        out.append((n[0] / n[-1]).item())
    return sorted(out)


def test_recurrent_matrix_has_the_requested_spectral_radius():
    for rho in (0.8, 1.2, 3.0):
        assert torch.linalg.eigvals(recurrent_matrix(rho)).abs().max().item() == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize("rho", [0.8, 1.0, 1.2])
def test_linear_rnn_median_ratio_is_rho_to_the_59th_within_a_factor_2(rho):
    r = ratios(rho, lambda z: z)
    assert rho ** 59 / 2 < r[2] < rho ** 59 * 2
    assert r[-1] / r[0] < 6  # "the five draws differ from each other by a factor of about 5"


@pytest.mark.parametrize("rho, vanishes", [(0.8, True), (1.2, True), (3.0, False)])
def test_tanh_rnn_vanishes_at_1_2_and_explodes_only_at_3_for_every_draw(rho, vanishes):
    r = ratios(rho, torch.tanh)
    assert r[-1] < 1e-3 if vanishes else r[0] > 1e3


def test_tanh_gradient_59_steps_back_is_at_most_1e_8_of_the_one_at_the_loss_where_it_vanishes():
    """Notebook 02 after the table: "a gradient from 59 steps back that is
    1e-8 of the one at the loss, or less" (every draw, rho 0.8 and 1.2)."""
    assert max(ratios(0.8, torch.tanh) + ratios(1.2, torch.tanh)) < 1e-8


def _margin_from_rounding_boundary(value: float) -> float:
    """Relative distance from ``value`` to the nearest x.5e±k, where the
    one-digit ``:.0e`` format flips from one printed digit to the next."""
    mantissa = value / 10 ** np.floor(np.log10(value))  # in [1, 10)
    boundaries = [0.95] + [k + 0.5 for k in range(1, 10)]  # 0.95: the 9.5 of the decade below
    return min(abs(mantissa - b) for b in boundaries) / mantissa


def test_margin_from_rounding_boundary():
    assert _margin_from_rounding_boundary(1.02e5) == pytest.approx(0.07 / 1.02)
    assert _margin_from_rounding_boundary(2.7e-3) == pytest.approx(0.2 / 2.7)
    assert _margin_from_rounding_boundary(9.4e7) == pytest.approx(0.1 / 9.4)


def test_printed_ratios_are_far_from_a_rounding_boundary():
    """The notebook prints each ratio to one digit. float64 results differ
    between machines by about 1e-9 relative (measured under
    tests/portability.py's configurations), so a margin of 1e-3 cannot flip
    a digit; a change that brings a value near a boundary fails here."""
    values = []
    for act in (lambda z: z, torch.tanh):
        for rho in (0.8, 1.0, 1.2, 3.0):
            values += ratios(rho, act)
    assert min(_margin_from_rounding_boundary(v) for v in values) > 1e-3


def test_clipping_an_exploding_gradient_keeps_its_direction():
    W_h = nn.Parameter(recurrent_matrix(1.2))
    W_x, es = _inputs()
    h = torch.zeros(H, dtype=DTYPE)
    for t in range(T):
        h = es[t] @ W_x.T + h @ W_h.T
    h.sum().backward()
    raw = W_h.grad.clone()
    before = torch.nn.utils.clip_grad_norm_([W_h], max_norm=1.0)
    assert 1.5e7 < before.item() < 2.5e7  # "about 20 million"
    assert _margin_from_rounding_boundary(before.item()) > 1e-3
    assert W_h.grad.norm().item() == pytest.approx(1.0, abs=1e-9)
    cosine = torch.nn.functional.cosine_similarity(raw.flatten(), W_h.grad.flatten(), dim=0).item()
    assert cosine > 0.9999


def test_a_threshold_of_1e5_clips_nothing_on_a_char_model():
    texts = charrnn.load_texts()
    vocab = charrnn.CharVocab.from_texts(texts)
    inputs, targets = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab),
                                            batch_size=16, seq_len=100, seed=0).batch(0)
    torch.manual_seed(0)
    model = charrnn.CharRNN(vocab_size=len(vocab), cell="rnn", embed_dim=32, hidden_size=128)
    logits, _ = model(inputs)
    charrnn.masked_cross_entropy(logits, targets).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e5)
    assert norm.item() < 10
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
