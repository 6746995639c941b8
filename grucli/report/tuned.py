"""The report's "Tuned comparison" section for a `grucli tune` folder: each arm at its best,
at an equal budget of trials. Numbers from grucli.tune.analysis (tune.json, trials.csv,
the run folders); figures drawn here with grucli.report.figure, each one entry of the
report's one registry (grucli.report.plots.PLOTS, drawn from a Tuned):

    best_so_far   best validation value after each trial, per arm
    importance    fANOVA importance of each searched key per arm, with its bootstrap spread
    sensitivity   the validation value against each searched key, arms coloured, pruned marked
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from grucli.cells import CELLS, colour, marker
from grucli.report.figure import Drawn, bars, integer_ticks, legend, log_y, new, plain_log
from grucli.numbers import NONE, interval, num, p_value
from grucli.report.compose import verdict_text
from grucli.report.render import Block, Bullets, Heading, Image, Para, Table
from grucli.tune import analysis
from grucli.tune.analysis import Tuned

SPARE = ["#7F7F7F", "#BCBD22", "#17BECF", "#8C564B"]


def _style(t: Tuned, label: str) -> tuple[str, str]:
    """An arm's colour and marker: its cell's, when one cell is what makes the arm."""
    cell = analysis.short_label(label)
    if cell in CELLS:
        return colour(cell), marker(cell)
    return SPARE[[a["label"] for a in t.arms].index(label) % len(SPARE)], "o"


def best_so_far(t: Tuned) -> list[Drawn]:
    curve = analysis.best_so_far(t)
    if curve.empty:
        return []
    fig, axes = new(1, 1, width=6.0, height=3.8)
    ax = axes[0][0]
    for label, g in curve.groupby("arm", sort=False):
        c, m = _style(t, label)
        ok = g[g["state"] == "ok"]
        ax.step(g["position"], g["best"], where="post", color=c, lw=1.8, label=analysis.short_label(label))
        ax.scatter(ok["position"], ok["value"], color=c, marker=m, s=14, alpha=0.45, lw=0)
    log_y(ax, pd.concat([curve["best"], curve["value"]]).dropna(), t.select_goal)
    ax.set(title=f"{t.manifest['name']}: best validation {t.select} so far", xlabel="trial (per arm, in order)",
           ylabel=f"validation {t.select} ({'lower' if t.select_goal == 'min' else 'higher'} is better)")
    legend(fig, axes)
    return [Drawn(f"{t.manifest['name']}_tune_best_so_far", fig,
                  f"{t.manifest['name']}: the best validation {t.select} each arm had reached after each of its "
                  "trials (line), and every completed trial (dots). A line still falling at the right edge says more "
                  "trials would have helped that arm.")]


def importance(t: Tuned) -> list[Drawn]:
    imp = analysis.importance(t)
    if imp.empty:
        return []
    keys = list(dict.fromkeys(imp["param"]))
    arms = list(dict.fromkeys(imp["arm"]))
    fig, axes = new(1, 1, width=max(5.0, 1.3 * len(keys) * len(arms) ** 0.5 + 2), height=3.8)
    ax = axes[0][0]
    width = 0.8 / len(arms)
    for i, label in enumerate(arms):
        g = imp[imp["arm"] == label].set_index("param").reindex(keys)
        xs = np.arange(len(keys)) + (i - (len(arms) - 1) / 2) * width
        bars(ax, xs, list(zip(g["importance"], g["lo"].fillna(g["importance"]), g["hi"].fillna(g["importance"]))),
             width, _style(t, label)[0], analysis.short_label(label))
    ax.set_xticks(np.arange(len(keys)))
    ax.set_xticklabels(keys, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set(title=f"{t.manifest['name']}: which hyperparameters mattered", ylabel="fANOVA importance (sums to 1)")
    legend(fig, axes)
    return [Drawn(f"{t.manifest['name']}_tune_importance", fig,
                  f"{t.manifest['name']}: fANOVA importance of each searched key per arm (Optuna), on its completed "
                  f"trials; error bars: 2.5-97.5 percentiles over {analysis.BOOTSTRAP} bootstrap resamples of those "
                  "trials. Few trials give wide bars: read an importance only with its spread.")]


def sensitivity(t: Tuned) -> list[Drawn]:
    trials = t.trials[t.trials["state"].isin(["ok", "pruned"])] if len(t.trials) else t.trials
    keys = [k for k in t.space if f"param.{k}" in trials]
    if trials.empty or not keys:
        return []
    fig, axes = new(len(keys), 1, width=4.2, height=3.4, sharey=True)
    for ax, key in zip(axes[0], keys):
        dist = t.space[key]
        for label, g in trials.groupby("arm", sort=False):
            c, m = _style(t, label)
            for state, filled in (("ok", True), ("pruned", False)):
                s = g[g["state"] == state]
                if s.empty:
                    continue
                xs = _positions(s[f"param.{key}"], dist)
                ax.scatter(xs, s["value"], s=22, marker=m, label=f"{analysis.short_label(label)}" if filled else None,
                           facecolors=c if filled else "none", edgecolors=c, lw=1.0, alpha=0.8)
        if dist["kind"] == "choice":
            ax.set_xticks(range(len(dist["choices"])))
            ax.set_xticklabels([str(v) for v in dist["choices"]], fontsize=8)
        elif dist["kind"].startswith("log"):
            ax.set_xscale("log")
            plain_log(ax.xaxis, trials[f"param.{key}"].astype(float))
        if dist["kind"] in ("int", "log_int"):
            integer_ticks(ax.xaxis, dist["low"], dist["high"], log=dist["kind"] == "log_int")
        ax.set(title=key, xlabel=key, ylabel=f"validation {t.select}")
    for ax in axes[0]:
        log_y(ax, trials["value"].dropna(), t.select_goal)
    ax = axes[0][0]
    ax.scatter([], [], s=22, marker="o", facecolors="0.4", edgecolors="0.4", label="completed")
    ax.scatter([], [], s=22, marker="o", facecolors="none", edgecolors="0.4", label="pruned")
    legend(fig, axes)
    return [Drawn(f"{t.manifest['name']}_tune_sensitivity", fig,
                  f"{t.manifest['name']}: validation {t.select} of every trial against each searched key, one panel "
                  "each; filled = completed, hollow = pruned (its value when it was stopped). A steep, narrow valley "
                  "is a hyperparameter the arm is sensitive to.")]


def _value(v) -> str:
    """A searched value for a table: a text or boolean choice as itself, a number through `num`."""
    return str(v) if isinstance(v, (str, bool, np.bool_)) else num(v)


def _positions(values: pd.Series, dist: dict):
    if dist["kind"] != "choice":
        return values.astype(float)
    index = {str(v): i for i, v in enumerate(dist["choices"])}
    jitter = np.linspace(-0.12, 0.12, max(len(values), 1))
    return [index.get(str(v), math.nan) + j for v, j in zip(values, jitter)]


def has_trials(t: Tuned) -> bool:
    return len(t.trials) > 0


def has_importance(t: Tuned) -> bool:
    return len(t.trials) > 0 and bool(t.space)


def has_searched_values(t: Tuned) -> bool:
    done = t.trials[t.trials["state"].isin(["ok", "pruned"])] if len(t.trials) else t.trials
    return len(done) > 0 and any(f"param.{k}" in done for k in t.space)


# --------------------------------------------------------------------------- tables and text
def tables_of(t: Tuned) -> dict[str, pd.DataFrame]:
    name = t.manifest["name"]
    return {f"{name}_tuned_comparison": analysis.comparison(t), f"{name}_tuned_head_to_head": analysis.head_to_head(t),
            f"{name}_tuned_best_so_far": analysis.best_so_far(t), f"{name}_tuned_importance": analysis.importance(t)}


def blocks(t: Tuned, frames: dict[str, pd.DataFrame], figures: list[Drawn]) -> list[Block]:
    name = t.manifest["name"]
    comp, h2h = frames[f"{name}_tuned_comparison"], frames[f"{name}_tuned_head_to_head"]
    imp = frames[f"{name}_tuned_importance"]
    out: list[Block] = [Heading(3, f"{name}: each cell at its best"),
                        Para(f"At an equal budget of {analysis.budget_text(t)}. Search space: "
                             + "; ".join(f"`{k}` {d['text']}" for k, d in t.space.items()) + "."),
                        Bullets(analysis.answer(t))]
    if len(comp):
        keys = [c for c in comp.columns if c.startswith("best.")]
        display = pd.DataFrame({
            "arm": comp["arm"], "trials": comp["trials"], "pruned": comp["pruned"],
            "diverged / failed": comp["diverged"].astype(str) + " / " + comp["failed"].astype(str),
            "best trial": comp["best_trial"].map(num), f"best validation {t.select}": comp["best_val"].map(num),
            **{k.removeprefix("best."): comp[k].map(_value) for k in keys},
            "params": comp["params"].map(num),
            f"test {t.metric}, final seeds ({'geometric mean' if (comp['scale'] == 'log').all() else 'mean'} [95% CI])":
                [interval(m, lo, hi) for m, lo, hi in zip(comp["test_centre"], comp["test_lo"], comp["test_hi"])],
            "best trivial baseline": [f"{b} ({num(v)})" if isinstance(b, str) else NONE
                                      for b, v in zip(comp["baseline"], comp["baseline_value"])],
            "n": comp["final_n"], "still improving": comp["still_improving"].astype(str) + "/" + comp["final_n"].astype(str)})
        out.append(Table(display, "the winning configuration of each arm side by side, and its final seeds"))
    if len(h2h):
        fam = int(h2h.loc[h2h["family"] == "metric", "family_size"].max()) if (h2h["family"] == "metric").any() else 0
        out.append(Table(pd.DataFrame({
            "a vs b": h2h["a"] + " vs " + h2h["b"], "a": h2h["centre_a"].map(num), "b": h2h["centre_b"].map(num),
            "effect [95% CI]": [f"{e} {interval(v, lo, hi)}" for e, v, lo, hi in zip(h2h["effect"], h2h["value"], h2h["lo"], h2h["hi"])],
            "Holm p (difference)": h2h["p_holm"].map(p_value), "Holm p (equivalence)": h2h["p_equiv_holm"].map(p_value),
            "verdict": [verdict_text(r) for r in h2h.itertuples()]}).fillna(NONE),
            f"final seeds, test {t.metric}; Holm over the {fam} pair(s) of arms, and apart over the arms against the baseline"))
    if len(imp):
        out.append(Table(pd.DataFrame({"arm": imp["arm"], "hyperparameter": imp["param"],
                                       "importance": imp["importance"].map(num),
                                       "95% bootstrap range": [f"{num(a)}–{num(b)}" for a, b in zip(imp["lo"], imp["hi"])],
                                       "completed trials": imp["n"]}), "fANOVA importance per arm"))
    out += [Image(d.png, d.caption) for d in figures]
    return out
