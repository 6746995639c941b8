"""The report's figures, chosen by which axes actually vary: the one registry, `PLOTS`.

Every figure of the report is one entry of `PLOTS`: a name, what it is drawn from (a task's
runs, or a tuned experiment: grucli.report.tuned), a test of whether it says anything for
the runs at hand, and a function drawing it. Adding a plot is one function plus one line
there. Everything a figure is drawn with (style, axes, error bars, log axes, legend,
saving) is grucli.report.figure; one colour per cell across every figure.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator, NullFormatter

from grucli import metrics, verdicts
from grucli.cells import colour, marker
import grucli.report.forest as forest_plot
import grucli.report.tuned as tuned
from grucli.report.figure import Drawn, bars, cell_line, estimate, legend, log_y, new, plain_log, styled
from grucli.tables import TaskView, order_cells, packed_runs, setting_label, short

MAX_PANELS = 6  # settings shown side by side before a figure keeps only the first ones
TASK, TUNE = "task", "tune"  # what a plot is drawn from: (TaskView, histories) or (Tuned,)


@dataclass(frozen=True)
class Plot:
    name: str
    of: str  # TASK or TUNE
    applies: Callable[..., bool]  # (view, histories) or (tuned) -> worth drawing?
    draw: Callable[..., list[Drawn]]


def _metric_label(view: TaskView) -> str:
    arrow = "lower is better" if view.goal == "min" else "higher is better"
    return f"{view.metric} ({arrow})"


def _maybe_log_y(ax, values, view: TaskView) -> None:
    """Log y for an error-type metric spanning decades; decided once per task (test values
    and baseline) so every panel and figure of the task uses the same scale."""
    log_y(ax, [*view.ok["value"], *view.ok["baseline_value"], *values], view.goal)


def _by_cell(runs: pd.DataFrame):
    """(cell, runs) in the report's cell order (gru, lstm, rnn), as in its tables."""
    groups = dict(tuple(runs.groupby("cell")))
    return [(c, groups[c]) for c in order_cells(groups)]


_BASELINES = [("baseline_value", "--", "trivial baseline"),
              ("seasonal_baseline_value", "-.", "seasonal-naive baseline")]  # the second: forecasts with a season


