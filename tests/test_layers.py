"""ScratchRNN, the hand-written recurrence, against torch's nn.RNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from charrnn import CharRNN, RNNCell, ScratchRNN

BATCH, STEPS, FEATURES, HIDDEN = 3, 6, 5, 7


def make_pair(num_layers: int):
    torch.manual_seed(num_layers)
    reference = nn.RNN(FEATURES, HIDDEN, num_layers, batch_first=True).double()
    scratch = ScratchRNN(FEATURES, HIDDEN, num_layers).double().copy_from(reference)
    return reference, scratch


def matching_parameters(reference: nn.RNN, scratch: ScratchRNN):
    for i, cell in enumerate(scratch.cells):
        yield getattr(reference, f"weight_ih_l{i}"), cell.input_to_hidden.weight
        yield getattr(reference, f"bias_ih_l{i}"), cell.input_to_hidden.bias
        yield getattr(reference, f"weight_hh_l{i}"), cell.hidden_to_hidden.weight
        yield getattr(reference, f"bias_hh_l{i}"), cell.hidden_to_hidden.bias


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_scratch_rnn_matches_nn_rnn_outputs(num_layers, with_state):
    reference, scratch = make_pair(num_layers)
    x = torch.randn(BATCH, STEPS, FEATURES, dtype=torch.float64)
    h0 = torch.randn(num_layers, BATCH, HIDDEN, dtype=torch.float64) if with_state else None
    out_ref, h_ref = reference(x, h0)
    out, h = scratch(x, h0)
    assert out.shape == (BATCH, STEPS, HIDDEN) and h.shape == (num_layers, BATCH, HIDDEN)
    assert_close(out, out_ref)
    assert_close(h, h_ref)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_scratch_rnn_matches_nn_rnn_gradients(num_layers, with_state):
    reference, scratch = make_pair(num_layers)
    x = torch.randn(BATCH, STEPS, FEATURES, dtype=torch.float64)
    h0 = torch.randn(num_layers, BATCH, HIDDEN, dtype=torch.float64) if with_state else None
    weights = torch.randn(BATCH, STEPS, HIDDEN, dtype=torch.float64)  # a loss that uses every output

    grads = []
    for rnn in (reference, scratch):
        x_in = x.clone().requires_grad_()
        h_in = h0.clone().requires_grad_() if h0 is not None else None
        out, h_n = rnn(x_in, h_in)
        ((out * weights).sum() + h_n.pow(2).sum()).backward()
        grads.append((x_in.grad, h_in.grad if h_in is not None else None))

    assert_close(grads[1][0], grads[0][0])
    if with_state:
        assert_close(grads[1][1], grads[0][1])
    for p_ref, p_scratch in matching_parameters(reference, scratch):
        assert p_scratch.grad is not None
        assert_close(p_scratch.grad, p_ref.grad)


def test_copy_from_copies_every_weight():
    reference, scratch = make_pair(2)
    for p_ref, p_scratch in matching_parameters(reference, scratch):
        assert torch.equal(p_ref, p_scratch)


def test_copy_from_rejects_a_different_shape():
    with pytest.raises(ValueError):
        ScratchRNN(FEATURES, HIDDEN, 1).copy_from(nn.RNN(FEATURES, HIDDEN, 2, batch_first=True))
    with pytest.raises(ValueError):
        ScratchRNN(FEATURES, HIDDEN, 1).copy_from(nn.RNN(FEATURES, HIDDEN + 1, 1, batch_first=True))


def test_rnn_cell_is_one_tanh_step():
    torch.manual_seed(0)
    cell = RNNCell(4, 3)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    expected = torch.tanh(x @ cell.input_to_hidden.weight.T + cell.input_to_hidden.bias
                          + h @ cell.hidden_to_hidden.weight.T + cell.hidden_to_hidden.bias)
    assert_close(cell(x, h), expected)


def test_scratch_rnn_cells_agree_with_the_unrolled_layer():
    torch.manual_seed(0)
    scratch = ScratchRNN(FEATURES, HIDDEN, 1)
    x = torch.randn(2, 4, FEATURES)
    out, _ = scratch(x)
    h = torch.zeros(2, HIDDEN)
    for t in range(4):
        h = scratch.cells[0](x[:, t], h)
        assert_close(out[:, t], h)


def test_scratch_rnn_rejects_unbatched_input():
    with pytest.raises(ValueError, match="batch, time, features"):
        ScratchRNN(FEATURES, HIDDEN)(torch.randn(STEPS, FEATURES))


def test_scratch_model_runs_the_teaching_cell(monkeypatch):
    """A student who edits RNNCell.forward changes CharRNN(cell="scratch"):
    ScratchRNN calls the cell, it does not re-write the step."""
    torch.manual_seed(0)
    model = CharRNN(vocab_size=7, cell="scratch", embed_dim=4, hidden_size=5, num_layers=2)
    x = torch.randint(7, (2, 6))
    before, _ = model(x)
    calls = []
    real_forward = RNNCell.forward

    def doubled(self, x_t, h_prev):
        calls.append(tuple(x_t.shape))
        return 2 * real_forward(self, x_t, h_prev)

    monkeypatch.setattr(RNNCell, "forward", doubled)
    after, _ = model(x)
    assert len(calls) == 2 * 6  # every layer, every time step
    assert not torch.allclose(before, after)
