"""Figures of `grucli inspect`, drawn from analysis.py's numbers (nothing is computed
here). matplotlib's object API only (no pyplot state); every figure is saved as PNG and
SVG through the figure kit (grucli.report.figure.save_file: atomic writes)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from grucli import cells  # noqa: E402
from grucli import numbers  # noqa: E402
from grucli.inspect.files import FIGURE_FORMATS  # noqa: E402
from grucli.report.figure import save_file  # noqa: E402

if TYPE_CHECKING:
    from grucli.inspect.analysis import Inspection, SampleTrace

def gate_label(cell, name: str) -> str:
    """`z (update)`; `hidden h` for the state."""
    return "hidden h" if name == "h" else f"{name} ({cell.gates[name]})"
DIRECTION_TITLE = {"forward": "forward direction", "backward": "backward direction (reads t = T → 1)"}


def save(fig: Figure, out_dir: Path, stem: str) -> str:
    """Write <stem>.png and <stem>.svg into out_dir; returns the PNG's file name."""
    fig.draw_without_rendering()  # lay out once (constrained layout is the slow part), then freeze it
    fig.set_layout_engine("none")
    for fmt in FIGURE_FORMATS:
        save_file(fig, Path(out_dir) / f"{stem}.{fmt}", dpi=110)
    return f"{stem}.png"


