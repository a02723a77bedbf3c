"""A recurrent layer written by hand, to see what ``nn.RNN`` does inside.

One step of the recurrence (the origin notebook's ``MyRnnLayer``)::

    h_t = tanh(W_x x_t + b_x + W_h h_{t-1} + b_h)

:class:`RNNCell` is that one step; :class:`ScratchRNN` runs it over time and
stacks layers. Shapes and the state convention match
``nn.RNN(batch_first=True)``: input ``(batch, time, features)``, state
``(num_layers, batch, hidden)``, and the parameters can be copied from an
``nn.RNN`` with :meth:`ScratchRNN.copy_from`, so the two can be checked
against each other number for number.
"""

from __future__ import annotations

import torch
from torch import nn


class RNNCell(nn.Module):
    """One time step: ``h_t = tanh(W_x x_t + b_x + W_h h_{t-1} + b_h)``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_to_hidden = nn.Linear(input_size, hidden_size)    # W_x, b_x
        self.hidden_to_hidden = nn.Linear(hidden_size, hidden_size)  # W_h, b_h
        # nn.RNN's initialisation, so both start from the same distribution.
        bound = hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """``x_t`` ``(batch, input_size)`` and ``h_prev`` ``(batch, hidden)``
        -> ``h_t`` ``(batch, hidden)``."""
        return torch.tanh(self.input_to_hidden(x_t) + self.hidden_to_hidden(h_prev))


class ScratchRNN(nn.Module):
    """A stack of :class:`RNNCell` layers unrolled over time with a Python loop.

    Same call as ``nn.RNN(input_size, hidden_size, num_layers, batch_first=True,
    dropout=dropout)``: ``output, h_n = rnn(x, h_0)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.cells = nn.ModuleList(
            RNNCell(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)  # between layers, as nn.RNN does

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """``x`` ``(batch, time, features)``, ``state`` ``(num_layers, batch,
        hidden)`` or None for zeros -> ``(output, h_n)``: the last layer's
        ``h_t`` at every step ``(batch, time, hidden)`` and every layer's
        last ``h_t`` ``(num_layers, batch, hidden)``.

        Each step calls the cell itself (``cell(x_t, h)``), so a change to
        :meth:`RNNCell.forward` is a change to this layer and to
        ``CharRNN(cell="scratch")``."""
        if x.ndim != 3:
            raise ValueError(f"expected input of shape (batch, time, features), got {tuple(x.shape)}")
        batch, steps, _ = x.shape
        if state is None:
            state = x.new_zeros(self.num_layers, batch, self.hidden_size)
        layer_input, last_states = x, []
        for i, cell in enumerate(self.cells):
            h = state[i]                                   # (batch, hidden)
            outputs = []
            for t in range(steps):
                h = cell(layer_input[:, t], h)             # (batch, features) -> (batch, hidden)
                outputs.append(h)
            if outputs:
                layer_output = torch.stack(outputs, dim=1)  # steps x (batch, hidden) -> (batch, time, hidden)
            else:
                layer_output = x.new_zeros(batch, 0, self.hidden_size)
            last_states.append(h)
            layer_input = self.dropout(layer_output) if i < self.num_layers - 1 else layer_output
        return layer_input, torch.stack(last_states)       # (batch, time, hidden), (layers, batch, hidden)

    @torch.no_grad()
    def copy_from(self, rnn: nn.RNN) -> ScratchRNN:
        """Take the weights of a ``nn.RNN(nonlinearity='tanh', bias=True)``."""
        if rnn.num_layers != self.num_layers or rnn.hidden_size != self.hidden_size:
            raise ValueError("nn.RNN must have the same num_layers and hidden_size")
        for i, cell in enumerate(self.cells):
            cell.input_to_hidden.weight.copy_(getattr(rnn, f"weight_ih_l{i}"))
            cell.input_to_hidden.bias.copy_(getattr(rnn, f"bias_ih_l{i}"))
            cell.hidden_to_hidden.weight.copy_(getattr(rnn, f"weight_hh_l{i}"))
            cell.hidden_to_hidden.bias.copy_(getattr(rnn, f"bias_hh_l{i}"))
        return self
