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
           "resolve_impl", "make"]


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
        from grucli.errors import ConfigError

        if impl not in cell.impls:
            raise ConfigError(f"cell '{cell.name}' has no '{impl}' implementation; valid: auto, {', '.join(cell.impls)}")
        if not impl_available(impl):
            from grucli.cells.fused.build import unavailable_reason

            why = unavailable_reason() or "a GPU is visible: they run on CPU only"
            raise ConfigError(f"{impl}: grucli's CPU kernels are unavailable here ({why}); use impl auto or torch")
        return impl
    return next(name for name in cell.impls if impl_available(name))


def make(cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
         dropout: float = 0.0, impl: str = "auto"):
    """The recurrent module of `cell` (torch's RNN interface, batch_first)."""
    from grucli.cells.stack import build

    return build(cell, resolve_impl(cell, impl), input_size, hidden_size, num_layers, bidirectional, dropout)
