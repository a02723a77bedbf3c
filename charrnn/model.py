"""The character language model: embedding -> recurrent core -> linear.

``forward(x, state)`` returns ``(logits, state)``. Handing the state back is
what makes generation O(n): the next call continues from where the last one
stopped instead of re-reading the whole text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .config import ModelConfig
from .layers import ScratchRNN

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # LSTM carries (h, c)


class CharRNN(nn.Module):
    """Embedding -> ``scratch``/``rnn``/``gru``/``lstm`` -> linear over the vocabulary."""

    def __init__(self, config: ModelConfig | None = None, **kwargs):
        super().__init__()
        self.config = config if config is not None else ModelConfig(**kwargs)
        c = self.config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        between = c.dropout if c.num_layers > 1 else 0.0
        if c.cell == "scratch":
            self.rnn = ScratchRNN(c.embed_dim, c.hidden_size, c.num_layers, dropout=between)
        else:
            core = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[c.cell]
            self.rnn = core(c.embed_dim, c.hidden_size, c.num_layers, batch_first=True, dropout=between)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)
        if c.cell == "lstm":
            self._open_forget_gates()

    @torch.no_grad()
    def _open_forget_gates(self) -> None:
        """Start every LSTM forget gate at bias 1 (sigmoid(1) = 0.73) instead
        of about 0, so the cell state is kept, not halved, at each step from
        the start; deep LSTMs otherwise can sit on a plateau for thousands of
        steps (Jozefowicz et al., 2015)."""
        h = self.config.hidden_size
        for layer in range(self.config.num_layers):
            getattr(self.rnn, f"bias_ih_l{layer}")[h:2 * h].fill_(1.0)  # gates: input, forget, cell, output
            getattr(self.rnn, f"bias_hh_l{layer}")[h:2 * h].fill_(0.0)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``x``: ``(batch, time)`` token ids -> logits ``(batch, time, vocab)``
        and the recurrent state after the last step."""
        if x.ndim != 2:
            raise ValueError(f"expected token ids of shape (batch, time), got {tuple(x.shape)}")
        embedded = self.embedding(x)                      # (batch, time) -> (batch, time, embed_dim)
        hidden, state = self.rnn(embedded, state)         # -> (batch, time, hidden_size)
        return self.head(self.dropout(hidden)), state     # -> (batch, time, vocab_size)

    def evaluating(self):
        """``with model.evaluating():`` eval mode and no gradients for the
        block, then the mode it had before (see :func:`evaluating`)."""
        return evaluating(self)

    @property
    def num_parameters(self) -> int:
        """Numbers in the model's weights and biases. A copy quantized for
        the CPU (:func:`charrnn.pretrained.quantize_int8`) keeps its int8
        weights in packed form, which ``parameters()`` does not list; they
        are counted too, so both copies report the same size."""
        return sum(p.numel() for p in self.parameters()) + sum(_packed_numbers(m) for m in self.modules())

    def extra_repr(self) -> str:
        """The parameter count, shown by ``print(model)``."""
        return f"{self.num_parameters:,} parameters"


def _packed_numbers(module: nn.Module) -> int:
    """Weights and biases that a dynamically quantized layer holds outside
    its parameters (0 for any other layer)."""
    if hasattr(module, "get_weight") and hasattr(module, "get_bias"):  # quantized LSTM / GRU
        tensors = [*module.get_weight().values(), *module.get_bias().values()]
    elif callable(getattr(module, "weight", None)) and callable(getattr(module, "bias", None)):  # quantized Linear
        tensors = [module.weight(), module.bias()]
    else:
        return 0
    return sum(t.numel() for t in tensors if t is not None)


def map_state(state: State | None, fn) -> State | None:
    """Apply ``fn`` to every tensor of a recurrent state (LSTM states are pairs)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[torch.device]:
    """Run a block with ``model`` in eval mode (no dropout) and gradients
    off, then put the mode back as it was; yields the model's device.
    Inspection tools use it so that looking at a model in the middle of
    training does not switch its dropout off for good."""
    with in_eval_mode(model) as device, torch.no_grad():
        yield device


@contextmanager
def in_eval_mode(model: nn.Module) -> Iterator[torch.device]:
    """:func:`evaluating` without turning gradients off: the mode belongs to
    the model, where the gradient switch belongs to the whole thread, so a
    generator can hold this one across a ``yield`` (the caller's code
    runs in between) and switch gradients off only while it computes."""
    was_training = model.training
    model.eval()
    try:
        yield next(model.parameters()).device
    finally:
        model.train(was_training)
