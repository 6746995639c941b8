"""Each claim's evaluator: its experiments' results -> findings with verdicts, a budget
line and one figure. Results are read through the one reader (grucli.store.reader) or
tune's (grucli.tune.analysis); nothing here trains (grucli.claims.run does).

Every evaluator takes the results folders of its claim's experiments, in the order the
registry lists them (for `speed`: the folder holding bench.csv), and returns Evidence. It is
registered under its claim's id (`@evaluates(id)`, EVALUATORS): grucli.claims.run finds it
there. The papers' own numbers are not here: experiments/claims/literature.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grucli import metrics, stats
from grucli.claims.verdict import INCONCLUSIVE, Finding, below, better
from grucli.claims.verdict import comparable as equivalent
from grucli.numbers import num, p_text, share
from grucli.report import figure
from grucli.tables import order_cells

TARGET_SHARE = 0.5  # a length counts as solved when at least this share of seeds reach the target
EVALUATORS: dict = {}  # claim id -> its evaluator (grucli.claims.CLAIMS)


def evaluates(claim_id: str):
    """Register the decorated function as the evaluator of claim `claim_id`."""
    def register(fn):
        EVALUATORS[claim_id] = fn
        return fn
    return register


@dataclass
class Evidence:
    findings: list[Finding]
    budget: str  # epochs / steps / trials / seeds the verdicts rest on
    figure: object | None = None  # a matplotlib Figure
    caption: str = ""
    table: pd.DataFrame | None = None  # the numbers behind the figure (written as CSV)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    """One experiment's results folder and the run ids of its grid as the file reads now
    (None: every run in the folder): runs left by an earlier version of the file are not
    this claim's evidence."""

    dir: Path
    run_ids: frozenset[str] | None = None

    def __truediv__(self, other) -> Path:
        return self.dir / other


def _dir(src) -> Path:
    return src.dir if isinstance(src, Source) else Path(src)


# --------------------------------------------------------------------------- helpers
def _alpha(src) -> float:
    """The level a claim's tests use: alpha, or Pocock's per-look level where the seeds were
    added look by look (`grucli claims --until-decided` records it in experiment.json)."""
    import json

    from grucli import power
    from grucli.declared import VerdictSpec

    try:
        info = json.loads((_dir(src) / "experiment.json").read_text())
        spec = VerdictSpec(**info.get("verdict") or {})
    except (OSError, ValueError):
        return stats.ALPHA
    return power.pocock_alpha(tuple(spec.looks), spec.alpha) if info.get("until_decided") else spec.alpha


def _runs(src) -> pd.DataFrame:
    from grucli.store.reader import collect

    runs = collect([_dir(src)], histories=False).runs
    if isinstance(src, Source) and src.run_ids is not None and len(runs):
        runs = runs[runs["run_id"].isin(src.run_ids)]
    if runs.empty or "state" not in runs:
        raise FileNotFoundError(f"{_dir(src)}: no finished runs")
    return runs[runs["state"] == "ok"].copy()


def _improving(df: pd.DataFrame) -> int:
    return int(df["still_improving"].fillna(False).astype(bool).sum()) if "still_improving" in df else 0


def _budget(df: pd.DataFrame) -> str:
    from grucli import budget

    epochs = [int(v) for v in df.get("timing.epochs", pd.Series(dtype=float)).dropna()]
    steps = [int(v) for v in df.get("timing.steps", pd.Series(dtype=float)).dropna()]
    seeds = df.groupby([c for c in df.columns if c.startswith("varied.")] or ["cell"])["seed"].nunique()
    n = f"{int(seeds.min())}" if len(seeds) and seeds.min() == seeds.max() else f"{int(seeds.min())}-{int(seeds.max())}"
    return f"{budget.describe(epochs, steps)}, {n} seeds per setting"


VERDICT_COLOUR = {"supported": "#D55E00", "not supported": "0.45", "inconclusive": "#E69F00"}


def _ratio_bars(ax, labels: list[str], ratios: list[float], verdicts: list[str], band: float = 0.0) -> None:
    """GRU / LSTM ratios as bars coloured by their finding's verdict, 1 and the +-band drawn."""
    ax.bar(range(len(ratios)), ratios, color=[VERDICT_COLOUR.get(v, "0.7") for v in verdicts])
    ax.axhline(1.0, color="0.3", lw=1)
    ax.grid(axis="x", visible=False)
    if band:
        ax.axhspan(1 - band, 1 + band, color="0.85", zorder=0, label=f"within +-{share(band)}: inconclusive")
    ax.set_xticks(range(len(ratios)))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=v) for v, c in VERDICT_COLOUR.items() if v in verdicts]
    ax.legend(handles=handles, fontsize=7, loc="best")


