"""The Answer as a picture: a forest plot of one task's head-to-head verdicts.

One row per setting and pair (`setting: a vs b`), read as its label says: the effect of a
over b on the metric's scale (the ratio of geometric means a / b on a log axis with the null
at 1 for log-scale metrics, the difference of means a - b on a linear axis with the null at
0 otherwise), its 95% interval as a line, the declared equivalence margin shaded around the
null, and the verdict from a's side as colour and as a word. The cells' comparisons and each
cell against the best trivial baseline are two panels (their effects can differ by decades).

`rows` (pure: head_to_head rows -> plot rows) decides what is drawn; `figure` only draws
it, so tests check the rows rather than pixels. As in meta-analysis forest plots and
rliable's interval plots (Agarwal et al. 2021).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from grucli import power, stats
from grucli.numbers import num
from grucli.report.figure import new, plain_log

# a fixed palette, safe for colour-blind readers (Okabe & Ito 2008); the verdict is from a's side
VERDICT_COLOURS = {stats.BETTER: "#0072B2", stats.WORSE: "#D55E00", stats.EQUIVALENT: "#009E73",
                   stats.UNDECIDED: "#7F7F7F", stats.NOT_TESTABLE: "#BDBDBD"}
PANELS = {"metric": "the cells against each other", "baseline": "each cell against the best trivial baseline"}
MAX_ROWS = 30  # rows per panel; the rest are left to tables/head_to_head.csv (the caption says so)
BAND = "#E6E6E6"  # the equivalence margin
MAX_LABEL = 56  # characters of a row label; a longer setting is cut in its middle, the pair is kept


@dataclass(frozen=True)
class Row:
    """One comparison as the forest plot draws it."""

    panel: str  # metric | baseline
    setting: str
    label: str  # "seq_len=10: gru vs lstm"
    ratio: bool  # a log axis around 1 (ratio) or a linear one around 0 (difference)
    value: float | None  # the effect a over b; None when there is none (no finite value)
    lo: float | None  # its 95% interval (an end may be infinite: drawn off the axis); None when none (n < 2)
    hi: float | None
    margin: float | None  # the equivalence margin: a ratio or an absolute difference
    verdict: str
    colour: str
    note: str  # the verdict word, "~N seeds" where an undecided row says how many would decide it


def _finite(v, positive: bool) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or (positive and v <= 0):
        return None
    return v


def _end(v, positive: bool) -> float | None:
    """An interval's end: None when missing, else kept even when infinite (a ratio's end at
    or below 0 becomes 0, the log axis's -infinity)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    if v != v:
        return None
    return max(v, 0.0) if positive else v


def _setting(label: str) -> str:
    """`task.seq_len=10, model.hidden_size=64` -> `seq_len=10, hidden_size=64` ('' for all runs)."""
    if label in ("", "all runs") or label != label:
        return ""
    return re.sub(r"(^|, )(task|model|train)\.", r"\1", str(label))


def _label(setting: str, pair: str) -> str:
    """`setting: a vs b`, the setting cut in its middle where the whole is too long."""
    if not setting:
        return pair
    room = MAX_LABEL - len(pair) - 2
    if len(setting) > room:
        keep = max(room - 1, 6)
        setting = f"{setting[:keep - keep // 2]}…{setting[len(setting) - keep // 2:]}"
    return f"{setting}: {pair}"


def _note(r: dict, has_interval: bool) -> str:
    word = str(r["verdict"])
    if word == stats.NOT_TESTABLE:
        return f"{word} (n < 2)" if not has_interval else word
    if word != stats.UNDECIDED:
        return word
    need = _finite(r.get("seeds_needed"), True)
    if need is None:
        return word
    if need > power.MAX_SEEDS:
        return f"{word}, > {num(power.MAX_SEEDS)} seeds"
    return f"{word}, ~{int(need)} seeds"


