"""The one figure kit: every figure grucli draws (the report's, tune's, the claims' and
bench's) is made, styled, annotated and saved through these; inspect's figures (their own
layouts, grucli/inspect/figures.py) are saved through `save_file`.

    new(...), row(...)  a figure and its axes: matplotlib's object API on the Agg canvas (no
                      pyplot, no global backend state), in the shared STYLE
    styled()          the shared STYLE for drawing code that runs after `new`
    Drawn, save(...)  a drawn figure and its caption; written atomically as PNG (150 dpi, for
                      the report) and SVG (for papers); save_file for one file by extension
    estimate, yerr    a centre over seeds with its 95% interval on the metric's scale, and
                      matplotlib's error bars from it
    cell_line, bars   a cell's centres with error bars against x; grouped bars with error bars
    cells_against     every cell's line of a frame of runs against one measured setting
    log_y, plain_log  log axes for values spanning decades, labelled as plain numbers
    legend, cell_style  one legend right of the panels; a cell's colour, marker and label

Which figures the report draws is decided by the one registry, `grucli.report.plots.PLOTS`.
This module imports nothing of the report's, so any module may draw with it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from grucli import metrics, stats
from grucli.cells import colour, marker
from grucli.numbers import num
from grucli.store import atomic_write_bytes
from grucli.tables import order_cells

STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "svg.fonttype": "none"}
DPI = {"png": 150}  # per format; vector formats need none
DECADES = 30  # values of an error-type metric spanning more than this ratio get a log axis


@dataclass
class Drawn:
    name: str  # file stem, e.g. adding_difficulty_seq_len
    figure: Figure
    caption: str
    png: Path | None = None  # set once saved
    answer: bool = False  # shown with the Answer at the top of the report, not under Figures


def styled():
    """The shared style, for drawing code: `with figure.styled(): ...`."""
    return matplotlib.rc_context(STYLE)


def new(ncols: int = 1, nrows: int = 1, width: float = 5.2, height: float = 3.6, sharey: bool = False,
        **subplots) -> tuple[Figure, np.ndarray]:
    """A figure of nrows x ncols panels, each width x height inches, constrained layout;
    axes always 2-D (axes[row][col])."""
    with styled():
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey, **subplots)
    return fig, axes


def row(ncols: int = 1, width: float = 5.0, height: float = 3.4, **kw) -> tuple[Figure, np.ndarray]:
    """A figure of one row of panels; its axes as a 1-D array."""
    fig, axes = new(ncols, 1, width=width, height=height, **kw)
    return fig, axes[0]


# --------------------------------------------------------------------------- saving
def save(drawn: Drawn, folder: Path, formats=("png", "svg")) -> dict[str, Path]:
    """Write `<folder>/<name>.<ext>` for each format, atomically; {ext: path}."""
    return {ext: save_file(drawn.figure, Path(folder) / f"{drawn.name}.{ext}") for ext in formats}


def save_file(fig: Figure, path: Path, dpi: float | None = None) -> Path:
    """One file, its format from the extension (png at 150 dpi unless `dpi`, svg), written
    atomically."""
    ext = Path(path).suffix.lstrip(".")
    buf = io.BytesIO()
    with styled():
        fig.savefig(buf, format=ext, dpi=dpi or DPI.get(ext))
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# --------------------------------------------------------------------------- intervals
def estimate(values, scale: metrics.Scale) -> tuple[float, float, float]:
    """(centre, lo, hi) of values across seeds on their scale (grucli.stats.estimate): the
    geometric mean with its asymmetric interval on a log scale (never <= 0), the mean with
    its interval cut to the range elsewhere; lo = hi = centre without an interval (n < 2)."""
    e = stats.estimate(list(values), scale)
    return e.centre, (e.centre if e.lo is None else e.lo), (e.centre if e.hi is None else e.hi)


def yerr(points) -> list[list[float]]:
    """matplotlib's error bars (below, above) of (centre, lo, hi) points; 0 where there is none."""
    def gap(a, b):
        return b - a if math.isfinite(a) and math.isfinite(b) and b > a else 0.0

    return [[gap(lo, c) for c, lo, _ in points], [gap(c, hi) for c, _, hi in points]]