def _scale(df: pd.DataFrame):
    """The scale of the runs' metric (grucli.metrics)."""
    return metrics.scale_of(str(df["metric"].iloc[0])) if "metric" in df and len(df) else metrics.RAW


def _pairs(df: pd.DataFrame, by: list[str], a: str, b: str, goal: str, value: str = "value"):
    """Per setting (the `by` columns): the values of cell a and cell b, and Welch's p."""
    out = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        va = g.loc[g["cell"] == a, value].tolist()
        vb = g.loc[g["cell"] == b, value].tolist()
        out.append((dict(zip(by, key)), va, vb, stats.effect(va, vb, _scale(g)).p_diff, g))
    return out


# --------------------------------------------------------------------------- 1 params
@evaluates("params")
def params(dirs: list, cells: tuple[str, ...]) -> Evidence:
    a, b = cells
    from grucli.model import model_params

    df = _runs(dirs[0])
    df["H"] = df["hidden_size"].astype(int)
    df["formula"] = [model_params(c, h, input_size=2, output_size=1, layers=1, bidirectional=False)
                     for c, h in zip(df["cell"], df["H"])]
    findings = []
    for H, g in df.groupby("H"):
        by = g.set_index("cell")
        if not {a, b} <= set(by.index):
            continue
        f = below(float(by.at[a, "params"]), float(by.at[b, "params"]), a, b,
                  label=f"H = {H}", unit=" parameters")
        if (g["params"] != g["formula"]).any():
            f = Finding(f.label, "not supported", f.evidence + "; a count differs from its closed form")
        findings.append(f)
    fig, (ax,) = figure.row()
    for cell in order_cells(df["cell"].unique()):
        g = df[df["cell"] == cell].sort_values("H")
        ax.plot(g["H"], g["params"], **figure.cell_style(cell))
    ax.set(xscale="log", yscale="log", xlabel="hidden size H", ylabel="parameters (adding: I = 2, O = 1)",
           title="parameters vs H")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Evidence(findings, "exact counts (no training needed; one step per model)", fig,
                    "Parameters per cell and hidden size, counted on the model and equal to the closed form: "
                    "GRU 3H(I+H)+6H, LSTM 4H(I+H)+8H, ratio -> 3/4 as H grows.",
                    df[["cell", "H", "params", "formula"]].sort_values(["H", "cell"]))


# --------------------------------------------------------------------------- 2 speed
@evaluates("speed")
def speed(dirs: list, cells: tuple[str, ...]) -> Evidence:
    ca, cb = cells
    df = pd.read_csv(dirs[0] / "bench.csv")
    col = "train_cpu_ms"
    findings, rows = [], []
    for impl, g in df.groupby("impl", sort=False):
        gru, lstm = g[g["cell"] == ca], g[g["cell"] == cb]
        for _, r in gru.iterrows():
            same = lstm[(lstm["hidden"] == r["hidden"]) & (lstm["seq_len"] == r["seq_len"]) & (lstm["batch"] == r["batch"])]
            if len(same):
                rows.append((impl, f"equal H = {r['hidden']}", r[col], same.iloc[0][col]))
            peers = lstm[(lstm["seq_len"] == r["seq_len"]) & (lstm["batch"] == r["batch"]) & (lstm["hidden"] != r["hidden"])]
            if len(peers):
                gap = (peers["params"] - r["params"]).abs() / r["params"]
                best = peers.loc[gap.idxmin()]
                if gap.min() <= 0.02:
                    rows.append((impl, f"equal params (GRU H = {r['hidden']}, LSTM H = {best['hidden']})", r[col],
                                 best[col]))
    for impl, label, a, b in rows:
        findings.append(below(a, b, ca, cb, label=f"{impl}, {label}", unit=" ms", tolerance=0.05))
    fig, (ax,) = figure.row(width=7.0, height=4.2)
    _ratio_bars(ax, [f"{i}: {l}" for i, l, _, _ in rows], [a / b for _, _, a, b in rows],
                [f.verdict for f in findings], band=0.05)
    ax.set(ylabel="GRU / LSTM training-step time", title="does the GRU train faster? (below 1: yes)")
    r0 = df.iloc[0]
    return Evidence(findings, f"median CPU time over {int(r0['repeats'])} interleaved rounds, {int(r0['threads'])} "
                              f"thread(s), T = {int(r0['seq_len'])}, B = {int(r0['batch'])}", fig,
                    "GRU / LSTM training-step time per implementation (below 1: the GRU is faster).",
                    pd.DataFrame(rows, columns=["impl", "comparison", "gru_ms", "lstm_ms"]))