def rows(h2h: pd.DataFrame, max_rows: int = MAX_ROWS) -> tuple[list[Row], int]:
    """The plot rows of one task's head_to_head frame (families metric and baseline, in the
    frame's order: settings, then pairs), at most `max_rows` per panel; and how many rows
    were left out."""
    out, cut = [], 0
    if h2h is None or h2h.empty or "family" not in h2h:
        return out, cut
    for panel in PANELS:
        mine = h2h[h2h["family"] == panel].to_dict("records")
        cut += max(len(mine) - max_rows, 0)
        for r in mine[:max_rows]:
            ratio = r.get("effect") == "ratio"
            value, lo, hi = _finite(r.get("value"), ratio), _end(r.get("lo"), ratio), _end(r.get("hi"), ratio)
            has_interval = lo is not None and hi is not None and lo <= hi
            b = r.get("baseline") if panel == "baseline" and isinstance(r.get("baseline"), str) else r["b"]
            setting = _setting(r.get("setting", ""))
            word = str(r["verdict"])
            out.append(Row(panel, setting, _label(setting, f"{r['a']} vs {b}"), ratio, value,
                           lo if has_interval else None, hi if has_interval else None,
                           _finite(r.get("margin"), ratio), word, VERDICT_COLOURS.get(word, "#BDBDBD"),
                           _note(r, has_interval)))
    return out, cut


def _band(r: Row) -> tuple[float, float] | None:
    if r.margin is None or (r.ratio and r.margin <= 1):
        return None
    return (1 / r.margin, r.margin) if r.ratio else (-r.margin, r.margin)


def _limits(panel: list[Row]) -> tuple[float, float]:
    """x limits holding every point, interval and band, padded; on the log scale in logs."""
    ratio = panel[0].ratio
    null = 1.0 if ratio else 0.0
    xs = [null]
    for r in panel:
        xs += [v for v in (r.value, r.lo, r.hi) if v is not None and math.isfinite(v) and (v > 0 or not ratio)]
        xs += list(_band(r) or ())
    t = np.log(xs) if ratio else np.asarray(xs, dtype=float)
    lo, hi = float(t.min()), float(t.max())
    pad = 0.08 * (hi - lo) if hi > lo else (0.5 if ratio else 0.05)
    lo, hi = lo - pad, hi + pad
    return (math.exp(lo), math.exp(hi)) if ratio else (lo, hi)


def _axis_label(r: Row, metric: str, goal: str) -> str:
    """What the x axis is, and which side favours a."""
    if r.ratio:
        what = f"ratio a / b of the geometric means of test {metric} (log scale)"
    else:
        what = f"difference a − b of the mean test {metric}"
    left, right = ("a", "b") if goal == "min" else ("b", "a")
    return f"◀ {left} better        {what}        {right} better ▶"


