"""The layer/direction/packing plumbing shared by grucli's own implementations of a cell,
(grucli.cells.make picks the implementation).

`RecurrentLayers` stores each layer's and direction's parameters as the cell lists them,
named like torch's (`weight_ih_l{k}[_reverse]`, ...), so a cell in torch's layout has
exactly torch's state_dict. Subclasses supply `run`, which runs one layer in one direction.

Time-major inside: x (T, B, I) -> out (T, B, H). Padded steps (from a PackedSequence) leave
the state unchanged, so a reverse pass over a padded batch starts at each sequence's own
last step, exactly like torch's packed RNNs.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from grucli.cells.base import Cell

INIT = {
    "uniform": lambda p, H: nn.init.uniform_(p, -1 / math.sqrt(H), 1 / math.sqrt(H)),  # torch's RNN init
    "ones": lambda p, H: nn.init.ones_(p),
    "zeros": lambda p, H: nn.init.zeros_(p),
    "uniform01": lambda p, H: nn.init.uniform_(p, 0.0, 1.0),
}


def suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


def layer_weights(module: nn.Module, cell: Cell, layer: int, direction: int = 0) -> SimpleNamespace:
    """The parameters of one layer and direction of any implementation (torch's modules
    included), by the cell's names: w.weight_ih, w.weight_hh, ..."""
    sfx = suffix(layer, direction)
    return SimpleNamespace(**{p.name: getattr(module, p.name + sfx) for p in cell.params})


class RecurrentLayers(nn.Module):
    """torch's RNN interface (batch_first): forward(x (B, T, I) or PackedSequence, hx=None)
    -> (out (B, T, D*H) or PackedSequence, h_n (L*D, B, H)); with a memory, (h_n, c_n)."""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.cell = cell
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout, self.batch_first = bidirectional, dropout, True
        self.dirs = 2 if bidirectional else 1
        self.states = len(cell.states)
        self._names, self._init = [], {}
        for layer in range(num_layers):
            i = input_size if layer == 0 else self.dirs * hidden_size
            names = []
            for d in range(self.dirs):
                for p in cell.params:
                    self.register_parameter(p.name + suffix(layer, d), nn.Parameter(torch.empty(p.shape(i, hidden_size))))
                    self._init[p.name + suffix(layer, d)] = INIT[p.init]
                names.append([p.name + suffix(layer, d) for p in cell.params])
            self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each parameter by its cell's rule (torch's U(-1/sqrt(H), 1/sqrt(H)) unless the cell
        says otherwise), in registration order, so the same seed gives torch's weights."""
        for name, p in self.named_parameters():
            self._init[name](p, self.hidden_size)

    def weights(self, layer: int, direction: int) -> SimpleNamespace:
        p = self._parameters
        return SimpleNamespace(**{spec.name: p[n] for spec, n in zip(self.cell.params, self._names[layer][direction])})

    def run(self, x, state, w, mask, reverse: bool):
        """One layer, one direction: x (T, B, I), state tuple of (B, H), w its weights, mask
        (T, B) bool or None -> out (T, B, H) (the state after every step), final state tuple."""
        raise NotImplementedError

    def forward(self, x, hx=None):
        packed = isinstance(x, PackedSequence)
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(x, batch_first=True)  # (B, T, I), original order
        B, T = x.shape[:2]
        mask = None
        if lengths is not None and int(lengths.min()) < T:
            mask = (torch.arange(T)[:, None] < lengths[None, :]).to(x.device)  # (T, B)
        layer_in = x.transpose(0, 1)  # (T, B, I)
        zeros = x.new_zeros(self.num_layers * self.dirs, B, self.hidden_size)
        if hx is None:
            hx = (zeros,) * self.states
        elif self.states == 1:
            hx = (hx,)
        finals: list[tuple[torch.Tensor, ...]] = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.dirs):
                k = layer * self.dirs + d
                out, final = self.run(layer_in, tuple(s[k] for s in hx), self.weights(layer, d), mask, bool(d))
                outs.append(out)
                finals.append(final)
            layer_in = outs[0] if self.dirs == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in.transpose(0, 1)  # (B, T, D*H)
        if packed:
            out = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=False)
        if len(finals) == 1:
            state = tuple(f.unsqueeze(0) for f in finals[0])  # each (1, B, H)
        else:
            state = tuple(torch.stack([f[i] for f in finals]) for i in range(self.states))  # each (L*D, B, H)
        return out, state[0] if self.states == 1 else state

    def extra_repr(self) -> str:
        return (f"{self.cell.name}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")


class ReferenceLayers(RecurrentLayers):
    """model.impl: reference. The cell's own `step`, once per time step in Python, after
    one product for the input's share of every step (`project`)."""

    def run(self, x, state, w, mask, reverse):
        xw = self.cell.project(x, w)  # (T, B, G*H)
        outs = [None] * x.shape[0]
        for t in (reversed(range(x.shape[0])) if reverse else range(x.shape[0])):
            new, _ = self.cell.step(xw[t], state, w)
            if mask is not None:
                keep = mask[t][:, None]  # (B, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
            state = new
            outs[t] = state[0]
        return torch.stack(outs), state  # (T, B, H)