# --------------------------------------------------------------------------- 3 comparable
@evaluates("comparable")
def comparable(dirs: list, cells: tuple[str, ...]) -> Evidence:
    a, b = cells
    from grucli.tune import analysis

    findings, table, budgets = [], [], []
    fig, axes = figure.row(len(dirs))
    for ax, d in zip(axes, dirs):
        t = analysis.load(_dir(d))
        arms = {a["point"].get("model.cell"): a for a in t.arms}
        values = {c: t.finals(arms[c])[f"test.{t.metric}"].tolist() for c in (a, b) if c in arms}
        improving = sum(_improving(t.finals(arms[c])) for c in values)
        task = t.runs["task"].dropna().iloc[0] if len(t.runs) else _dir(d).name
        findings.append(equivalent(values.get(a, []), values.get(b, []), a, b, scale=metrics.scale_of(t.metric), goal=t.goal,
                                   margin=t.declared.margin, still_improving=improving,
                                   label=f"{task} (test {t.metric})"))
        budgets.append(f"{task}: {analysis.budget_text(t)}")
        for c, v in values.items():
            table += [{"task": task, "cell": c, "test": x} for x in v]
            ax.scatter([c] * len(v), v, **figure.cell_style(c, label=False))
            figure.centre_bar(ax, c, v, metrics.scale_of(t.metric))
        ax.set(title=f"{task}: tuned, test {t.metric}", ylabel=f"test {t.metric}")
        ax.grid(alpha=0.3)
    return Evidence(findings, "; ".join(budgets), fig,
                    "Each cell at its tuned best: final seeds (dots), the mean (geometric for log-scale metrics) "
                    "and its 95% interval on the metric's scale (bars).", pd.DataFrame(table))


# --------------------------------------------------------------------------- 4 long range
@evaluates("long_range")
def long_range(dirs: list, cells: tuple[str, ...]) -> Evidence:
    a, b = cells
    df = _runs(dirs[0])
    T = "config.task.seq_len"
    pairs = _pairs(df, ["task", T], a, b, "min")
    goal = {task: g["goal"].iloc[0] for task, g in df.groupby("task")}
    adjusted = stats.holm([p for *_, p, _ in pairs])
    findings = []
    for (setting, va, vb, _, g), p in zip(pairs, adjusted):
        if setting[T] != df[df["task"] == setting["task"]][T].max():
            continue  # the claim is about the longest dependencies; shorter T are in the figure
        findings.append(better(va, vb, goal[setting["task"]], a, b, scale=_scale(g), p_adjusted=p, alpha=_alpha(dirs[0]),
                               still_improving=_improving(g), label=f"{setting['task']}, T = {setting[T]}"))
    tasks = sorted(df["task"].unique())
    fig, axes = figure.row(len(tasks))
    for ax, task in zip(axes, tasks):
        g = df[df["task"] == task]
        figure.cells_against(ax, g, T, "value", log_y=goal[task] == "min")
        ax.set(title=task, xlabel="T", ylabel=f"test {g['metric'].iloc[0]}")
    return Evidence(findings, _budget(df), fig, "Test metric vs sequence length, mean (geometric for log-scale "
                    "metrics) and its 95% interval over seeds; "
                    "Holm-corrected over every task x length.", df[["task", T, "cell", "seed", "value"]])


