"""Gate activations and gradient flow, computed from a trained model's own weights.

torch's nn.RNN / nn.GRU / nn.LSTM (and grucli's fused kernels) never expose their gates,
so this re-runs one layer step by step with the cell's own `step` (grucli.cells), the same
function the reference implementation runs. Every implementation keeps the cell's
parameter names, so any of them can be read. The per-step hidden states returned are
ordinary tensors in the autograd graph: `torch.autograd.grad(loss, trace.steps)` gives
dL/dh_t for every t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grucli.cells import Cell
from grucli.cells.layers import layer_weights

Tensor = torch.Tensor


@dataclass
class Trace:
    """One layer and direction unrolled over a batch. Steps are indexed by input position
    t = 0..T-1 for both directions; a backward direction processes t = L-1 down to 0."""

    out: Tensor  # (B, T, H) hidden state per step, zero at padded steps (as torch's packed output)
    gates: dict[str, Tensor]  # name -> (B, T, H), every gate the step reports
    final: Tensor  # (B, H) hidden state after the direction's last valid step
    steps: list[Tensor]  # T tensors (B, H): h_t as it flows on, for torch.autograd.grad
    valid: Tensor  # (B, T) bool, steps inside each sequence's length
    memory_steps: list[Tensor] | None = None  # cells with a memory: T tensors (B, H), c_t as it flows on


def valid_mask(B: int, T: int, lengths: Tensor | None, device=None) -> Tensor:
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]  # (B, T)


def unroll(cell: Cell, w, x: Tensor, lengths: Tensor | None = None, reverse: bool = False) -> Trace:
    """Run one layer and direction (weights `w`) over x (B, T, I) from a zero state. Padded
    steps (t >= length) leave the state unchanged, so only valid steps count -- the same
    result as torch on a packed sequence."""
    B, T, _ = x.shape
    valid = valid_mask(B, T, lengths, x.device)
    state = tuple(x.new_zeros(B, _hidden(w)) for _ in cell.states)
    xw = cell.project(x, w)  # (B, T, G*H)
    steps: list[Tensor] = [None] * T  # type: ignore[list-item]
    memory: list[Tensor] = [None] * T  # type: ignore[list-item]
    gates: dict[str, list[Tensor]] = {}
    for t in (reversed(range(T)) if reverse else range(T)):
        new, g = cell.step(xw[:, t], state, w)
        keep = valid[:, t, None]  # (B, 1)
        state = tuple(torch.where(keep, a, b) for a, b in zip(new, state))
        steps[t] = state[0]
        if len(new) > 1:
            memory[t] = new[1]  # the c_t that h_t is made from and the next step reads (at valid steps)
        for name, value in g.items():
            gates.setdefault(name, [None] * T)[t] = value  # type: ignore[list-item]
    out = torch.stack(steps, 1) * valid[..., None]  # (B, T, H)
    return Trace(out, {k: torch.stack(v, 1) for k, v in gates.items()}, state[0], steps, valid,
                 memory if len(cell.states) > 1 else None)


def _hidden(w) -> int:
    """H of a layer's weights: the last dimension of the recurrent weight (a matrix or, for
    cells with elementwise recurrence, a vector)."""
    return w.weight_hh.shape[-1]


def run_stack(model, x: Tensor, lengths: Tensor | None = None) -> list[list[Trace]]:
    """Every layer and direction of a grucli SequenceModel, step by step (eval mode: no
    dropout between layers). Returns traces[layer][direction]."""
    inp = model.encode(x)  # (B, T, I)
    traces = []
    for k in range(model.layers):
        dirs = [unroll(model.cell, layer_weights(model.rnn, model.cell, k, d), inp, lengths, reverse=bool(d))
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
    """‖∂L/∂h_t‖ (wrt="h") or, for a cell with a memory, ‖∂L/∂c_t‖ (wrt="c") for every step
    of layer `layer`, one (B, T) tensor per direction (NaN at padded steps). L is the sum over
    the batch of each sequence's loss (loss_fn is a mean over the batch, so it is multiplied
    by B): each row is the gradient of its own loss."""
    with torch.enable_grad():
        traces = run_stack(model, x, lengths)
        loss = loss_fn(head_output(model, traces), y) * len(x)
        norms = []
        for tr in traces[layer]:
            steps = tr.steps if wrt == "h" else tr.memory_steps
            if steps is None:
                raise ValueError(f"no state '{wrt}' in this cell")
            grads = torch.autograd.grad(loss, steps, retain_graph=True, allow_unused=True)
            g = torch.stack([torch.zeros_like(s) if d is None else d for d, s in zip(grads, steps)], 1)
            norms.append(torch.where(tr.valid, g.norm(dim=-1), torch.nan).detach())  # (B, T)
    return norms
