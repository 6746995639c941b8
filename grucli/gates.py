"""Gate activations and gradient flow, computed from a trained model's own torch weights.

torch's fused nn.RNN / nn.GRU / nn.LSTM never expose their gates, so this module re-runs
one layer step by step with the weights `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}...`,
`bias_ih_l{k}...`, `bias_hh_l{k}...`, in torch's conventions (see each step's docstring).
The per-step hidden states it returns are ordinary tensors in the autograd graph, so
`torch.autograd.grad(loss, trace.steps)` gives dL/dh_t for every t.

The rule for a layer is looked up by the grucli cell name (grucli.models.CELLS) in RULES:
adding a cell means one step function and one registry line. Every implementation of a
cell (torch, fused, reference) keeps torch's parameter names, so any of them can be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

Tensor = torch.Tensor


@dataclass(frozen=True)
class LayerWeights:
    """One layer and direction of a torch recurrent module. G gate blocks stacked on dim 0."""

    cell: str  # grucli cell name, the key of RULES
    w_ih: Tensor  # (G*H, I)
    w_hh: Tensor  # (G*H, H)
    b_ih: Tensor  # (G*H,)
    b_hh: Tensor  # (G*H,)

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[1]


def layer_weights(rnn: nn.Module, cell: str, layer: int, reverse: bool = False) -> LayerWeights:
    """The weights of layer `layer` (0-based, torch's l{k}) and one direction."""
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
    zeros = w_ih.new_zeros(w_ih.shape[0])
    b_ih, b_hh = getattr(rnn, "bias_ih" + sfx, zeros), getattr(rnn, "bias_hh" + sfx, zeros)
    return LayerWeights(cell, w_ih, w_hh, b_ih, b_hh)


# --------------------------------------------------------------------------- one step per cell
# state: a tuple, (h,) or (h, c) for the LSTM; x (B, I), h and c (B, H).

def gru_step(x: Tensor, state: tuple[Tensor, ...], w: LayerWeights) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """torch.nn.GRU (reset gate applied after the hidden matmul):
        r = σ(W_ir x + b_ir + W_hr h + b_hr)
        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h          z ≈ 1 keeps the past, z ≈ 0 writes n"""
    (h,) = state
    i_r, i_z, i_n = (x @ w.w_ih.T + w.b_ih).chunk(3, -1)  # (B, H) each
    h_r, h_z, h_n = (h @ w.w_hh.T + w.b_hh).chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h,), {"r": r, "z": z, "n": n}


def gru_cho_step(x: Tensor, state: tuple[Tensor, ...], w: LayerWeights) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """GRU with the reset gate before the hidden matmul (Cho et al. 2014; grucli cell gru_cho):
        n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), r, z and h' as in gru_step"""
    (h,) = state
    i_r, i_z, i_n = (x @ w.w_ih.T + w.b_ih).chunk(3, -1)  # (B, H) each
    W_hr, W_hz, W_hn = w.w_hh.chunk(3, 0)
    b_hr, b_hz, b_hn = w.b_hh.chunk(3, 0)
    r = torch.sigmoid(i_r + h @ W_hr.T + b_hr)
    z = torch.sigmoid(i_z + h @ W_hz.T + b_hz)
    n = torch.tanh(i_n + (r * h) @ W_hn.T + b_hn)
    return ((1 - z) * n + z * h,), {"r": r, "z": z, "n": n}


def lstm_step(x: Tensor, state: tuple[Tensor, ...], w: LayerWeights) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """torch.nn.LSTM (no peepholes), gate blocks (i, f, g, o):
        i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*),  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')      f ≈ 1 keeps the cell memory"""
    h, c = state
    i, f, g, o = (x @ w.w_ih.T + w.b_ih + h @ w.w_hh.T + w.b_hh).chunk(4, -1)  # (B, H) each
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    return (o * torch.tanh(c), c), {"i": i, "f": f, "g": g, "o": o}


def _elman(act: Callable[[Tensor], Tensor]):
    def step(x, state, w):
        """torch.nn.RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh); no gates."""
        (h,) = state
        return (act(x @ w.w_ih.T + w.b_ih + h @ w.w_hh.T + w.b_hh),), {}

    return step


@dataclass(frozen=True)
class Rule:
    step: Callable  # (x, state, weights) -> (state, {gate: (B, H)})
    gates: tuple[str, ...]  # the sigmoid gates worth showing; the first is the one that keeps the past
    n_states: int  # 1: h, 2: (h, c)
    equation: str  # the convention, as printed on figures


RULES: dict[str, Rule] = {
    "rnn": Rule(_elman(torch.tanh), (), 1, "Elman RNN: h_t = tanh(W_ih x_t + W_hh h_{t−1} + b)  (no gates)"),
    "rnn_relu": Rule(_elman(torch.relu), (), 1, "Elman RNN: h_t = relu(W_ih x_t + W_hh h_{t−1} + b)  (no gates)"),
    "gru": Rule(gru_step, ("z", "r"), 1,
                "torch GRU: h_t = (1−z_t)⊙n_t + z_t⊙h_{t−1}  (z≈1 keeps the past, z≈0 writes the candidate n_t)"),
    "gru_cho": Rule(gru_cho_step, ("z", "r"), 1,
                    "GRU (Cho 2014, reset before matmul): h_t = (1−z_t)⊙n_t + z_t⊙h_{t−1}  (z≈1 keeps the past)"),
    "lstm": Rule(lstm_step, ("f", "i", "o"), 2,
                 "torch LSTM: c_t = f_t⊙c_{t−1} + i_t⊙g_t, h_t = o_t⊙tanh(c_t)  (f≈1 keeps the cell memory)"),
}