# --------------------------------------------------------------------------- 5 data
@evaluates("data")
def data_efficiency(dirs: list, cells: tuple[str, ...]) -> Evidence:
    a, b = cells
    df = _runs(dirs[0])
    N = "config.task.n_train"
    pairs = _pairs(df, ["task", N], a, b, "min")
    adjusted = stats.holm([p for *_, p, _ in pairs])
    goal = df["goal"].iloc[0]
    smallest = sorted(df[N].unique())[:2]
    findings = [better(va, vb, goal, a, b, scale=_scale(g), p_adjusted=p, alpha=_alpha(dirs[0]),
                       still_improving=_improving(g),
                       label=f"{s['task']}, n_train = {s[N]}")
                for (s, va, vb, _, g), p in zip(pairs, adjusted) if s[N] in smallest]
    fig, (ax,) = figure.row()
    figure.cells_against(ax, df, N, "value", log_x=True, log_y=goal == "min")
    ax.set(xlabel="training sequences (log scale)", ylabel=f"test {df['metric'].iloc[0]}",
           title=f"{df['task'].iloc[0]}: metric vs training-set size")
    return Evidence(findings, _budget(df), fig, "Test metric vs training-set size (equal optimiser steps), mean "
                    "(geometric for log-scale metrics) and its 95% interval over seeds; verdicts at the two "
                    "smallest sizes, Holm-corrected over every size.",
                    df[["task", N, "cell", "seed", "value"]])


# --------------------------------------------------------------------------- 6 sensitivity
@evaluates("sensitivity")
def sensitivity(dirs: list, cells: tuple[str, ...]) -> Evidence:
    a, b = cells
    from scipy import stats as st

    from grucli.tune import analysis

    t = analysis.load(_dir(dirs[0]))
    ok = t.trials[t.trials["state"] == "ok"].copy()
    ok["cell"] = [arm.split("=")[-1] for arm in ok["arm"]]
    ok["log10"] = np.log10(ok["value"].astype(float).clip(lower=1e-12))
    spread = {c: g["log10"].to_numpy() for c, g in ok.groupby("cell")}
    findings = []
    if {a, b} <= set(spread) and min(len(spread[a]), len(spread[b])) >= 3:
        p = float(st.levene(spread[a], spread[b], center="median").pvalue)
        iqr = {c: float(np.subtract(*np.percentile(v, [75, 25]))) for c, v in spread.items()}
        med = {c: 10 ** float(np.median(v)) for c, v in spread.items()}
        text = (f"IQR of log10 validation {t.select} over trials: {a} {num(iqr[a])}, {b} {num(iqr[b])} "
                f"decades (n = {len(spread[a])}, {len(spread[b])}), Brown-Forsythe {p_text(p)}; median trial "
                f"{a} {num(med[a])}, {b} {num(med[b])} (a narrow spread can also mean every trial failed alike)")
        verdict = "inconclusive" if p >= stats.ALPHA else ("supported" if iqr[a] > iqr[b] else "not supported")
        findings.append(Finding("spread of the trials", verdict, text))
    imp = analysis.importance(t)
    notes = []
    if len(imp):
        for cell, g in imp.groupby("arm"):
            notes.append(f"{cell}: importance (fANOVA on all trials; in brackets the middle 95% of it over bootstrap "
                         "resamples of the trials, which can miss the all-trials value when trials are few) " +
                         ", ".join(f"{r.param} {num(r.importance, 2)} [{num(r.lo, 2)}, {num(r.hi, 2)}]" for r in g.itertuples()))
    fig, (ax,) = figure.row()
    cells_ = order_cells(spread)
    ax.boxplot([spread[c] for c in cells_], tick_labels=cells_)
    for i, c in enumerate(cells_, 1):
        ax.scatter(np.full(len(spread[c]), i) + np.random.default_rng(0).uniform(-0.08, 0.08, len(spread[c])),
                   spread[c], s=12, **figure.cell_style(c, label=False))
    ax.set(ylabel=f"log10 validation {t.select} per trial", title="the same random search per cell")
    return Evidence(findings, analysis.budget_text(t), fig,
                    "Every completed trial's validation result per cell (log scale): a wider box = more sensitive "
                    "to the searched hyperparameters.", ok[["cell", "trial", "value"]], notes)