def cell_style(cell: str, label: bool = True) -> dict:
    """A cell's colour and marker (the same in every figure), and its name as the label."""
    return {"color": colour(cell), "marker": marker(cell), **({"label": cell} if label else {})}


def cell_line(ax, cell: str, points, lw: float = 1.6) -> None:
    """One cell's centres against x with their intervals: points = [(x, centre, lo, hi)]."""
    points = sorted(points)
    if points:
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=yerr([p[1:] for p in points]),
                    capsize=3, lw=lw, **cell_style(cell))


def cells_against(ax, runs, x: str, y: str = "value", log_x: bool = False, log_y: bool = False) -> None:
    """Per cell of `runs` (columns cell, metric, x, y) against x: the centre over seeds with
    its 95% interval on the metric's scale; ticks at the measured x values only."""
    for cell in order_cells(runs["cell"].unique()):
        g = runs[runs["cell"] == cell]
        scale = metrics.scale_of(g["metric"].iloc[0])
        cell_line(ax, cell, [(xv, *estimate(gx[y], scale)) for xv, gx in g.groupby(x)], lw=1.5)
    if log_x:
        ax.set_xscale("log")
    ticks = sorted(runs[x].unique())
    ax.set_xticks(ticks)  # ticks at the measured values only (one T gave 19.0, 19.5, ... 21.0)
    ax.set_xticklabels([num(int(t)) if float(t).is_integer() else f"{t:g}" for t in ticks])
    ax.minorticks_off()
    if log_y:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


def centre_bar(ax, x, values, scale: metrics.Scale, color="k") -> None:
    """The centre of `values` over seeds with its 95% interval, one point at x."""
    point = estimate(values, scale)
    ax.errorbar([x], [point[0]], yerr=yerr([point]), color=color, capsize=4)


def bars(ax, xs, points, width: float, color, label: str | None = None) -> None:
    """Bars at the centres of (centre, lo, hi) points with their intervals as error bars."""
    ax.bar(xs, [p[0] for p in points], width, yerr=yerr(points), capsize=3, color=color, label=label,
           error_kw={"lw": 1, "ecolor": "0.2"})


# --------------------------------------------------------------------------- axes
def plain_log(axis, values) -> None:
    """Log-axis ticks labelled as plain numbers (0.02, 0.05, 0.1), as many as the data's span
    can hold without crowding: only powers of ten over 3+ decades, 1-2-5 over one or more,
    1-1.25-1.5-2-3-5-7 within one. `values`: the data on that axis, or its limits (the view
    limits are not known until the figure is drawn)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    decades = np.log10(v.max() / v.min()) if len(v) else 3.0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 0.6 else (1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 7.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def integer_ticks(axis, low: int, high: int, log: bool = False) -> None:
    """Ticks at whole numbers only, for an integer setting (num_layers in [1, 2] had ticks at
    1.2, 1.4, ...): each one when a few span the range, else as many as fit (1-2-5 on a log axis)."""
    if high - low <= 8:
        axis.set_major_locator(FixedLocator(range(int(low), int(high) + 1)))
    else:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)) if log else MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda x, _: num(int(round(x)))))
    axis.set_minor_locator(FixedLocator([]))


def spans_decades(values) -> bool:
    """Positive values whose largest is more than DECADES times the smallest."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    return bool(len(v) and (v > 0).all() and v.max() / v.min() > DECADES)


def log_y(ax, values, goal: str = "min") -> bool:
    """A log y axis with plain labels when an error-type quantity (goal min) spans decades."""
    values = list(values)
    if goal != "min" or not spans_decades(values):
        return False
    ax.set_yscale("log")
    plain_log(ax.yaxis, values)
    return True


def legend(fig, axes) -> None:
    """One legend for every panel, right of them, each label once."""
    handles = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", frameon=False)
