"""Shared helper for the cell tests: run two implementations of a cell on the same weights
and inputs, and compare outputs, final states and every parameter's gradient."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grucli import cells


def run(module, x, lengths=None):
    module.zero_grad()
    z = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if lengths is not None else x
    out, state = module(z)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    states = state if isinstance(state, tuple) else (state,)
    # a loss that weighs every output and final-state element differently
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=x.dtype).view_as(out)).sum()
    loss = loss + sum((s * torch.linspace(1, 2, s.numel(), dtype=x.dtype).view_as(s)).sum() for s in states)
    loss.backward()
    return out.detach(), [s.detach() for s in states], {n: p.grad.clone() for n, p in module.named_parameters()}


def compare(cell, impl, *, against="torch", layers, bidirectional, dtype, packed=False, I=5, H=7, B=3, T=6, seed=0):
    """Max relative error of (outputs, states, gradients) of `impl` vs `against`, two
    implementations of `cell` sharing weights (against's initialisation)."""
    gen = torch.Generator().manual_seed(seed)
    spec = cells.get(cell)
    ref = cells.make(spec, I, H, layers, bidirectional, impl=against).to(dtype)
    ours = cells.make(spec, I, H, layers, bidirectional, impl=impl).to(dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, generator=gen, dtype=dtype)
    lengths = torch.tensor([T, max(1, T // 2), 1] + [T] * (B - 3))[:B] if packed else None
    a, b = run(ref, x, lengths), run(ours, x, lengths)
    assert set(a[2]) == set(b[2])
    rel = lambda u, v: ((u - v).abs().max() / u.abs().max().clamp_min(1e-12)).item()  # noqa: E731
    return max([rel(a[0], b[0])] + [rel(u, v) for u, v in zip(a[1], b[1])] + [rel(a[2][n], b[2][n]) for n in a[2]])


def against_equations(cell, equations, *, layers=2, bidirectional=True, packed=True, I=3, H=4, B=4, T=5, seed=0):
    """Max relative error of the cell's reference implementation against `equations`, an
    independent statement of the same step written in the test, (x (B, I), state, w) ->
    state, run through the same stack (layers, directions, padding). float64; outputs,
    final states and every parameter's gradient."""
    from dataclasses import replace

    spec = cells.get(cell)
    independent = replace(spec, project=lambda x, w: x, step=lambda x, state, w: (equations(x, state, w), {}))
    gen = torch.Generator().manual_seed(seed)
    ref = cells.make(spec, I, H, layers, bidirectional, impl="reference").double()
    with torch.no_grad():  # away from init: gains, peepholes and biases all matter
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.6)
    ours = cells.make(independent, I, H, layers, bidirectional, impl="reference").double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, I, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([T, max(1, T // 2), 1] + [T] * (B - 3))[:B] if packed else None
    a, b = run(ref, x, lengths), run(ours, x, lengths)
    rel = lambda u, v: ((u - v).abs().max() / u.abs().max().clamp_min(1e-12)).item()  # noqa: E731
    return max([rel(a[0], b[0])] + [rel(u, v) for u, v in zip(a[1], b[1])] + [rel(a[2][n], b[2][n]) for n in a[2]])