# --------------------------------------------------------------------------- 7 memory
@evaluates("memory")
def memory(dirs: list, cells: tuple[str, ...]) -> Evidence:
    ca, cb = cells
    df = _runs(dirs[0])
    df["impl_"] = df["config.model.impl"]
    findings, rows = [], []
    for (impl, H), g in df.groupby(["impl_", "hidden_size"]):
        by = g.set_index("cell")
        if not {ca, cb} <= set(by.index):
            continue
        for what, col in (("activations", "timing.saved_activation_bytes"), ("parameters", "timing.param_bytes")):
            a, b = float(by.at[ca, col]), float(by.at[cb, col])
            rows.append({"impl": impl, "H": int(H), "bytes": what, ca: a, cb: b, "ratio": a / b})
            if what == "activations" or impl == "torch":  # parameter bytes do not depend on the impl
                findings.append(below(a, b, ca, cb, label=f"{what}, {impl}, H = {int(H)}", unit=" B"))
    table = pd.DataFrame(rows)
    fig, (ax,) = figure.row(width=6.0, height=3.8)
    act = table[table["bytes"] == "activations"]
    verdicts = {f.label: f.verdict for f in findings}
    _ratio_bars(ax, [f"{r.impl}, H = {r.H}" for r in act.itertuples()], act["ratio"].tolist(),
                [verdicts.get(f"activations, {r.impl}, H = {r.H}", "") for r in act.itertuples()])
    ax.set(ylabel="GRU / LSTM saved-activation bytes", title="memory a training step keeps for its backward")
    T = int(df["config.task.seq_len"].iloc[0])
    B = int(df["config.train.batch_size"].iloc[0])
    return Evidence(findings, f"one batch of {B} sequences of T = {T} (bytes are exact, no seeds needed)", fig,
                    "GRU / LSTM bytes of the activations saved for the backward, per implementation (saved-tensor "
                    "hooks).", table)


# --------------------------------------------------------------------------- 8 gru -> rnn
@evaluates("gru_to_rnn")
def gru_to_rnn(dirs: list, cells: tuple[str, ...]) -> Evidence:
    import torch

    from grucli import cells
    from grucli.cells.layers import layer_weights
    from grucli.inspect.analysis import load_run

    df = _runs(dirs[0])
    run = load_run(df["run_dir"].iloc[0])
    gru = cells.get(run.cfg.model.cell)
    red = gru.reduces_to
    rnn = cells.get(red.cell)
    model = run.model.double()
    w = layer_weights(model.rnn, gru, 0)
    wr = red.weights(w)
    x = run.data.test.x.double()
    B, H = x.shape[0], w.weight_hh.shape[1]
    h_f = h_r = h_free = torch.zeros(B, H, dtype=torch.float64)
    forced_gap, free_gap, trace = 0.0, 0.0, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h_f = gru.step(gru.project(x[:, t], w), (h_f,), w, force=red.force)[0][0]
            h_r = rnn.step(rnn.project(x[:, t], wr), (h_r,), wr)[0][0]
            h_free = gru.step(gru.project(x[:, t], w), (h_free,), w)[0][0]
            forced_gap = max(forced_gap, float((h_f - h_r).abs().max()))
            free_gap = max(free_gap, float((h_free - h_r).abs().max()))
            trace.append((t + 1, forced_gap, free_gap))
    ok = forced_gap <= 1e-12 and free_gap > 1e-3
    finding = Finding(f"{gru.name} -> {rnn.name}, trained weights", "supported" if ok else "not supported",
                      f"{red.statement}. Over {B} test sequences of T = {x.shape[1]} (float64): largest |h_forced - "
                      f"h_rnn| = {num(forced_gap, 2)}; the same GRU with its own gates differs from that RNN by "
                      f"{num(free_gap)}")
    tr = pd.DataFrame(trace, columns=["t", "forced_vs_rnn", "free_vs_rnn"])
    fig, (ax,) = figure.row()
    ax.semilogy(tr["t"], tr["forced_vs_rnn"].clip(lower=1e-18), label="GRU, r = 1 and z = 0 forced", color="#D55E00")
    ax.semilogy(tr["t"], tr["free_vs_rnn"], label="GRU, its own gates", color="0.5", ls="--")
    ax.set(xlabel="time step", ylabel="max |h - h_rnn| so far", title="GRU with forced gates vs the tanh RNN")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    from grucli import budget

    trained = budget.describe(df["timing.epochs"].tolist(), df["timing.steps"].tolist()).removesuffix(" per run")
    return Evidence([finding], f"weights of one GRU trained for {trained}", fig,
                    "Largest state difference to the tanh RNN (candidate weights), step by step.", tr)


