"""The report's text, in reading order: what was run, the head-to-head verdicts, then
tables and figures. Turns the numeric tables into display tables and sentences; renders
nothing itself (see render.py)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pandas as pd

import grucli
from grucli.store.reader import DIVERGED, FAILED, IN_PROGRESS, OK, PRUNED, UNREADABLE, Collection
from grucli.report.render import Block, Bullets, Heading, Image, Para, Table
from grucli.cells import REFERENCE, label
from grucli.tables import RATIO, TaskView, order_cells, short
from grucli.stats import ALPHA

STATES = (OK, DIVERGED, FAILED, PRUNED, IN_PROGRESS, UNREADABLE)


def num(v, digits: int = 3) -> str:
    """A number for people: 3 significant digits, thousands separators, '–' for none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return f"{v:,}"
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    if abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def pm(mean, ci) -> str:
    return num(mean) if ci is None or (isinstance(ci, float) and math.isnan(ci)) else f"{num(mean)} ± {num(ci, 2)}"


def p_text(p) -> str:
    """`p = 0.034` or `p < 0.001`"""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def p_value(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


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
    """One row per setting and pair, one column per compared quantity: the verdict with
    its Welch p (and Hedges g where significant)."""
    if h2h.empty:
        return [Para(f"**{view.task}**: no head-to-head (needs finished runs of at least two cells).")]
    rows = []
    for (setting, a, b), g in h2h.groupby(["setting", "a", "b"], sort=False):
        first = g.iloc[0]
        row = {"setting": setting, "comparison": f"{a} vs {b}", "budget": first["budget"]}
        for r in g.itertuples():
            p = getattr(r, "p_holm", None)
            if r.verdict.endswith(("better", "faster")):
                text = f"{r.verdict} (Holm {p_text(p)}, g = {r.hedges_g:+.2f})"
            elif r.verdict == "no significant difference":
                identical = r.p_welch is None or r.p_welch != r.p_welch
                text = f"no significant difference ({'identical values' if identical else 'Holm ' + p_text(p)})"
            else:
                text = r.verdict
            row[r.quantity] = text
        flags = [f"{c}: {what} {n}" for c, col_i, col_b in ((a, "improving_a", "at_baseline_a"),
                                                           (b, "improving_b", "at_baseline_b"))
                 for what, n in (("still improving", first[col_i]), ("at the baseline", first[col_b]))
                 if n != "unknown" and not str(n).startswith("0/")]
        row["not converged at this budget"] = "; ".join(flags) or "–"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["setting"].nunique() == 1:
        frame = frame.drop(columns="setting")
    return [Heading(3, view.task), Table(frame.fillna("–"))]


ANSWER = ("Per task and setting: the cell that did best, how confident that is (Welch's test across seeds, "
          "Holm-corrected over every comparison in this report) and the training budget it was reached at. A cell "
          "whose runs were still improving, or never left the trivial baseline, when training stopped was cut off by "
          "the budget: such a verdict says which cell learns this task sooner, not which one learns it better.")

METHOD = (f"Verdicts: two-sided Welch t-test across seeds at α = {ALPHA}, p-values Holm–Bonferroni corrected over "
          "all metric comparisons of this report together (and separately over all timing comparisons): the verdict "
          "word follows the corrected p (raw and corrected p side by side in the head-to-head details and "
          "tables/head_to_head.csv), otherwise \"no significant difference\". 'Still improving' = the run ran out "
          "of epochs or steps while its best validation value of the last fifth of its epochs beat the best before "
          "them by ≥ 1%; 'at the baseline' = its best validation value never beat the task's trivial baseline by "
          "5%. Beside the verdict: the difference of means a − b with "
          "its 95% Welch–Satterthwaite interval, the Mann–Whitney U rank test (exact for small n; with 3 vs 3 seeds "
          "its smallest possible p is 0.1, so it cannot reach 0.05 alone) and the effect size Hedges' g (Cohen's d "
          "with the pooled SD, small-sample corrected; |g| ≈ 0.2 small, 0.5 medium, 0.8 large). Means ± 95% "
          "Student-t intervals over the seeds that finished with status ok; diverged, failed and unfinished runs "
          "are counted, never averaged in. Timing is wall-clock on the recorded machine; peak memory is the training process's peak "
          "resident set size during the run (reset at its start; heap a worker's allocator kept from an earlier run "
          "still counts).")


# --------------------------------------------------------------------------- display tables
def summary_display(s: pd.DataFrame, view: TaskView) -> pd.DataFrame:
    if s.empty:
        return s
    settings = [short(c) for c in view.settings]
    out = pd.DataFrame({k: s[k] for k in settings})
    out["cell"] = s["cell"]
    out["params"] = s["params"].map(num)
    out[f"test {view.metric} (mean ± 95% CI)"] = [pm(m, c) for m, c in zip(s["mean"], s["ci95"])]
    out["n"] = s["n"]
    seasonal = "baseline_snaive" in s.columns
    out["naive baseline" if seasonal else "baseline"] = s["baseline"].map(num)
    for col in [c for c in s.columns if c.startswith("baseline_")]:  # e.g. the seasonal-naive forecast
        name = {"snaive": "seasonal-naive"}.get(col.removeprefix("baseline_"), col.removeprefix("baseline_"))
        out[f"{name} baseline"] = s[col].map(num)
    no_target = view.target is None
    out["reached target (val)"] = ["-" if no_target else f"{r}/{n}" for r, n in zip(s["reached_target"], s["n"])]
    out["diverged"], out["failed"], out["in progress"] = s["diverged"], s["failed"], s["in_progress"]
    for col, label in (("epoch_time_s", "train s/epoch"), ("throughput_seq_s", "throughput seq/s"),
                       ("latency_batch_ms", "latency ms/batch"), ("latency_seq_ms", "latency ms/seq"),
                       ("peak_memory_mb", "peak process memory MB")):
        out[label] = [pm(m, c) for m, c in zip(s[col], s[f"{col}_ci95"])]
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
    out[RATIO] = out[RATIO].map(lambda v: "–" if v is None or v != v else f"{v:.3f}")
    return out.rename(columns={RATIO: f"params / {label(REFERENCE)}"})


def h2h_display(h: pd.DataFrame) -> pd.DataFrame:
    if h.empty:
        return h
    return pd.DataFrame({
        "setting": h["setting"], "a vs b": h["a"] + " vs " + h["b"], "quantity": h["quantity"],
        "mean a": h["mean_a"].map(num), "mean b": h["mean_b"].map(num), "n": h["n_a"].astype(str) + "/" + h["n_b"].astype(str),
        "a − b [95% CI]": [f"{num(d)} [{num(lo)}, {num(hi)}]" if lo is not None and lo == lo else num(d)
                           for d, lo, hi in zip(h["diff"], h["diff_lo"], h["diff_hi"])],
        "Welch p": h["p_welch"].map(p_value), "Holm p": h["p_holm"].map(p_value) if "p_holm" in h else "–",
        "Mann-Whitney p": h["p_rank"].map(p_value), "budget": h["budget"],
        "Hedges g": h["hedges_g"].map(lambda g: "–" if g is None or g != g else f"{g:+.2f}"),
        "verdict": h["verdict"],
    })


def excluded_display(x: pd.DataFrame) -> pd.DataFrame:
    return x.fillna("–").astype(str) if len(x) else x


def header(col: Collection) -> list[Block]:
    names = ", ".join(e["name"] for e in col.experiments)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return [Heading(1, f"grucli report: {names}"),
            Para(f"Generated {now} by grucli {grucli.__version__} from the results folder(s) "
                 + ", ".join(f"`{e['path']}`" for e in col.experiments)
                 + ". The report only reads results; nothing was trained.")]


def figure_blocks(figures: list) -> list[Block]:
    return [Image(f.png, f.caption) for f in figures]