def rule_for(cell: str) -> Rule:
    if cell not in RULES:
        from grucli.errors import GrucliError

        raise GrucliError(f"cell '{cell}': inspect has no gate rule for it (add one to grucli.gates.RULES)")
    return RULES[cell]


# --------------------------------------------------------------------------- unrolling
@dataclass
class Trace:
    """One layer and direction unrolled over a batch. Steps are indexed by input position
    t = 0..T-1 for both directions; a backward direction processes t = L-1 down to 0."""

    out: Tensor  # (B, T, H) hidden state per step, zero at padded steps (as torch's packed output)
    gates: dict[str, Tensor]  # name -> (B, T, H), every gate block including candidates (n, g)
    final: Tensor  # (B, H) hidden state after the direction's last valid step
    steps: list[Tensor]  # T tensors (B, H): h_t as it flows on, for torch.autograd.grad
    valid: Tensor  # (B, T) bool, steps inside each sequence's length
    cell_steps: list[Tensor] | None = None  # LSTM: T tensors (B, H), the cell state c_t as it flows on


def valid_mask(B: int, T: int, lengths: Tensor | None, device=None) -> Tensor:
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]  # (B, T)


def unroll(w: LayerWeights, x: Tensor, lengths: Tensor | None = None, reverse: bool = False) -> Trace:
    """Run one layer and direction over x (B, T, I) from a zero state. Padded steps
    (t >= length) leave the state unchanged, so only valid steps count -- the same result
    as torch on a packed sequence."""
    rule = RULES[w.cell]
    B, T, _ = x.shape
    valid = valid_mask(B, T, lengths, x.device)
    state = tuple(x.new_zeros(B, w.hidden) for _ in range(rule.n_states))
    steps: list[Tensor] = [None] * T  # type: ignore[list-item]
    cells: list[Tensor] = [None] * T  # type: ignore[list-item]
    gates: dict[str, list[Tensor]] = {}
    for t in (reversed(range(T)) if reverse else range(T)):
        new, g = rule.step(x[:, t], state, w)
        keep = valid[:, t, None]  # (B, 1)
        state = tuple(torch.where(keep, a, b) for a, b in zip(new, state))
        steps[t] = state[0]
        if len(new) > 1:
            cells[t] = new[1]  # the c_t that h_t is made from and the next step reads (at valid steps)
        for name, value in g.items():
            gates.setdefault(name, [None] * T)[t] = value  # type: ignore[list-item]
    out = torch.stack(steps, 1) * valid[..., None]  # (B, T, H)
    return Trace(out, {k: torch.stack(v, 1) for k, v in gates.items()}, state[0], steps, valid,
                 cells if rule.n_states > 1 else None)


def run_stack(model, x: Tensor, lengths: Tensor | None = None) -> list[list[Trace]]:
    """Every layer and direction of a grucli SequenceModel, step by step (eval mode: no
    dropout between layers). Returns traces[layer][direction]."""
    inp = model.encode(x)  # (B, T, I)
    traces = []
    for k in range(model.layers):
        dirs = [unroll(layer_weights(model.rnn, model.cell.name, k, bool(d)), inp, lengths, reverse=bool(d))
                for d in range(model.dirs)]
        traces.append(dirs)
        inp = torch.cat([tr.out for tr in dirs], -1)  # (B, T, D*H)
    return traces


def head_output(model, traces: list[list[Trace]]) -> Tensor:
    """The model's output from the unrolled stack, as SequenceModel.forward computes it."""
    top = traces[-1]
    if model.head_kind == "last":
        feat = torch.cat([tr.final for tr in top], -1)  # (B, D*H)
    else:
        feat = torch.cat([tr.out for tr in top], -1)  # (B, T, D*H)
    return model.head(feat)


def grad_norms(model, x: Tensor, y: Tensor, lengths: Tensor | None, loss_fn, layer: int,
               wrt: str = "h") -> list[Tensor]:
    """‖∂L/∂h_t‖ (wrt="h") or, for an LSTM, ‖∂L/∂c_t‖ (wrt="c", the cell state) for every step
    of layer `layer`, one (B, T) tensor per direction (NaN at padded steps). L is the sum over
    the batch of each sequence's loss (loss_fn is a mean over the batch, so it is multiplied
    by B): each row is the gradient of its own loss."""
    with torch.enable_grad():
        traces = run_stack(model, x, lengths)
        loss = loss_fn(head_output(model, traces), y) * len(x)
        norms = []
        for tr in traces[layer]:
            steps = tr.steps if wrt == "h" else tr.cell_steps
            if steps is None:
                raise ValueError(f"no state '{wrt}' in this cell")
            grads = torch.autograd.grad(loss, steps, retain_graph=True, allow_unused=True)
            g = torch.stack([torch.zeros_like(s) if d is None else d for d, s in zip(grads, steps)], 1)
            norms.append(torch.where(tr.valid, g.norm(dim=-1), torch.nan).detach())  # (B, T)
    return norms