# --------------------------------------------------------------------------- 9 counting
@evaluates("counting")
def counting(dirs: list, cells: tuple[str, ...]) -> Evidence:
    """Weiss et al. 2018 twice: as the paper did it (counting_next.yaml: a next-symbol
    acceptor; the largest n it recognises, near misses rejected) and as a classifier
    (counting.yaml: accuracy on n beyond the training range). A run that never accepted all
    of its own training positives has not learned its training range: a verdict resting on
    it is inconclusive, and says so."""
    a, b = cells
    nxt, clf = _runs(dirs[0]), _runs(dirs[1])
    N = int(nxt["config.task.max_n_train"].iloc[0])
    top = int(nxt["config.task.max_n_test"].iloc[0])
    lo, hi = int(clf["config.task.max_n_train"].iloc[0]), int(clf["config.task.max_n_test"].iloc[0])
    values = {"next": {c: nxt.loc[nxt["cell"] == c, "value"].tolist() for c in (a, b)},
              "clf": {c: clf.loc[clf["cell"] == c, "value"].tolist() for c in (a, b)}}
    ps = stats.holm([stats.effect(values[k][a], values[k][b], _scale(df)).p_diff for k, df in (("next", nxt),
                                                                                             ("clf", clf))])
    alpha = min(_alpha(dirs[0]), _alpha(dirs[1]))
    f_next = better(values["next"][a], values["next"][b], "max", a, b, scale=_scale(nxt), p_adjusted=ps[0], alpha=alpha,
                    label=f"next-symbol acceptor: largest n recognised (trained n <= {N}, checked to {top})")
    unfit = nxt[nxt["train.positives_accepted"] < 1]
    if len(unfit):
        f_next = Finding(f_next.label, INCONCLUSIVE, f_next.evidence + f"; {len(unfit)} run(s) never accepted all their "
                         "training positives (" + ", ".join(f"{r.cell} seed {r.seed}: {share(r['train.positives_accepted'])}"
                                                            for _, r in unfit.iterrows()) + "): this measures the budget",
                         f_next.pair, f_next.effect, stats.UNDECIDED)
    f_clf = better(values["clf"][a], values["clf"][b], "max", a, b, scale=_scale(clf), p_adjusted=ps[1], alpha=alpha,
                   still_improving=_improving(clf), label=f"classifier: test accuracy on {lo} < n <= {hi}")
    notes = [f"inside the training range (n <= {N}), next-symbol acceptor validation accuracy (near misses "
             "included): " + "; ".join(f"{c} " + ", ".join(f"{num(v, 3)}" for v in nxt.loc[nxt['cell'] == c, 'val.accuracy'])
                                        for c in (a, b)),
             f"inside the training range (n <= {lo}), classifier validation accuracy: " +
             "; ".join(f"{c} " + ", ".join(f"{num(v, 2)}" for v in clf.loc[clf['cell'] == c, 'val.accuracy']) for c in (a, b)),
             "next-symbol acceptor, share of the training positives accepted: " +
             "; ".join(f"{c} " + ", ".join(f"{num(v, 2)}" for v in nxt.loc[nxt['cell'] == c, 'train.positives_accepted'])
                       for c in (a, b)) +
             "; positives alone accepted up to n (accepted_to_n, near misses left out): " +
             "; ".join(f"{c} " + ", ".join(num(v) for v in nxt.loc[nxt['cell'] == c, 'test.accepted_to_n'])
                       for c in (a, b) if "test.accepted_to_n" in nxt),
             f"next-symbol acceptor, share of the checked strings (n <= {top}, near misses included) judged right: " +
             "; ".join(f"{c} " + ", ".join(f"{num(v, 3)}" for v in nxt.loc[nxt['cell'] == c, 'test.accuracy'])
                       for c in (a, b))]
    table = pd.concat([nxt.assign(setup="next-symbol", measure="largest n"),
                       clf.assign(setup="classifier", measure=f"test accuracy {lo} < n <= {hi}")])
    return Evidence([f_next, f_clf], f"next-symbol: {_budget(nxt)}; classifier: {_budget(clf)}",
                    _counting_figure(nxt, clf, N, top), "Left: the largest n each run recognises (a^n b^n accepted, "
                    "near misses rejected), per seed; dotted: the training range. Right: classifier test accuracy "
                    f"per seed on {lo} < n <= {hi}; dashed: the best length-only rule.",
                    table[["setup", "measure", "cell", "seed", "value"]], notes)


