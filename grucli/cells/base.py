"""What a cell is, as data: the `Cell` record every cell module fills in once.

A cell module holds its equations (the docstring and `step`), its parameters, which of
grucli's implementations it has, and how it is drawn. Nothing here imports torch: the
registry (names, parameter counts, colours) loads in milliseconds, so `grucli --help`,
config validation and `grucli report` never pay for torch. The step functions use
`torch` through the proxy below, which imports it on first use.

Conventions every step follows:
    x (B, I) input at one step, state a tuple (h,) or (h, c) of (B, H), w the weights of
    one layer and direction by name (w.weight_ih, w.weight_hh, ...).
    `project(x, w)` is the part of every gate that reads only the input (X W_x + b_x); it
    holds no state, so the reference forward computes it for all steps in one product.
    `step(xw, state, w) -> (new state, {gate name: (B, H)})`: one time step, given xw.
The same step serves the reference forward (model.impl: reference) and `grucli inspect`,
so each equation is written once in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


class _LazyTorch:
    """`torch`, imported when a step first touches it (attribute access forwards)."""

    def __getattr__(self, name):
        import torch as _torch

        return getattr(_torch, name)


torch = _LazyTorch()


@dataclass(frozen=True)
class Param:
    """One parameter of a layer and direction. Stored as `<name>_l<k>[_reverse]`, as torch
    names its RNN weights, so cells in torch's layout load torch's state_dicts as they are."""

    name: str  # e.g. weight_ih, weight_hh, bias_ih, bias_hh, or the cell's own (weight_peep, ln_ih_gain)
    shape: Callable[[int, int], tuple[int, ...]]  # (layer input size I, hidden size H) -> shape
    init: str = "uniform"  # uniform: U(-1/sqrt(H), 1/sqrt(H)) as torch | ones | zeros | uniform01: U(0, 1)


def torch_layout(blocks: int) -> tuple[Param, ...]:
    """torch's four RNN parameters with `blocks` gate blocks stacked on dim 0."""
    return (Param("weight_ih", lambda I, H: (blocks * H, I)), Param("weight_hh", lambda I, H: (blocks * H, H)),
            Param("bias_ih", lambda I, H: (blocks * H,)), Param("bias_hh", lambda I, H: (blocks * H,)))


def project(x, w):
    """X W_x^T + b_x for every gate block: the input's share of the pre-activations."""
    return x @ w.weight_ih.T + w.bias_ih


@dataclass(frozen=True)
class Reduction:
    """With some gates held at constants, the cell computes another registry cell: its
    `step` accepts `force={gate: value}`, and `weights` maps one layer's weights (by name)
    to the other cell's. (The claims suite checks it on trained weights.)"""

    cell: str  # the registry cell it becomes
    force: dict  # gate name -> the constant it is held at
    weights: Callable  # SimpleNamespace of this cell's layer weights -> the other cell's
    statement: str  # the reduction in words, in this cell's convention


@dataclass(frozen=True)
class Display:
    """How every table and figure shows the cell (Okabe-Ito colours, colour-blind safe)."""

    label: str  # as in legends: "GRU"
    colour: str
    marker: str  # matplotlib marker


@dataclass(frozen=True)
class Cell:
    """A registry entry: everything grucli knows about one recurrent cell."""

    name: str  # registry and config name (model.cell)
    summary: str  # one line for `grucli cells`
    citation: str  # where the equations come from
    equation: str  # one line, printed on inspect figures
    formula: str  # closed-form parameters per layer and direction, in I and H (tests evaluate it)
    params: tuple[Param, ...]  # per layer and direction, in storage order
    step: Callable  # (xw, state, w) -> (state, gates)
    display: Display
    project: Callable = project  # (x, w) -> xw, the state-free part of the pre-activations
    gates: dict[str, str] = field(default_factory=dict)  # sigmoid gates inspect shows, name -> role; the first keeps the past
    states: tuple[str, ...] = ("h",)  # ("h", "c") for cells with a separate memory
    bounded: bool = True  # h stays in [-1, 1] (tanh-bounded); relu cells are not
    torch_module: tuple[str, dict] | None = None  # torch.nn class name and kwargs with the same model
    fused: str | None = None  # kernel family in grucli.cells.fused, if grucli's C++ kernels cover it
    forget_gate: int | None = None  # gate block whose bias `model.forget_bias` sets
    bias_params: tuple[str, ...] = ("bias_ih", "bias_hh")  # biases that add up in a pre-activation
    notes: dict = field(default_factory=dict)  # free-form facts (e.g. why no torch module)
    reduces_to: Reduction | None = None  # gates held fixed -> another cell (GRU with r = 1, z = 0 -> tanh RNN)

    @property
    def impls(self) -> tuple[str, ...]:
        """model.impl values this cell has, fastest first ("auto" takes the first available)."""
        return tuple(i for i, ok in (("fused", self.fused), ("torch", self.torch_module), ("reference", True)) if ok)

    def layer_params(self, input_size: int, hidden: int) -> int:
        """Parameters of one layer and direction."""
        total = 0
        for p in self.params:
            n = 1
            for d in p.shape(input_size, hidden):
                n *= d
            total += n
        return total

    def matmul_macs(self, input_size: int, hidden: int) -> int:
        """Multiply-adds of the weight matrices per step and sequence (2-D parameters)."""
        total = 0
        for p in self.params:
            shape = p.shape(input_size, hidden)
            if len(shape) == 2:
                total += shape[0] * shape[1]
        return total
