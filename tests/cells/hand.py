"""Arithmetic by hand for the cell tests: plain Python floats, no torch, so a step computed
here is independent of the code under test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def dot(row, v) -> float:
    return sum(a * b for a, b in zip(row, v))


def affine(W, b, v, j) -> float:
    """Row j of W v + b."""
    return dot(W[j], v) + b[j]


def layer_norm(a: list[float], gain: list[float], shift: list[float], eps: float = 1e-5) -> list[float]:
    mean = sum(a) / len(a)
    var = sum((v - mean) ** 2 for v in a) / len(a)
    return [g * (v - mean) / math.sqrt(var + eps) + s for v, g, s in zip(a, gain, shift)]


def known_weights(cell, I: int, H: int) -> tuple[SimpleNamespace, dict[str, list]]:
    """Distinct fixed values for every parameter of one layer (float64), as tensors and as lists."""
    tensors = {}
    for n, p in enumerate(cell.params):
        shape = p.shape(I, H)
        count = math.prod(shape)
        tensors[p.name] = torch.linspace(-0.9, 0.8, count, dtype=torch.float64).reshape(shape) * (1 + 0.13 * n)
    return SimpleNamespace(**tensors), {k: v.tolist() for k, v in tensors.items()}


def run_step(cell, w, x: list[float], state: list[list[float]]):
    """The cell's own step (after its projection) on one sequence; plain lists back."""
    xt = torch.tensor([x], dtype=torch.float64)
    st = tuple(torch.tensor([s], dtype=torch.float64) for s in state)
    new, gates = cell.step(cell.project(xt, w), st, w)
    return [s[0].tolist() for s in new], {k: v[0].tolist() for k, v in gates.items()}