def _counting_figure(nxt: pd.DataFrame, clf: pd.DataFrame, N: int, top: int):
    fig, (left, right) = figure.row(2, width=4.2)
    for ax, df in ((left, nxt), (right, clf)):
        cells_ = order_cells(df["cell"].unique())
        for i, c in enumerate(cells_):
            v = df.loc[df["cell"] == c, "value"].to_numpy()
            ax.scatter(np.full(len(v), i), v, **figure.cell_style(c))
        ax.set(xticks=range(len(cells_)), xticklabels=cells_, xlim=(-0.5, len(cells_) - 0.5))
        ax.grid(alpha=0.3)
    left.axhline(N, ls=":", color="0.4", label="training range")
    left.set(ylim=(-5, top + 5), ylabel="largest n recognised", title="next-symbol acceptor (the paper's setup)")
    right.axhline(float(clf["baseline.length_rule_accuracy"].iloc[0]) if "baseline.length_rule_accuracy" in clf
                  else 0.5, ls="--", color="0.4", label="best length-only rule")
    right.set(ylim=(0.4, 1.02), ylabel="test accuracy", title="classifier, n beyond training")
    left.legend(fontsize=8, loc="center")
    right.legend(fontsize=8, loc="center")
    return fig


# --------------------------------------------------------------------------- 10 polyphonic
@evaluates("polyphonic")
def polyphonic(dirs: list, cells: tuple[str, ...]) -> Evidence:
    """Chung et al. 2014 as a tuned study: the paper's GRU (cells[0]) against its LSTM and
    the tanh RNN (cells[1:3]), and torch's GRU against torch's LSTM (cells[3:5]), on the
    final seeds of each cell's tuned learning rate, Holm over the three. The paper reports
    the best run per cell: here the final run with the best validation NLL, beside the mean."""
    from grucli.tune import analysis

    t = analysis.load(_dir(dirs[0]))
    arms = {a["point"].get("model.cell"): a for a in t.arms}
    finals = {c: t.finals(arms[c]) for c in cells if c in arms}
    value = {c: f[f"test.{t.metric}"].tolist() for c, f in finals.items()}
    scale = metrics.scale_of(t.metric)
    paper_gru, *paper_others = cells[:3]
    pairs = [(paper_gru, c) for c in paper_others] + ([tuple(cells[3:5])] if len(cells) >= 5 else [])
    pairs = [(x, y) for x, y in pairs if value.get(x) and value.get(y)]
    ps = stats.holm([stats.effect(value[x], value[y], scale).p_diff for x, y in pairs])
    findings = [better(value[x], value[y], "min", x, y, scale=scale, p_adjusted=p,
                       still_improving=_improving(pd.concat([finals[x], finals[y]])), label=f"{x} vs {y}", unit=" nats")
                for (x, y), p in zip(pairs, ps)]
    rows, notes = [], []
    for c, f in finals.items():
        best = f.loc[f[f"val.{t.select}"].idxmin()] if len(f) else None
        lr = ((arms[c].get("best") or {}).get("params") or {}).get("train.lr")
        mean = stats.estimate(value[c], scale).centre
        rows += [{"cell": c, "seed": int(r["seed"]), "params": int(r["params"]), "value": r[f"test.{t.metric}"],
                  "best_run": r["run_id"] == (best["run_id"] if best is not None else None)} for _, r in f.iterrows()]
        if best is not None:
            notes.append(f"{c}: best run (lowest validation NLL) test {num(best[f'test.{t.metric}'])}, {scale.mean_word} "
                         f"over {len(f)} seeds {num(mean)}" + (f", tuned lr {num(lr)}" if lr else "") +
                         f", {int(best['params']):,} parameters")
    fig, (ax,) = figure.row(width=6.0)
    cells_ = [c for c in cells if c in value]
    for i, c in enumerate(cells_):
        ax.scatter(np.full(len(value[c]), i), value[c], **figure.cell_style(c))
        figure.centre_bar(ax, i + 0.15, value[c], metrics.scale_of(t.metric))
    ax.set(xticks=range(len(cells_)), xticklabels=cells_, ylabel="test NLL per step (nats)",
           title="Bach chorales: next-step NLL, each cell tuned")
    ax.grid(alpha=0.3)
    return Evidence(findings, analysis.budget_text(t), fig,
                    "Test NLL per time step of each cell's final seeds at its tuned learning rate (dots), geometric "
                    "mean and its 95% interval (bars).", pd.DataFrame(rows), notes)


