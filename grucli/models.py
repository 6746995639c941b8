"""The cell registry, the one sequence-model wrapper every cell and head goes through,
and exact parameter counting / parameter-budget matching.

Torch conventions: nn.GRU gate order (r, z, n), nn.LSTM gate order (i, f, g, o); both
keep two bias vectors (b_ih and b_hh) per gate block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class Cell:
    """A registry entry. `make(input_size, hidden_size, num_layers, bidirectional, dropout,
    impl)` returns a module with torch's RNN interface: `forward(x_or_packed) -> (out, state)`.
    Every implementation of a cell has the same parameter names and shapes (torch's)."""

    name: str
    gates: int  # G: blocks per weight matrix (1 RNN, 3 GRU, 4 LSTM)
    impls: dict[str, Callable[..., nn.Module]]  # impl name -> maker; "auto" = the first available
    final_h: Callable[[object], torch.Tensor] = lambda state: state  # state -> h_n (L*D, B, H)
    summary: str = ""

    def resolve_impl(self, impl: str = "auto") -> str:
        if impl != "auto":
            return impl
        return next(name for name in self.impls if impl_available(name))

    def make(self, input_size, hidden_size, num_layers, bidirectional, dropout, impl: str = "auto") -> nn.Module:
        impl = self.resolve_impl(impl)
        if impl not in self.impls:
            raise ValueError(f"cell '{self.name}' has no '{impl}' implementation; valid: auto, {', '.join(self.impls)}")
        return self.impls[impl](input_size, hidden_size, num_layers, bidirectional, dropout)


IMPLS = ("torch", "fused", "reference")  # model.impl values besides "auto"


def impl_available(impl: str) -> bool:
    """fused is only chosen by "auto" when its compiled kernels load (else it would run its
    slower pure-PyTorch fallback) and no GPU is visible (its kernels are CPU only)."""
    if impl == "fused":
        from grucli import fused

        return not torch.cuda.is_available() and fused.compiled_available()
    return True


def _torch_rnn(cls, **fixed):
    def make(input_size, hidden_size, num_layers, bidirectional, dropout):
        return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                   dropout=dropout if num_layers > 1 else 0.0, batch_first=True, **fixed)

    return make


def _ours(module: str, cls: str):
    """A maker for one of grucli's stacks (imported on first use)."""

    def make(input_size, hidden_size, num_layers, bidirectional, dropout):
        import importlib

        stack = getattr(importlib.import_module(f"grucli.{module}"), cls)
        return stack(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                     dropout=dropout if num_layers > 1 else 0.0)

    return make


CELLS: dict[str, Cell] = {
    c.name: c
    for c in [
        Cell("rnn", 1, {"fused": _ours("fused", "RNN"), "torch": _torch_rnn(nn.RNN, nonlinearity="tanh"),
                        "reference": _ours("cells", "RNN")}, summary="Elman RNN, tanh (torch.nn.RNN)"),
        Cell("rnn_relu", 1, {"fused": _ours("fused", "RNNReLU"), "torch": _torch_rnn(nn.RNN, nonlinearity="relu"),
                             "reference": _ours("cells", "RNNReLU")}, summary="Elman RNN, ReLU (torch.nn.RNN)"),
        Cell("gru", 3, {"fused": _ours("fused", "GRU"), "torch": _torch_rnn(nn.GRU),
                        "reference": _ours("cells", "GRU")},
             summary="GRU, reset gate after the hidden matmul (torch.nn.GRU)"),
        Cell("gru_cho", 3, {"reference": _ours("cells", "GRUCho")},
             summary="GRU, reset gate before the hidden matmul (Cho et al. 2014, d2l)"),
        Cell("lstm", 4, {"fused": _ours("fused", "LSTM"), "torch": _torch_rnn(nn.LSTM),
                         "reference": _ours("cells", "LSTM")}, final_h=lambda state: state[0],
             summary="LSTM without peepholes (torch.nn.LSTM)"),
    ]
}


