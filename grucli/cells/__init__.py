"""The cell registry: name -> Cell (grucli.cells.base). Each cell is one module in this
folder holding its equations, parameters, implementations and display facts.

Adding a cell: write `<name>.py` defining a `Cell` (copy gru.py), add it to the list below
(its position is its order in every table and legend), and add its tests. Nothing outside
this package asks which cell it is running.

Importing this package does not import torch (see base.py).
"""

from __future__ import annotations

from grucli.cells import elman, gru, gru_cho, indrnn, layernorm, lstm, lstm_peephole, mgu, ugrnn
from grucli.cells.base import Cell, Display, Param
from grucli.errors import ConfigError, unknown_name

CELLS: dict[str, Cell] = {c.name: c for c in [
    gru.CELL,
    lstm.CELL,
    elman.RNN,
    elman.RNN_RELU,
    gru_cho.CELL,
    mgu.CELL,
    ugrnn.CELL,
    layernorm.LN_GRU,
    layernorm.LN_LSTM,
    lstm_peephole.CELL,
    indrnn.CELL,
]}
REFERENCE = "lstm"  # parameter and step-time ratios are given against this cell
IMPLS = ("torch", "fused", "reference")  # model.impl values besides "auto"
SPARE_COLOURS = ["#999999", "#DDCC77", "#117733", "#AA4499"]  # for names not (or no longer) registered

__all__ = ["CELLS", "REFERENCE", "IMPLS", "Cell", "Display", "Param", "get", "order", "colour", "marker", "label",
           "resolve_impl", "make", "recurrent_params"]


def get(name: str) -> Cell:
    if name not in CELLS:
        raise ConfigError(unknown_name("cell", name, CELLS))
    return CELLS[name]


def order(names) -> list[str]:
    """`names` in the registry's order; unregistered names (old results) after, alphabetically."""
    rank = {n: i for i, n in enumerate(CELLS)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), str(n)))


def colour(name: str) -> str:
    if name in CELLS:
        return CELLS[name].display.colour
    return SPARE_COLOURS[sum(map(ord, str(name))) % len(SPARE_COLOURS)]


def marker(name: str) -> str:
    return CELLS[name].display.marker if name in CELLS else "o"


def label(name: str) -> str:
    return CELLS[name].display.label if name in CELLS else str(name)


def impl_available(impl: str) -> bool:
    """fused is only chosen by "auto" when its kernels load and no GPU is visible (its
    kernels are CPU only)."""
    if impl != "fused":
        return True
    import torch

    from grucli.cells.fused.build import available

    return not torch.cuda.is_available() and available()


def resolve_impl(cell: Cell, impl: str = "auto") -> str:
    """The implementation a model of `cell` uses: `impl`, or for "auto" the fastest available."""
    if impl != "auto":
        if impl not in cell.impls:
            raise ConfigError(f"cell '{cell.name}' has no '{impl}' implementation; valid: auto, {', '.join(cell.impls)}")
        if not impl_available(impl):
            from grucli.cells.fused.build import unavailable_reason

            why = unavailable_reason() or "a GPU is visible: they run on CPU only"
            raise ConfigError(f"{impl}: grucli's CPU kernels are unavailable here ({why}); use impl auto or torch")
        return impl
    return next(name for name in cell.impls if impl_available(name))


def make(cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
         dropout: float = 0.0, impl: str = "auto", forget_bias: float | None = None):
    """The recurrent module of `cell` in implementation `impl` (torch | fused | reference, or
    "auto" for the fastest available): torch's RNN interface (batch_first), and the same
    parameter names and shapes in every implementation. `forget_bias` sets the forget gate's
    bias for a cell that has one (Cell.forget_gate); None keeps the implementation's init."""
    import torch.nn as nn

    impl = resolve_impl(cell, impl)
    dropout = dropout if num_layers > 1 else 0.0
    if impl == "torch":
        cls, kwargs = cell.torch_module
        module = getattr(nn, cls)(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                  dropout=dropout, batch_first=True, **kwargs)
    elif impl == "fused":
        from grucli.cells.fused import FusedLayers

        module = FusedLayers(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
    else:
        from grucli.cells.layers import ReferenceLayers

        module = ReferenceLayers(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
    if forget_bias is not None and cell.forget_gate is not None:
        _set_forget_bias(module, cell, forget_bias)
    return module


def _set_forget_bias(rnn, cell: Cell, value: float) -> None:
    """Set the forget gate's bias (block `cell.forget_gate`) so that the biases adding up in
    its pre-activation (`cell.bias_params`) sum to `value`: the first holds it, the rest 0."""
    import torch

    with torch.no_grad():
        for name, p in rnn.named_parameters():
            stem = name.rsplit("_l", 1)[0]
            if stem in cell.bias_params:
                h = rnn.hidden_size
                block = slice(cell.forget_gate * h, (cell.forget_gate + 1) * h)
                p[block] = value if stem == cell.bias_params[0] else 0.0


def recurrent_params(cell: str, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False) -> int:
    """The cell's closed form per layer and direction (Cell.layer_params); layers above the
    first read the D*H outputs of the layer below."""
    d = 2 if bidirectional else 1
    spec = get(cell)
    return sum(d * spec.layer_params(input_size if layer == 0 else d * hidden, hidden) for layer in range(layers))