# --------------------------------------------------------------------------- 12 forget bias
@evaluates("forget_bias")
def forget_bias(dirs: list, cells: tuple[str, ...]) -> Evidence:
    """Jozefowicz et al. 2015, per task (one tuned study each): the LSTM with forget bias 1
    against the same LSTM with 0 (directional, Holm over the tasks), and against the GRU
    (equivalence inside the declared margin). Arms are told apart by their grid point."""
    from grucli.tune import analysis

    lstm, gru = cells
    findings, table, budgets, directional = [], [], [], []
    fig, axes = figure.row(len(dirs))
    for ax, d in zip(axes, dirs):
        t = analysis.load(_dir(d))
        scale = metrics.scale_of(t.metric)
        arms = {}
        for arm in t.arms:
            p = arm["point"]
            name = f"{p.get('model.cell')} bias {p['model.forget_bias']:g}" if "model.forget_bias" in p else p.get("model.cell")
            arms[name] = t.finals(arm)
        one, zero = f"{lstm} bias 1", f"{lstm} bias 0"
        value = {k: f[f"test.{t.metric}"].tolist() for k, f in arms.items()}
        task = t.runs["task"].dropna().iloc[0] if len(t.runs) else _dir(d).name
        improving = {k: _improving(f) for k, f in arms.items()}
        directional.append((task, t, value[one], value[zero], improving[one] + improving[zero],
                            stats.effect(value[one], value[zero], scale).p_diff))
        findings.append(equivalent(value[one], value.get(gru, []), one, gru, scale=scale, goal=t.goal,
                                   margin=t.declared.margin, still_improving=improving[one] + improving.get(gru, 0),
                                   label=f"{task}: {one} vs {gru} (test {t.metric})"))
        budgets.append(f"{task}: {analysis.budget_text(t)}")
        for i, (k, v) in enumerate(value.items()):
            table += [{"task": task, "arm": k, "test": x} for x in v]
            ax.scatter([i] * len(v), v, color=figure.cell_style(k.split()[0])["color"], marker="o" if "1" in k or k == gru else "x")
            figure.centre_bar(ax, i + 0.15, v, metrics.scale_of(t.metric))
        ax.set(xticks=range(len(value)), xticklabels=list(value), title=f"{task}: tuned, test {t.metric}",
               ylabel=f"test {t.metric}",
               yscale="log" if scale.ratio and any(x > 0 for v in value.values() for x in v) else "linear")
        ax.grid(alpha=0.3)
    ps = stats.holm([p for *_, p in directional])
    findings = [better(a, b, t.goal, f"{lstm} bias 1", f"{lstm} bias 0", scale=metrics.scale_of(t.metric), p_adjusted=p,
                       still_improving=imp, label=f"{task}: forget bias 1 vs 0 (test {t.metric})")
                for (task, t, a, b, imp, _), p in zip(directional, ps)] + findings
    return Evidence(findings, "; ".join(budgets), fig,
                    "Each arm at its tuned learning rate: final seeds (dots; x = LSTM with forget bias 0), the mean "
                    "(geometric for log-scale metrics) and its 95% interval (bars).", pd.DataFrame(table))


# --------------------------------------------------------------------------- 11 adding limits
@evaluates("adding_limits")
def adding_limits(dirs: list, cells: tuple[str, ...]) -> Evidence:
    plain, *rest = cells
    df = _runs(dirs[0])
    T = "config.task.seq_len"
    target = float(df["target"].dropna().iloc[0])
    solved = (df.assign(hit=df["value"] < target).groupby(["cell", T])["hit"].mean() >= TARGET_SHARE)
    limit = {c: max([t for (cc, t), ok in solved.items() if cc == c and ok], default=0) for c in df["cell"].unique()}
    tried = sorted(int(t) for t in df[T].unique())
    solved_text = lambda c: f"T = {limit[c]}" if limit[c] else "none"  # noqa: E731
    findings = []
    for gated in rest:
        if plain in limit and gated in limit:
            a, b = limit[plain], limit[gated]
            verdict = ("supported" if a < b else "not supported" if a > b else "inconclusive")
            findings.append(Finding(f"{plain} vs {gated}", verdict,
                                    f"largest T solved (test MSE < {target:g} in >= {share(TARGET_SHARE)} of seeds; tried "
                                    f"{', '.join(map(str, tried))}): {plain} {solved_text(plain)}, {gated} "
                                    f"{solved_text(gated)}" + ("" if a != b else "; the same: no ordering")))
    fig, (ax,) = figure.row()
    figure.cells_against(ax, df, T, "value", log_y=True)
    ax.axhline(target, ls=":", color="0.4", label="target")
    ax.set(xlabel="T", ylabel="test MSE", title="adding: how long can each cell go?")
    return Evidence(findings, _budget(df), fig,
                    "Test MSE vs T per cell (geometric mean, 95% interval); dotted: the target.",
                    df[["cell", T, "seed", "value"]])