def recurrent_params(gates: int, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False) -> int:
    """Closed form: G*H*(I + H) + 2*G*H per layer and direction; layers above the first
    read the D*H outputs of the layer below."""
    d = 2 if bidirectional else 1
    total = 0
    for layer in range(layers):
        i = input_size if layer == 0 else d * hidden
        total += d * (gates * hidden * (i + hidden) + 2 * gates * hidden)
    return total


def model_params(cell: str, hidden: int, *, input_size: int, output_size: int, layers: int = 1,
                 bidirectional: bool = False, vocab_size: int | None = None, embed_dim: int | None = None) -> int:
    """Total parameters of a SequenceModel: embedding (if any) + recurrent stack + linear head."""
    d = 2 if bidirectional else 1
    embed = vocab_size * embed_dim if (vocab_size and embed_dim) else 0
    rnn_in = embed_dim if (vocab_size and embed_dim) else input_size
    head = d * hidden * output_size + output_size
    return embed + recurrent_params(CELLS[cell].gates, rnn_in, hidden, layers, bidirectional) + head


def hidden_for_budget(budget: int, cell: str, max_hidden: int = 8192, **dims) -> int:
    """The hidden size whose total parameter count is closest to `budget` (ties -> smaller).
    The count grows monotonically with H, so we walk up until it passes the budget."""
    best, best_gap = 1, abs(model_params(cell, 1, **dims) - budget)
    for h in range(2, max_hidden + 1):
        gap = abs(model_params(cell, h, **dims) - budget)
        if gap < best_gap:
            best, best_gap = h, gap
        if model_params(cell, h, **dims) > budget:
            break
    return best


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class SequenceModel(nn.Module):
    """Input (embedding or one-hot for tokens) -> recurrent stack -> dropout -> linear head.

    head="last": one output per sequence from the final hidden state (for a bidirectional
    cell: the forward state at the last true step and the backward state at step 0).
    head="each": one output per step. Padded batches (lengths given) are packed, so padding
    never changes a result."""

    def __init__(self, cell: str, *, input_size: int, output_size: int, hidden_size: int, head: str,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 tokens: bool = False, embed_dim: int | None = None, forget_bias: float | None = None,
                 impl: str = "auto"):
        super().__init__()
        self.cell = CELLS[cell]
        self.head_kind = head
        self.tokens, self.vocab_size = tokens, input_size if tokens else None
        self.layers, self.dirs, self.hidden = num_layers, 2 if bidirectional else 1, hidden_size
        self.embed = nn.Embedding(input_size, embed_dim) if tokens and embed_dim else None
        rnn_in = embed_dim if self.embed is not None else input_size
        self.rnn = self.cell.make(rnn_in, hidden_size, num_layers, bidirectional, dropout, impl)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.dirs * hidden_size, output_size)
        if forget_bias is not None and self.cell.gates == 4:
            set_forget_bias(self.rnn, forget_bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tokens:
            return x  # (B, T, I)
        if self.embed is not None:
            return self.embed(x)  # (B, T, E)
        return F.one_hot(x, self.vocab_size).float()  # (B, T, V)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = self.encode(x)  # (B, T, I)
        B, T = z.shape[:2]
        if lengths is not None:
            z = pack_padded_sequence(z, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(z)
        if self.head_kind == "last":
            h_n = self.cell.final_h(state)  # (L*D, B, H)
            if self.dirs == 1:
                feat = h_n[-1]  # (B, H); one autograd node, not a chain of views (it counts on tiny models)
            else:
                feat = h_n[-2:].transpose(0, 1).reshape(B, 2 * self.hidden)  # (B, 2H): forward, backward
        else:
            if lengths is not None:
                out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
            feat = out  # (B, T, D*H)
        return self.head(self.drop(feat))  # (B, O) or (B, T, O)


def set_forget_bias(lstm: nn.Module, value: float) -> None:
    """Set the LSTM forget-gate bias (gate block 1 of i, f, g, o) so that b_ih + b_hh = value."""
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_"):
                h = p.shape[0] // 4
                p[h:2 * h] = value if name.startswith("bias_ih") else 0.0
