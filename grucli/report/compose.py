"""The report's text, in reading order: what was run, the head-to-head verdicts, then
tables and figures. Turns the numeric tables into display tables and sentences; renders
nothing itself (see render.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

import grucli
from grucli import budget, metrics
from grucli.store.reader import DIVERGED, FAILED, IN_PROGRESS, OK, PRUNED, UNREADABLE, Collection
from grucli.report.render import Block, Bullets, Heading, Image, Para, Table
from grucli.cells import REFERENCE, label
from grucli.tables import PER_PACK, RATIO, TaskView, order_cells, short
from grucli.verdicts import also_different, oriented
from grucli.numbers import NONE, interval, num, p_text, p_value

STATES = (OK, DIVERGED, FAILED, PRUNED, IN_PROGRESS, UNREADABLE)


# --------------------------------------------------------------------------- sections
def what_was_run(col: Collection) -> list[Block]:
    runs = col.runs
    items = []
    for exp in col.experiments:
        mine = runs[runs["experiment"] == exp["name"]] if len(runs) else runs
        spec = exp.get("spec") or {}
        grid = " × ".join(f"`{k}` ∈ {{{', '.join(map(_grid_value, v))}}}" for k, v in (spec.get("grid") or {}).items())
        zips = "; ".join(" with ".join(f"`{k}`" for k in z) + " zipped" for z in spec.get("zip") or [])
        seeds = spec.get("seeds")
        seeds_text = ("1 seed (0)" if seeds == 1 else f"{seeds} seeds (0–{seeds - 1})" if isinstance(seeds, int)
                      else f"seeds {seeds}" if seeds else f"seeds {sorted(mine['seed'].dropna().unique().tolist())}"
                      if "seed" in mine else "seeds unknown")
        counts = ", ".join(f"{int((mine['state'] == s).sum())} {s}" for s in STATES
                           if len(mine) and (mine["state"] == s).any())
        src = f" from `{exp['source']}`" if exp.get("source") else ""
        desc = f" — {exp['description']}" if exp.get("description") else ""
        items.append(f"**{exp['name']}**{desc}{src}: grid {grid or 'none (one point)'}"
                     f"{'; ' + zips if zips else ''}; {seeds_text}; {len(mine)} run folder(s): {counts or 'none'}."
                     + _found(mine))
    blocks: list[Block] = [Heading(2, "What was run"), Bullets(items)]
    env = _environment(runs)
    if env:
        blocks.append(Bullets(env))
    return blocks


def _grid_value(v) -> str:
    """A grid value; a whole section reads `adding(seq_len=10)`."""
    if isinstance(v, dict):
        rest = ", ".join(f"{k}={x}" for k, x in v.items() if k != "name")
        return f"{v.get('name', '')}({rest})" if "name" in v else f"({rest})"
    return str(v)


def _found(runs: pd.DataFrame) -> str:
    """What the run folders hold, which can differ from experiment.json (it records the
    last invocation; --set overrides and earlier grids leave other runs behind)."""
    parts = []
    for col, name in (("task", "tasks"), ("cell", "cells"), ("seed", "seeds")):
        if col in runs and runs[col].notna().any():
            values = sorted(runs[col].dropna().unique(), key=lambda v: (str(type(v)), v))
            parts.append(f"{name} {', '.join(str(_int(v)) for v in values)}")
    return f" Run folders hold: {'; '.join(parts)}." if parts else ""


def _int(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _environment(runs: pd.DataFrame) -> list[str]:
    if runs.empty:
        return []

    def values(col):
        return sorted(map(str, runs[col].dropna().unique())) if col in runs else []

    items = []
    machines = runs.dropna(subset=[c for c in ("env.cpu",) if c in runs]) if "env.cpu" in runs else pd.DataFrame()
    if len(machines):
        keys = [c for c in ("env.cpu", "env.host", "env.device", "env.threads") if c in machines]
        combos = machines[keys].drop_duplicates().map(lambda v: str(_int(v))).values.tolist()
        items.append("Machine: " + "; ".join(
            f"{c[0]} (host `{c[1]}`, {c[2]}, {c[3]} torch thread(s))" if len(c) == 4 else ", ".join(c)
            for c in combos))
    versions = [f"{name} {', '.join(values(f'env.{name}'))}" for name in ("grucli", "torch", "python")
                if values(f"env.{name}")]
    if versions:
        items.append("Versions: " + "; ".join(versions) + (f"; platform {', '.join(values('env.platform'))}"
                                                            if values("env.platform") else ""))
    commits = [c[:10] for c in values("env.git_commit")]
    if commits:
        items.append("Code: git commit " + ", ".join(f"`{c}`" for c in commits))
    dates = values("finished_at")
    if dates:
        items.append(f"Finished: {dates[0]} to {dates[-1]}" if len(dates) > 1 else f"Finished: {dates[0]}")
    return items


def notes(col: Collection, views: list[TaskView], summaries: dict[str, pd.DataFrame]) -> list[str]:
    out = list(col.notes)
    for view in views:
        s = summaries[view.task]
        if len(s) and s["n"].max() == 0:
            out.append(f"{view.task}: no finished runs yet: nothing to average, test or plot.")
        elif len(s) and s["n"].max() == 1:
            out.append(f"{view.task}: one seed per setting: no confidence intervals and no tests (run more seeds).")
        elif len(s) and (s["n"] == 1).any():
            out.append(f"{view.task}: some settings have one finished seed: no interval or test there.")
        cells = order_cells(view.ok["cell"].unique())
        if len(cells) == 1:
            out.append(f"{view.task}: only one cell ({cells[0]}): no head-to-head comparison.")
        pending = int((view.runs["state"] == IN_PROGRESS).sum())
        if pending:
            out.append(f"{view.task}: {pending} run(s) in progress or interrupted (no summary.json yet): "
                       "listed, not averaged in.")
        bad = int(view.runs["state"].isin([DIVERGED, FAILED]).sum())
        if bad:
            out.append(f"{view.task}: {bad} run(s) diverged or failed: counted in the summary, not averaged in.")
    return out


def verdicts(view: TaskView, h2h: pd.DataFrame) -> list[Block]:
    """One row per setting and pair of cells: the metric verdict with its effect on the
    metric's scale, the s/epoch verdict (or why there is none), and the runs the budget
    cut off; then each cell against the best trivial baseline."""
    if h2h.empty:
        return [Para(f"**{view.task}**: no head-to-head (needs finished runs of at least two cells).")]
    rows = []
    pairs = h2h[h2h["family"] != "baseline"]
    for (setting, a, b), g in pairs.groupby(["setting", "a", "b"], sort=False):
        first = g.iloc[0]
        row = {"setting": setting, "comparison": f"{a} vs {b}", "budget": first["budget"]}
        for r in g.itertuples():
            row[r.quantity] = verdict_text(r)
        flags = [f"{c}: {what} {n}" for c, col_i, col_b in ((a, "improving_a", "at_baseline_a"),
                                                           (b, "improving_b", "at_baseline_b"))
                 for what, n in (("still improving", first.get(col_i)), ("at the baseline", first.get(col_b)))
                 if isinstance(n, str) and n != "unknown" and not n.startswith("0/")]
        row["not converged at this budget"] = "; ".join(flags) or NONE
        rows.append(row)
    blocks: list[Block] = [Heading(3, view.task)]
    if rows:
        frame = pd.DataFrame(rows)
        if frame["setting"].nunique() == 1:
            frame = frame.drop(columns="setting")
        blocks.append(Table(frame.fillna(NONE)))
    base = h2h[h2h["family"] == "baseline"]
    if len(base):
        blocks.append(Table(pd.DataFrame({
            "setting": base["setting"], "cell": base["a"],
            "baseline": [f"{n} ({num(v)})" for n, v in zip(base["baseline"], base["baseline_value"])],
            "cell / baseline" if (base["effect"] == "ratio").all() else "cell − baseline":
                [interval(v, lo, hi) for v, lo, hi in zip(base["value"], base["lo"], base["hi"])],
            "verdict": [verdict_text(r, "the baseline") for r in base.itertuples()]}).fillna(NONE)))
    return blocks


def verdict_text(r, against: str | None = None) -> str:
    """A head-to-head row's verdict as words: `gru better (ratio 0.31 [0.2, 0.5], Holm p =
    0.004)`, `equivalent within ×/÷ 1.25`, `undecided (~9 seeds per cell would decide)`, or
    why there is no test."""
    word = r.verdict
    if word in ("not comparable", "not testable"):
        why = getattr(r, "why", None)
        return f"{word}: {why}" if isinstance(why, str) and why else word
    winner, _, effect = oriented(r)
    faster = "faster" if r.family == "timing" else "better"
    if word == "equivalent":
        margin = f"×/÷ {r.margin:g}" if r.effect == "ratio" else f"± {r.margin:g}"
        return f"equivalent within {margin} ({effect}, Holm {p_text(r.p_equiv_holm)}{also_different(r)})"
    if word in ("better", "worse"):
        return f"{against if against and word == 'worse' else winner} {faster} ({effect}, Holm {p_text(r.p_holm)})"
    need = getattr(r, "seeds_needed", None)
    more = "" if need is None or need != need else f"; ~{int(need)} seeds per cell would decide it"
    return f"undecided ({effect}, Holm {p_text(r.p_holm)}{more})"


ANSWER = ("Per task and setting: first whether any cell beat the task's best trivial baseline; then the cell with "
          "the best mean (\"did best\" only when it is decided better than every other cell), its interval, the "
          "verdicts of that setting's comparisons (Holm over that setting's family only: adding another experiment "
          "to the folder changes nothing here) and the seeds per cell that would decide what is undecided; then the "
          "training budget. A cell whose runs were still improving, or never left the trivial baseline, when "
          "training stopped was cut off by the budget: such a verdict says which cell learns this task sooner, not "
          "which one learns it better. Last, per pair of cells over a task's settings: the probability that a run "
          "of one beats a run of the other.")

METHOD = ("Verdicts (grucli.verdicts, grucli.stats): each comparison is tested on its metric's scale "
          "(grucli.metrics): log-scale metrics (MSE, RMSE, MAE, cross-entropy, NLL, perplexity, seconds) as ratios "
          "of geometric means, with Welch's t-test on the logs; bounded metrics (accuracy, F1, PR-AUC) as "
          "differences of means, intervals cut to [0, 1]. Four words: better or worse (Welch's two-sided test, "
          "Holm–Bonferroni over the setting's family), equivalent (two one-sided tests within the margin that the "
          "experiment's verdict: section declared before the data, default ×/÷ 1.25 on the log scale and ± 0.02 "
          "on the bounded one; Holm over the family apart), undecided otherwise. Intervals are each comparison's "
          "own 95% interval, not widened for the family, while p is Holm-adjusted: an interval that leaves out "
          "'no difference' can stand beside an undecided verdict whose adjusted p is above α. Where each seed drew its own "
          "data (task.data_seed: per_seed) the seeds are paired. Seeds that would decide: the seeds per cell at "
          "which the difference test (true difference = the margin) and the equivalence test (true difference 0) "
          "both reach power 0.8 at the Bonferroni level α/m, with the SD at its one-sided 80% upper confidence "
          "bound (noncentral t, scipy). Under --until-decided each setting is judged at the looks the experiment "
          "declared, at Pocock's constant per-look level, and stops at the first look where every comparison is "
          "decided. The baseline check tests each cell against the best trivial baseline of the task the same way "
          "(one family per setting). Overall lines: P(a run of X beats a run of Y), averaged over settings, with a "
          "95% stratified bootstrap interval (seeds resampled within settings, Agarwal et al. 2021), and Wilcoxon's "
          "signed-rank test over settings where there are 5 or more (Demšar 2006). Timings: s/epoch is each run's "
          "median over the epochs after the first (the first, with its warm-up, is recorded apart); it is compared "
          "only between runs trained alike (same implementation and pack size), one value per pack, since the "
          "seeds of a pack share one measured time. 'Still improving' = " + budget.MEANING + "; 'at the "
          "baseline' = its best validation value never beat the task's trivial baseline by 5%. Diverged, failed "
          "and unfinished runs are counted, never averaged in. Peak memory is the training process's peak resident "
          "set size during the run.")


# --------------------------------------------------------------------------- display tables
COSTS = (("epoch_time_s", "train s/epoch"), ("throughput_seq_s", "throughput seq/s"),
         ("latency_batch_ms", "latency ms/batch"), ("latency_seq_ms", "latency ms/seq"),
         ("peak_memory_mb", "peak process memory MB"))  # the summary's measured costs: column, label


def summary_caption(view: TaskView, packed: bool) -> str:
    """What the summary's numbers are: each column's centre as its scale has it (a geometric
    mean on the log scale: error-type metrics, times), and one time per pack for packed runs."""
    costs: dict[str, list[str]] = {}
    for col, label in COSTS:
        costs.setdefault(metrics.scale_of(col).mean_word, []).append(label)
    pack = (f"; {', '.join(c for col, c in COSTS if f'timing.{col}' in PER_PACK)} of runs trained in a pack: "
            "one value per pack (its runs share one measured time)") if packed else ""
    return (f"test {view.metric}: {metrics.scale_of(view.metric).mean_word} [95% CI] over the n ok seeds "
            f"({'lower' if view.goal == 'min' else 'higher'} is better); target {num(view.target)}; "
            + "; ".join(f"{', '.join(labels)}: {word} [95% CI]" for word, labels in costs.items()) + pack)


def summary_display(s: pd.DataFrame, view: TaskView) -> pd.DataFrame:
    if s.empty:
        return s
    settings = [short(c) for c in view.settings]
    out = pd.DataFrame({k: s[k] for k in settings})
    out["cell"] = s["cell"]
    out["params"] = s["params"].map(num)
    scale = s["scale"].iloc[0] if "scale" in s else "raw"
    centre = "geometric mean" if scale == "log" else "mean"
    out[f"test {view.metric} ({centre} [95% CI])"] = [interval(m, lo, hi) for m, lo, hi in zip(s["centre"], s["lo"], s["hi"])]
    out["n"] = s["n"]
    seasonal = "baseline_snaive" in s.columns
    out["naive baseline" if seasonal else "baseline"] = s["baseline"].map(num)
    for col in [c for c in s.columns if c.startswith("baseline_")]:  # e.g. the seasonal-naive forecast
        name = {"snaive": "seasonal-naive"}.get(col.removeprefix("baseline_"), col.removeprefix("baseline_"))
        out[f"{name} baseline"] = s[col].map(num)
    no_target = view.target is None
    out["reached target (val)"] = [NONE if no_target else f"{r}/{n}" for r, n in zip(s["reached_target"], s["n"])]
    out["diverged"], out["failed"], out["in progress"] = s["diverged"], s["failed"], s["in_progress"]
    for col, label in COSTS:
        out[label] = [interval(m, lo, hi) for m, lo, hi in zip(s[col], s[f"{col}_lo"], s[f"{col}_hi"])]
    mb = lambda v: v / 2**20 if v == v and v is not None else v  # noqa: E731
    out["saved activations MB/batch"] = [num(mb(v)) for v in s["saved_activation_bytes"]]
    out["params + optimizer MB"] = [num(mb(a + b)) for a, b in zip(s["param_bytes"], s["optimizer_state_bytes"])]
    return out


def params_display(p: pd.DataFrame) -> pd.DataFrame:
    if p.empty:
        return p
    out = p.drop(columns=["task"]).copy()
    out["params"] = out["params"].map(lambda v: num(v) if isinstance(v, (int, float)) else v)
    out["hidden_size"] = out["hidden_size"].map(num)
    out[RATIO] = out[RATIO].map(num)
    return out.fillna(NONE).rename(columns={RATIO: f"params / {label(REFERENCE)}"})


def h2h_display(h: pd.DataFrame) -> pd.DataFrame:
    if h.empty:
        return h
    return pd.DataFrame({
        "setting": h["setting"], "a vs b": h["a"] + " vs " + h["b"], "quantity": h["quantity"],
        "family": h["family"],
        "a": h.get("centre_a", pd.Series(dtype=float)).map(num), "b": h.get("centre_b", pd.Series(dtype=float)).map(num),
        "n": h.get("n_a", pd.Series(dtype=float)).map(num) + "/" + h.get("n_b", pd.Series(dtype=float)).map(num),
        "effect [95% CI]": [f"{e} {interval(v, lo, hi)}" if isinstance(e, str) else NONE
                            for e, v, lo, hi in zip(h.get("effect", [None] * len(h)), h.get("value", [None] * len(h)),
                                                    h.get("lo", [None] * len(h)), h.get("hi", [None] * len(h)))],
        "Holm p (difference)": h.get("p_holm", pd.Series(dtype=float)).map(p_value),
        "Holm p (equivalence)": h.get("p_equiv_holm", pd.Series(dtype=float)).map(p_value),
        "family size": h.get("family_size", pd.Series(dtype=float)).map(num),
        "budget": h["budget"], "verdict": [verdict_text(r) for r in h.itertuples()],
    }).fillna(NONE)


def excluded_display(x: pd.DataFrame) -> pd.DataFrame:
    return x.fillna(NONE).astype(str) if len(x) else x


def header(col: Collection) -> list[Block]:
    names = ", ".join(e["name"] for e in col.experiments)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return [Heading(1, f"grucli report: {names}"),
            Para(f"Generated {now} by grucli {grucli.__version__} from the results folder(s) "
                 + ", ".join(f"`{e['path']}`" for e in col.experiments)
                 + ". The report only reads results; nothing was trained.")]


def figure_blocks(figures: list) -> list[Block]:
    return [Image(f.png, f.caption) for f in figures]