def _integer_time(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _steps(n: int) -> np.ndarray:
    return np.arange(1, n + 1)


def _draw_input(ax, cax, sample: SampleTrace, vocab: int | None) -> None:
    """The input sequence on the time axis: token ids as a coloured strip, features as lines."""
    L = len(sample.x)
    ax.set_xlim(0.5, L + 0.5)
    if sample.tokens:
        palette = matplotlib.colormaps["tab10" if vocab <= 10 else "tab20"]
        cmap = ListedColormap(palette.colors[:vocab]) if vocab <= 20 else "viridis"
        im = ax.imshow(sample.x[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=vocab - 0.5,
                       extent=(0.5, L + 0.5, 0, 1), interpolation="nearest")
        if L <= 70:
            for t, tok in enumerate(sample.x, start=1):
                ax.text(t, 0.5, str(int(tok)), ha="center", va="center", fontsize=7)
        ax.set_yticks([])
        ax.set_ylabel("token id")
        cb = ax.figure.colorbar(im, cax=cax)
        cb.set_ticks(range(vocab) if vocab <= 20 else np.linspace(0, vocab - 1, 5).round())
        cb.set_label("token", fontsize=8)
        return
    x = sample.x if sample.x.ndim == 2 else sample.x[:, None]
    if x.shape[1] <= 6:
        for c in range(x.shape[1]):
            ax.plot(_steps(L), x[:, c], lw=1, label=f"x[{c}]")
        ax.legend(fontsize=7, loc="upper right", ncol=x.shape[1])
        ax.set_ylabel("input")
        cax.axis("off")
    else:
        im = ax.imshow(x.T, aspect="auto", origin="lower", extent=(0.5, L + 0.5, -0.5, x.shape[1] - 0.5))
        ax.set_ylabel("input channel")
        ax.figure.colorbar(im, cax=cax).set_label("input", fontsize=8)


def _heatmap(ax, cax, values: np.ndarray, name: str, cell) -> None:
    """values (L, H) as units x time; h of a tanh-bounded cell on a diverging [-1, 1] scale."""
    L, H = values.shape
    if name == "h":
        kw = dict(cmap="RdBu_r", vmin=-1, vmax=1) if cell.bounded else dict(cmap="viridis", vmin=0)
    else:
        kw = dict(cmap="viridis", vmin=0, vmax=1)
    im = ax.imshow(values.T, aspect="auto", origin="lower", interpolation="nearest",
                   extent=(0.5, L + 0.5, -0.5, H - 0.5), **kw)
    ax.set_ylabel(f"{gate_label(cell, name).split()[0]}: unit")
    ax.figure.colorbar(im, cax=cax).set_label(gate_label(cell, name), fontsize=8)


def _mean_curves(ax, gates: dict[str, np.ndarray], cell) -> None:
    for name, v in gates.items():
        ax.plot(_steps(len(v)), v.mean(1), lw=1.2, label=f"mean {gate_label(cell, name)}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("gate mean")
    ax.legend(fontsize=7, loc="upper right", ncol=len(gates))


def _norm_curve(ax, h: np.ndarray) -> None:
    ax.plot(_steps(len(h)), np.linalg.norm(h, axis=1), color="k", lw=1.2)
    ax.set_ylabel("‖h_t‖")
    ax.set_xlabel("time step t")
    _integer_time(ax)


def _trace_column(fig, gs, col: int, insp: Inspection, sample: SampleTrace, d: int, rows: list[str]) -> list:
    """Draw one column of trace panels (rows: input, one heatmap per gate, means, norm)."""
    axes = []
    vocab = insp.run.data.input_size if sample.tokens else None
    for r, kind in enumerate(rows):
        ax = fig.add_subplot(gs[r, 2 * col], sharex=axes[0] if axes else None)
        cax = fig.add_subplot(gs[r, 2 * col + 1])
        if kind == "input":
            _draw_input(ax, cax, sample, vocab)
        elif kind == "means":
            _mean_curves(ax, sample.gates[d], insp.cell)
            cax.axis("off")
        elif kind == "norm":
            _norm_curve(ax, sample.h[d])
            cax.axis("off")
        elif kind == "no gates":
            ax.text(0.5, 0.5, "no gates", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_yticks([])
            cax.axis("off")
        else:
            _heatmap(ax, cax, sample.h[d] if kind == "h" else sample.gates[d][kind], kind, insp.cell)
        if kind != "norm":
            ax.tick_params(labelbottom=False)
        axes.append(ax)
    return axes


HEIGHT = {"input": 0.8, "means": 1.0, "norm": 0.9}  # heatmaps: 1.6


def gate_traces(insp: Inspection, sample: SampleTrace) -> Figure:
    """Heatmaps (unit x time) of each gate, their means and ‖h_t‖, under the input; one column per direction."""
    rows = ["input", *(list(insp.cell.gates) or ["h"]), *(["means"] if insp.cell.gates else []), "norm"]
    heights = [HEIGHT.get(r, 1.6) for r in rows]
    D = len(insp.directions)
    fig = Figure(figsize=(7.5 * D + 0.5, 1.25 * sum(heights) + 1.3), layout="constrained")
    gs = fig.add_gridspec(len(rows), 2 * D, height_ratios=heights, width_ratios=[1, 0.025] * D)
    for d, name in enumerate(insp.directions):
        axes = _trace_column(fig, gs, d, insp, sample, d, rows)
        if D > 1:
            axes[0].set_title(DIRECTION_TITLE[name], fontsize=10)
    L = len(sample.x)
    fig.suptitle(f"{insp.run.label} · layer {insp.layer} · test sequence #{sample.index} (T = {L})\n"
                 f"{insp.cell.equation}", fontsize=10)
    return fig


def _hist_panel(ax, name: str, label: str, edges: np.ndarray, share: np.ndarray, stats: dict) -> None:
    ax.bar(edges[:-1], share, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
    ax.set_ylabel("share of values")
    if name == "h":
        ax.set_xlabel("hidden value")
        text = f"|h| > 0.9: {numbers.share(stats['share_abs_gt_0.9'], 1)} · mean |h| {numbers.num(stats['mean_abs'], 2)}"
    else:
        ax.set_xlabel("gate value")
        ax.axvspan(0, 0.1, color="0.85", zorder=0)
        ax.axvspan(0.9, 1, color="0.85", zorder=0)
        ax.set_xlim(0, 1)
        text = (f"< 0.1: {numbers.share(stats['share_lt_0.1'], 1)} · > 0.9: {numbers.share(stats['share_gt_0.9'], 1)} · "
                f"mean {numbers.num(stats['mean'], 2)}")
    ax.set_title(f"{label}\n{text}", fontsize=9)


def _hist_row(fig, axes, insp: Inspection) -> None:
    """Gates from the left, h in the last axis (so rows of different cells line up)."""
    gates = insp.cell.gates
    for ax, name in zip(axes, gates):
        _hist_panel(ax, name, gate_label(insp.cell, name), *insp.hists[name], insp.summary["gates"][name])
    _hist_panel(axes[-1], "h", gate_label(insp.cell, "h"), *insp.hists["h"], insp.summary["hidden"])
    for ax in axes[len(gates):-1]:
        ax.axis("off")


def saturation(insp: Inspection) -> Figure:
    """Histograms of each gate's values (and of h) over every valid step of the test set."""
    n = len(insp.cell.gates) + 1
    fig = Figure(figsize=(max(3.3 * n + 0.5, 7.0), 3.4), layout="constrained")
    _hist_row(fig, fig.subplots(1, n, squeeze=False)[0], insp)
    dirs = " (both directions pooled)" if len(insp.directions) > 1 else ""
    what = "Gate saturation" if insp.cell.gates else "Hidden-state values (this cell has no gates)"
    shaded = ", shaded: < 0.1 and > 0.9" if insp.cell.gates else ""
    fig.suptitle(f"{what} over {insp.summary['test_sequences']} test sequences{dirs}{shaded}\n"
                 f"{insp.run.label} · layer {insp.layer}", fontsize=10)
    return fig


def _positive(curve: np.ndarray) -> np.ndarray:
    return np.where(curve > 0, curve, np.nan)  # log axis: drop exact zeros


def gradient_flow(insp: Inspection) -> Figure:
    """Mean ‖∂L/∂h_t‖ vs t on a log axis, trained (solid) and at initialisation (dashed)."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    by_dir = insp.summary["gradient"]["by_direction"]
    for d, (name, colour) in enumerate(zip(insp.directions, ("tab:blue", "tab:orange"))):
        for kind, style in (("trained", "-"), ("init", "--")):
            curve = insp.grad[kind][d]
            r = by_dir[name]["ratio" if kind == "trained" else "ratio_init"]
            ax.plot(_steps(len(curve)), _positive(curve), style, color=colour,
                    label=f"{name}, {'trained' if kind == 'trained' else 'at init'} (first/last {numbers.num(r, 2)})")
        if "trained_c" in insp.grad:  # LSTM: the cell state's own gradient
            curve = insp.grad["trained_c"][d]
            r = insp.summary["gradient"]["cell_state"][name]["ratio"]
            ax.plot(_steps(len(curve)), _positive(curve), ":", color=colour, lw=2,
                    label=f"{name}, trained, ‖∂L/∂c_t‖ cell state (first/last {numbers.num(r, 2)})")
    ax.set_yscale("log")
    _integer_time(ax)
    where = "loss on the last step" if insp.run.model.head_kind == "last" else "loss on every step"
    if insp.run.data.test.lengths is not None:
        where += "; lengths vary: mean over the sequences that reach t"
    ax.set_xlabel(f"time step t ({where})")
    ax.set_ylabel("mean ‖∂L/∂h_t‖" + (" and ‖∂L/∂c_t‖" if "trained_c" in insp.grad else "") + " (log scale)")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"Gradient flow back through time, layer {insp.layer}, mean over "
                 f"{insp.summary['grad_sequences']} test sequences\n{insp.run.label}", fontsize=10)
    return fig


# --------------------------------------------------------------------------- compare
def compare_gates(insps: list[Inspection], index: int, same_task: bool) -> Figure:
    """One column per cell: input, heatmap of the gate that keeps the past (GRU z, LSTM f;
    h for an RNN), gate means and ‖h_t‖, forward direction, on the same test sequence."""
    rows = ["input", "main", "means", "norm"]
    heights = [HEIGHT.get(r, 1.6) for r in rows]
    n = len(insps)
    fig = Figure(figsize=(5.5 * n + 0.5, 1.25 * sum(heights) + 1.5), layout="constrained")
    gs = fig.add_gridspec(len(rows), 2 * n, height_ratios=heights, width_ratios=[1, 0.03] * n)
    for c, insp in enumerate(insps):
        sample = insp.samples[index]
        col = ["input", next(iter(insp.cell.gates), "h"), "means" if insp.cell.gates else "no gates", "norm"]
        axes = _trace_column(fig, gs, c, insp, sample, 0, col)
        axes[0].set_title(f"{insp.run.cfg.model.cell} (run {insp.run.run_id})\n{textwrap.fill(insp.cell.equation, 64)}",
                          fontsize=9)
    inputs = "the same test sequence" if same_task else "test sequence of each run's own task config (configs differ)"
    fig.suptitle(f"Inside each cell on {inputs}: #{index} · {insps[0].run.cfg.task.name} · layer {insps[0].layer}, "
                 "forward direction", fontsize=10)
    return fig


def compare_saturation(insps: list[Inspection]) -> Figure:
    cols = max(len(i.cell.gates) for i in insps) + 1
    fig = Figure(figsize=(3.3 * cols + 0.5, 2.9 * len(insps) + 0.8), layout="constrained")
    grid = fig.subplots(len(insps), cols, squeeze=False)
    for row, insp in zip(grid, insps):
        _hist_row(fig, row, insp)
        for ax in row:
            if ax.axison:
                ax.set_title(f"{insp.run.cfg.model.cell}: {ax.get_title()}", fontsize=9)
    fig.suptitle("Gate saturation over the test set, one row per cell (shaded: < 0.1 and > 0.9)", fontsize=10)
    return fig


def compare_gradient_flow(insps: list[Inspection]) -> Figure:
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for insp in insps:
        g = insp.summary["gradient"]
        cell = insp.run.cfg.model.cell
        colour = cells.colour(cell)
        ax.plot(_steps(len(insp.grad["trained"][0])), _positive(insp.grad["trained"][0]), "-", color=colour,
                label=f"{cell} trained (first/last {numbers.num(g['ratio'], 2)})")
        ax.plot(_steps(len(insp.grad["init"][0])), _positive(insp.grad["init"][0]), "--", color=colour,
                label=f"{cell} at init ({numbers.num(g['ratio_init'], 2)})")
    ax.set_yscale("log")
    _integer_time(ax)
    ax.set_xlabel("time step t")
    ax.set_ylabel("mean ‖∂L/∂h_t‖" + (" and ‖∂L/∂c_t‖" if "trained_c" in insp.grad else "") + " (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"Gradient flow back through time per cell, forward direction, layer {insps[0].layer}", fontsize=10)
    return fig
