"""The layer/direction/packing plumbing shared by grucli's own recurrent implementations.

`RecurrentStack` holds its weights exactly like torch's nn.RNN/nn.GRU/nn.LSTM
(`weight_ih_l{k}[_reverse]`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, gate blocks in
torch's order), so parameter counts are identical and a state_dict copies between
implementations. Subclasses supply one method, `run`, that runs one layer in one direction.

Time-major inside: x (T, B, I) -> out (T, B, H). Padded steps (from a PackedSequence) leave
the state unchanged, so a reverse pass over a padded batch starts at each sequence's own
last step, exactly like torch's packed RNNs.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


class RecurrentStack(nn.Module):
    """torch's RNN interface (batch_first): forward(x (B, T, I) or PackedSequence, hx=None)
    -> (out (B, T, D*H) or PackedSequence, h_n (L*D, B, H)); LSTM state is (h_n, c_n)."""

    gates = 1  # G: weight blocks per matrix
    states = 1  # 1: h; 2: (h, c)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, batch_first: bool = True):
        super().__init__()
        if not batch_first:
            raise ValueError("grucli's recurrent stacks are batch_first only")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout, self.batch_first = bidirectional, dropout, batch_first
        self.dirs = 2 if bidirectional else 1
        G, H = self.gates, hidden_size
        for layer in range(num_layers):
            i = input_size if layer == 0 else self.dirs * H
            for d in range(self.dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                self.register_parameter("weight_ih" + sfx, nn.Parameter(torch.empty(G * H, i)))
                self.register_parameter("weight_hh" + sfx, nn.Parameter(torch.empty(G * H, H)))
                self.register_parameter("bias_ih" + sfx, nn.Parameter(torch.empty(G * H)))
                self.register_parameter("bias_hh" + sfx, nn.Parameter(torch.empty(G * H)))
        self._names = [[tuple(n + f"_l{layer}" + ("_reverse" if d else "")
                              for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for d in range(self.dirs)]
                       for layer in range(num_layers)]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self, layer: int, direction: int) -> tuple[torch.Tensor, ...]:
        p = self._parameters
        return tuple(p[n] for n in self._names[layer][direction])

    def run(self, x, state, weights, mask, reverse: bool):
        """One layer, one direction: x (T, B, I), state tuple of (B, H), mask (T, B) bool or
        None -> out (T, B, H) (the state after every step), final state tuple."""
        raise NotImplementedError

    def forward(self, x, hx=None):
        packed = isinstance(x, PackedSequence)
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(x, batch_first=True)  # (B, T, I), original order
        B, T = x.shape[:2]
        mask = None
        if lengths is not None and int(lengths.min()) < T:
            mask = torch.arange(T)[:, None] < lengths[None, :]  # (T, B)
            mask = mask.to(x.device)
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
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dropout={self.dropout}")