def _baselines(runs: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(column, line style, label) of the baselines; the plain one is 'naive' beside a seasonal one."""
    seasonal = "seasonal_baseline_value" in runs and runs["seasonal_baseline_value"].notna().any()
    return [(c, st, "naive baseline" if seasonal and c == "baseline_value" else name) for c, st, name in _BASELINES]


def _baseline_lines(ax, runs: pd.DataFrame) -> list[float]:
    """Horizontal lines for the baselines the runs have; their values."""
    values = []
    for col, style, name in _baselines(runs):
        base = runs[col].dropna() if col in runs else pd.Series(dtype=float)
        if len(base):
            ax.axhline(base.iloc[0], ls=style, color="0.35", lw=1.2, label=name)
            values.append(float(base.iloc[0]))
    return values


def _panels(view: TaskView, keys: list[str], keep: Callable[[pd.DataFrame], bool] | None = None):
    """[(label, runs)] per combination of `keys` (at most MAX_PANELS) whose runs pass
    `keep`, ok runs only; and whether some were cut."""
    ok = view.ok
    if not keys:
        return ([("", ok)] if keep is None or keep(ok) else []), False
    groups = [(_panel_title(keys, v if isinstance(v, tuple) else (v,)), g)
              for v, g in ok.groupby(keys, dropna=False, sort=True) if keep is None or keep(g)]
    return groups[:MAX_PANELS], len(groups) > MAX_PANELS


def _panel_title(keys: list[str], values, width: int = 46, lines: int = 3) -> str:
    """A setting label that fits over one panel: long values shortened, wrapped, capped."""
    wrapped = textwrap.wrap(setting_label(keys, values, max_value=22), width)
    return "\n".join(wrapped[:lines]) + (" …" if len(wrapped) > lines else "")


# --------------------------------------------------------------------------- learning curves
def _val_column(view: TaskView) -> str:
    return f"val_{view.select or view.metric}"


def _clock(hist: pd.DataFrame) -> pd.DataFrame:
    """Seconds of training at each epoch's end: `train_time_s` (leaves out evaluation and
    the first run's start-up, which would shift one cell's curve), else `wall_time_s`."""
    source = "train_time_s" if "train_time_s" in hist else "wall_time_s" if "wall_time_s" in hist else None
    return hist.assign(clock=hist[source] if source else float("nan"))


def _curves_apply(view: TaskView, histories: dict) -> bool:
    col = _val_column(view)
    return any(k in histories and col in histories[k] for k in view.ok["key"])


def learning_curves(view: TaskView, histories: dict) -> list[Drawn]:
    col = _val_column(view)
    sel = view.select or view.metric
    panels, cut = _panels(view, view.settings)
    fig, axes = new(2, len(panels), height=3.0)
    every = []
    for row, (label, runs) in enumerate(panels):
        ax_e, ax_t = axes[row]
        for cell, g in _by_cell(runs):
            hs = [_clock(histories[k])[["epoch", "clock", col]] for k in g["key"]
                  if k in histories and col in histories[k]]
            if not hs:
                continue
            by_epoch = pd.concat(hs).groupby("epoch")
            mean, lo, hi = by_epoch[col].mean(), by_epoch[col].min(), by_epoch[col].max()
            wall = by_epoch["clock"].mean()
            every += list(mean)
            kw = dict(color=colour(cell), marker=marker(cell), markersize=3, lw=1.6)
            ax_e.plot(mean.index, mean, label=f"{cell}", **kw)
            ax_e.fill_between(mean.index, lo, hi, color=colour(cell), alpha=0.18, lw=0)
            ax_t.plot(wall, mean, label=f"{cell}", **kw)
            ax_t.fill_between(wall, lo, hi, color=colour(cell), alpha=0.18, lw=0)
        suffix = f"\n{label}" if label else ""
        ax_e.set(title=f"{view.task}: validation {sel} by epoch{suffix}", xlabel="epoch",
                 ylabel=f"validation {sel}" if sel != view.metric else f"validation {_metric_label(view)}")
        ax_t.set(title=f"{view.task}: by training time{suffix}", xlabel="training wall-clock time (s)",
                 ylabel=f"validation {sel}")
        ax_e.xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in (ax_e, ax_t):
            _maybe_log_y(ax, every, view)
    legend(fig, axes)
    more = f" Only the first {MAX_PANELS} settings are shown." if cut else ""
    return [Drawn(f"{view.task}_learning_curves", fig,
                  f"{view.task}: validation {sel} per epoch (left) and against mean training wall-clock "
                  "time, evaluation and start-up excluded (right); "
                  f"line = mean over seeds, band = range over seeds.{more}")]


# --------------------------------------------------------------------------- difficulty
def _task_knobs(view: TaskView) -> list[str]:
    """Numeric task keys swept with at least two values while everything else is fixed."""
    return [c for c in view.settings if c.startswith("config.task.")
            and pd.api.types.is_numeric_dtype(view.ok[c]) and _panels(view, _others(view, c), _sweeps(c))[0]]


def _others(view: TaskView, key: str) -> list[str]:
    return [c for c in view.settings if c != key]


def _sweeps(key: str) -> Callable[[pd.DataFrame], bool]:
    return lambda runs: runs[key].nunique() > 1


def _log_x(values) -> bool:
    """A swept setting spanning 10x or more (all positive) is drawn on a log axis."""
    return len(values) > 2 and min(values) > 0 and max(values) / min(values) >= 10


def difficulty(view: TaskView, histories: dict) -> list[Drawn]:
    out, scale = [], metrics.scale_of(view.metric)
    for knob in _task_knobs(view):
        panels, cut = _panels(view, _others(view, knob), _sweeps(knob))
        fig, axes = new(len(panels), 1, sharey=True)
        every = []
        for ax, (label, runs) in zip(axes[0], panels):
            for cell, g in _by_cell(runs):
                pts = [(x, *estimate(gx["value"], scale)) for x, gx in g.groupby(knob)]
                every += [p[1] for p in pts]
                cell_line(ax, cell, pts)
            for col, style, name in _baselines(runs):
                base = runs.groupby(knob)[col].first().dropna() if col in runs else pd.Series(dtype=float)
                if len(base):
                    ax.plot(base.index, base.values, ls=style, color="0.35", lw=1.2, label=name)
                    every += list(base.values)
            if view.target is not None:
                ax.axhline(view.target, ls=":", color="0.5", lw=1.0, label="target")
            _maybe_log_y(ax, every, view)
            swept = sorted(runs[knob].dropna().unique())
            log_x = _log_x(swept)
            if log_x:  # e.g. training-set sizes 250 ... 8000: equal steps for equal ratios
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            if len(swept) <= 8:  # ticks at the lengths actually run, not 7.5 and 12.5
                ax.set_xticks(swept)
                ax.set_xticklabels([f"{v:g}" for v in swept])
            ax.set(title=f"{view.task}: test {view.metric} vs {short(knob)}" + (f"\n{label}" if label else ""),
                   xlabel=short(knob) + (" (log scale)" if log_x else ""), ylabel=f"test {_metric_label(view)}")
        legend(fig, axes)
        more = f" Only the first {MAX_PANELS} settings are shown." if cut else ""
        out.append(Drawn(f"{view.task}_difficulty_{short(knob).split('.')[-1]}", fig,
                         f"{view.task}: test {view.metric} as {short(knob)} grows; {scale.mean_word} over seeds "
                         f"with its 95% interval{_on_scale(scale)}, trivial baseline dashed, target dotted.{more}"))
    return out


# --------------------------------------------------------------------------- size
def _size_applies(view: TaskView, histories: dict) -> bool:
    ok = view.ok
    if "params" not in ok or ok.empty:
        return False
    others = [c for c in view.settings if not c.startswith("config.model.")]
    return bool(_panels(view, others, lambda runs: (runs.groupby("cell")["params"].nunique() > 1).any())[0])


def size(view: TaskView, histories: dict) -> list[Drawn]:
    scale = metrics.scale_of(view.metric)
    others = [c for c in view.settings if not c.startswith("config.model.")]
    panels, cut = _panels(view, others, lambda runs: (runs.groupby("cell")["params"].nunique() > 1).any())
    fig, axes = new(len(panels), 1, sharey=True)
    for ax, (label, runs) in zip(axes[0], panels):
        for cell, g in _by_cell(runs):
            cell_line(ax, cell, [(p, *estimate(gp["value"], scale)) for p, gp in g.groupby("params")])
        _baseline_lines(ax, runs)
        ax.set_xscale("log")
        plain_log(ax.xaxis, runs["params"])
        _maybe_log_y(ax, runs["value"].tolist(), view)
        ax.set(title=f"{view.task}: test {view.metric} vs model size" + (f"\n{label}" if label else ""),
               xlabel="trainable parameters (log scale)", ylabel=f"test {_metric_label(view)}")
    legend(fig, axes)
    more = f" Only the first {MAX_PANELS} settings are shown." if cut else ""
    return [Drawn(f"{view.task}_size", fig, f"{view.task}: test {view.metric} against exact parameter count per "
                                            f"cell; {scale.mean_word} over seeds with its 95% interval"
                                            f"{_on_scale(scale)}.{more}")]


# --------------------------------------------------------------------------- cost
def _has_timing(view: TaskView, histories: dict) -> bool:
    return "timing.epoch_time_s" in view.ok and view.ok["timing.epoch_time_s"].notna().any()


def cost(view: TaskView, histories: dict) -> list[Drawn]:
    groups = list(view.groups(by_cell=False))[: MAX_PANELS * 2]
    cells = view.cells
    n_bars = len(groups) * max(len(cells), 1)
    quantities = [("timing.epoch_time_s", "train time per epoch (s)", 1.0),
                  ("timing.latency_batch_ms", "inference latency per batch (ms)", 1.0)]
    if "timing.saved_activation_bytes" in view.ok and view.ok["timing.saved_activation_bytes"].notna().any():
        quantities.append(("timing.saved_activation_bytes", "saved for backward (MB per batch)", 2.0**-20))
    fig, axes = new(1, len(quantities), width=min(max(5.0, 0.32 * n_bars + 2.0), 13.0), height=3.2)
    width = 0.8 / max(len(cells), 1)
    for ax, (col, label, unit) in zip(axes[:, 0], quantities):
        scale = metrics.scale_of(col)  # timings: log (geometric means, intervals above 0)
        for i, cell in enumerate(cells):
            pts = [estimate(unit * g.loc[(g["state"] == "ok") & (g["cell"] == cell), col], scale) if col in g
                   else (math.nan, math.nan, math.nan) for _, _, g in groups]
            xs = np.arange(len(groups)) + (i - (len(cells) - 1) / 2) * width
            bars(ax, xs, pts, width, colour(cell), cell)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels([setting_label(view.settings, v, max_value=16).replace(", ", "\n") for v, _, _ in groups],
                           fontsize=8, rotation=0 if len(groups) <= 6 else 30, ha="center" if len(groups) <= 6 else "right")
        ax.set(title=f"{view.task}: {label.split(' (')[0]}", ylabel=label)
        ax.grid(axis="x", visible=False)
    legend(fig, axes)
    memory = (" Activations: the bytes autograd keeps for the backward pass of one batch (counted with "
              "saved_tensors_hooks, every implementation alike), not the process's resident memory."
              if len(quantities) > 2 else "")
    n_packed = packed_runs(view.ok)
    packed = (f" {n_packed} of {len(view.ok)} runs trained in packs (timing.pack_size): their "
              "training time is their share of their pack's steps, the same for every run of a pack."
              if n_packed else "")
    return [Drawn(f"{view.task}_cost", fig, f"{view.task}: training and inference cost per cell and setting; "
                                            "bars = geometric mean over seeds of the times, error bars = its 95% "
                                            f"interval (on log times: never below 0).{memory}{packed}")]


def pareto(view: TaskView, histories: dict) -> list[Drawn]:
    panels, cut = _panels(view, view.settings)
    fig, axes = new(min(len(panels), 3), math.ceil(len(panels) / 3), width=4.6, height=3.6, sharey=True)
    flat = list(np.ravel(axes))
    for ax, (label, runs) in zip(flat, panels):
        means = []
        for cell, g in _by_cell(runs):
            ax.scatter(g["timing.train_time_s"], g["value"], color=colour(cell), alpha=0.3, s=14, lw=0)
            m = (estimate(g["timing.train_time_s"], metrics.scale_of("train_time_s"))[0],
                 estimate(g["value"], metrics.scale_of(view.metric))[0])
            means.append(m)
            ax.scatter(*m, color=colour(cell), marker=marker(cell), s=54, edgecolor="white",
                       lw=0.6, label=cell, zorder=3)
        front, best = [], None
        for t, v in sorted(means):
            if best is None or (v < best if view.goal == "min" else v > best):
                best = v
                front.append((t, v))
        if len(front) > 1:
            ax.step(*zip(*front), where="post", color="0.3", lw=1, label="Pareto front", zorder=2)
        base = _baseline_lines(ax, runs)
        ax.set_xscale("log")
        plain_log(ax.xaxis, runs["timing.train_time_s"])
        _maybe_log_y(ax, [*runs["value"], *base], view)
        ax.set(title=textwrap.fill(f"{view.task}: test {view.metric} vs training time", 36) + (f"\n{label}" if label else ""),
               xlabel="total training time (s, log scale)", ylabel=f"test {_metric_label(view)}")
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    legend(fig, axes)
    more = f" Only the first {MAX_PANELS} settings are shown." if cut else ""
    return [Drawn(f"{view.task}_pareto", fig,
                  f"{view.task}: who gets there cheapest. Small dots = runs, large markers = "
                  f"{metrics.scale_of(view.metric).mean_word} per cell (geometric mean of the times); the "
                  f"step line joins the means that no cheaper mean beats.{more}")]


# --------------------------------------------------------------------------- forest (the Answer)
def _forest_applies(view: TaskView, histories: dict) -> bool:
    """Two cells to compare, or a cell and a trivial baseline."""
    ok = view.ok
    return ok["cell"].nunique() > 1 or bool(verdicts.baseline_candidates(view, ok))


def forest(view: TaskView, histories: dict) -> list[Drawn]:
    """The task's head-to-head verdicts as a forest plot (grucli.report.forest), shown with
    the Answer at the top of the report."""
    rows, cut = forest_plot.rows(verdicts.head_to_head(view))
    if not rows:
        return []
    fig = forest_plot.figure(view.task, rows, view.metric, view.goal)
    return [Drawn(f"{view.task}_forest", fig, forest_plot.caption(view.task, rows, cut), answer=True)]


def _on_scale(scale: metrics.Scale) -> str:
    if scale.ratio:
        return " (on log values: asymmetric, never below 0)"
    if math.isfinite(scale.lo) or math.isfinite(scale.hi):
        return f" (cut to the metric's range [{scale.lo:g}, {scale.hi:g}])".replace("inf", "∞")
    return ""


# --------------------------------------------------------------------------- registry
PLOTS: dict[str, Plot] = {p.name: p for p in [
    Plot("forest", TASK, _forest_applies, forest),
    Plot("learning_curves", TASK, _curves_apply, learning_curves),
    Plot("difficulty", TASK, lambda v, h: bool(_task_knobs(v)), difficulty),
    Plot("size", TASK, _size_applies, size),
    Plot("cost", TASK, _has_timing, cost),
    Plot("pareto", TASK, _has_timing, pareto),
    Plot("best_so_far", TUNE, tuned.has_trials, tuned.best_so_far),  # a tuned experiment (grucli tune)
    Plot("importance", TUNE, tuned.has_importance, tuned.importance),
    Plot("sensitivity", TUNE, tuned.has_searched_values, tuned.sensitivity),
]}


def select(view: TaskView, histories: dict) -> list[str]:
    """Names of the task plots that say something for this task's runs."""
    if view.ok.empty:
        return []
    return [name for name, p in PLOTS.items() if p.of == TASK and p.applies(view, histories)]


def draw(view: TaskView, histories: dict) -> list[Drawn]:
    """The task's figures, in registry order."""
    with styled():
        return [d for name in select(view, histories) for d in PLOTS[name].draw(view, histories)]


def draw_tuned(t: tuned.Tuned) -> list[Drawn]:
    """A tuned experiment's figures (the report's Tuned comparison section)."""
    with styled():
        return [d for p in PLOTS.values() if p.of == TUNE and p.applies(t) for d in p.draw(t)]