def _draw_panel(ax, panel: list[Row], title: str, metric: str, goal: str) -> None:
    n = len(panel)
    ys = np.arange(n)[::-1]  # the first row on top
    ratio = panel[0].ratio
    if ratio:
        ax.set_xscale("log")
    xmin, xmax = _limits(panel)
    ax.set_xlim(xmin, xmax)
    null = 1.0 if ratio else 0.0
    for y, r in zip(ys, panel):
        band = _band(r)
        if band:  # one bar per row: contiguous rows with one margin read as one band
            ax.barh(y, band[1] - band[0], left=band[0], height=1.0, color=BAND, lw=0, zorder=0)
    ax.axvline(null, color="0.25", lw=1.0, zorder=1)
    for i, (y, r) in enumerate(zip(ys, panel)):
        if i and r.setting != panel[i - 1].setting:  # a thin rule between settings
            ax.axhline(y + 0.5, color="0.75", lw=0.6, zorder=1)
        if r.lo is not None:
            ax.hlines(y, max(r.lo, xmin), min(r.hi, xmax), color=r.colour, lw=2.4, zorder=2)
            for end, edge, mark in ((r.lo, xmin, "<"), (r.hi, xmax, ">")):
                if (end < edge) if mark == "<" else (end > edge):  # runs off the axis: an arrow at the edge
                    ax.plot(edge, y, marker=mark, color=r.colour, ms=6, zorder=3, clip_on=False)
        if r.value is not None:
            filled = r.lo is not None
            ax.plot(min(max(r.value, xmin), xmax), y, marker="D" if r.verdict == stats.EQUIVALENT else "o",
                    ms=6.5, color=r.colour, markerfacecolor=r.colour if filled else "white", markeredgewidth=1.4,
                    zorder=4)
    ax.set_yticks(ys)
    ax.set_yticklabels([r.label for r in panel], fontsize=8.5)
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    words = ax.twinx()  # the verdict words as right-hand tick labels: the layout makes room for them
    words.set_ylim(ax.get_ylim())
    words.set_yticks(ys)
    words.set_yticklabels([r.note for r in panel], fontsize=8.5)
    for text, r in zip(words.get_yticklabels(), panel):
        text.set_color(r.colour if r.verdict != stats.NOT_TESTABLE else "0.45")
        text.set_fontweight("bold" if stats.decided(r.verdict) else "normal")
    words.tick_params(axis="y", length=0)
    words.grid(False)
    for side in ("top", "right", "left", "bottom"):
        words.spines[side].set_visible(False)
    if ratio:
        plain_log(ax.xaxis, [xmin, xmax])
    ax.set_xlabel(_axis_label(panel[0], metric, goal), fontsize=8.5)
    ax.set_title(title, loc="left")


def figure(task: str, panel_rows: list[Row], metric: str, goal: str) -> Figure:
    """The forest plot of one task: a panel per family that has rows, a shared legend below."""
    panels = [(p, [r for r in panel_rows if r.panel == p]) for p in PANELS]
    panels = [(p, rs) for p, rs in panels if rs]
    heights = [len(rs) + 2.2 for _, rs in panels]
    fig, axes = new(1, len(panels), width=8.6, height=(0.8 + 0.27 * sum(heights)) / len(panels),
                    gridspec_kw={"height_ratios": heights})
    axes = axes[:, 0]
    for ax, (p, rs) in zip(axes, panels):
        _draw_panel(ax, rs, f"{task}: {PANELS[p]}", metric, goal)
    words = [w for w in VERDICT_COLOURS if any(r.verdict == w for r in panel_rows)]
    handles = [Line2D([], [], color=VERDICT_COLOURS[w], lw=2.4, marker="D" if w == stats.EQUIVALENT else "o",
                      ms=6, label=f"a {w}" if w in (stats.BETTER, stats.WORSE) else w) for w in words]
    margins = {r.margin for r in panel_rows if _band(r)}
    if margins:
        r = next(r for r in panel_rows if _band(r))
        one = f"within ×/÷ {r.margin:g}" if r.ratio else f"within ± {r.margin:g}"
        text = one if len(margins) == 1 else "as declared per row"
        handles.append(Patch(color=BAND, label=f"equivalence margin ({text})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False, fontsize=8.5)
    return fig


def caption(task: str, panel_rows: list[Row], cut: int) -> str:
    ratio = any(r.ratio for r in panel_rows)
    what = ("the ratio of geometric means a / b (log axis, no difference at 1)" if ratio
            else "the difference of means a − b (no difference at 0)")
    more = (f" Only the first {MAX_ROWS} rows of a panel are drawn ({cut} left out); every comparison is in "
            "tables/head_to_head.csv." if cut else "")
    return (f"{task}: the Answer at a glance. One row per setting and pair, read as its label (a vs b): {what} "
            "of the test metric with its 95% interval, the declared equivalence margin shaded, the colour and "
            "word the verdict from a's side (Holm over each setting's comparisons). An open marker has no "
            "interval (fewer than 2 seeds); '~N seeds': about how many seeds per cell would decide an "
            f"undecided row.{more}")
