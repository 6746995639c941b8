"""One fixed colour per cell in every figure grucli draws (report and inspect alike)."""

from __future__ import annotations

# Okabe-Ito colour-blind-safe palette.
CELL_COLOURS = {"gru": "#D55E00", "lstm": "#0072B2", "rnn": "#009E73", "rnn_relu": "#CC79A7"}
SPARE_COLOURS = ["#E69F00", "#56B4E9", "#F0E442", "#000000"]


def colour(cell: str) -> str:
    """The cell's colour; cells without one get a stable pick from the spare colours."""
    if cell in CELL_COLOURS:
        return CELL_COLOURS[cell]
    return SPARE_COLOURS[sum(map(ord, cell)) % len(SPARE_COLOURS)]
