"""The comparison tables (compare's terminal table and the report's): pure functions from
the runs the one reader returns (grucli.store.reader) to DataFrames.

A *setting* is one combination of the config keys that vary within a task (seq_len,
hidden_size, ...), found from the runs themselves, so several experiments and older runs
without a `varied` field group the same way. Only runs with state ok are averaged; the
others are counted beside them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from grucli import budget, stats
from grucli.cells import REFERENCE
from grucli.store.reader import DIVERGED, FAILED, FINISHED, IN_PROGRESS, OK, PRUNED

# Keys that never define a setting: the cell is the compared axis, the seed is averaged
# over, device and threads change speed, not what is computed.
NOT_SETTINGS = {"config.model.cell", "config.seed", "config.task.name", "config.train.device", "config.train.threads"}


RATIO = f"ratio_to_{REFERENCE}"  # params_table: parameters over the reference cell's at the same size


@dataclass
class Quantity:
    """One thing compared head-to-head: a runs column, its label, which way is good, and
    the family of tests whose p-values are corrected together (Holm)."""

    column: str
    label: str
    goal: str  # min | max
    word: str  # the verdict: "gru better", "gru faster"
    family: str = "metric"  # metric | timing


TIMING = [
    Quantity("timing.epoch_time_s", "train time per epoch (s)", "min", "faster", "timing"),
    Quantity("timing.latency_batch_ms", "inference latency (ms/batch)", "min", "faster", "timing"),
]


@dataclass
class TaskView:
    """All runs of one task, with what the report needs to read them."""

    task: str
    metric: str
    goal: str
    target: float | None
    settings: list[str]  # config.* columns that vary within this task (besides the cell)
    runs: pd.DataFrame  # every run folder of the task, any state
    select: str | None = None  # the validation metric runs were selected on (learning curves), if not `metric`

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["state"] == OK]

    @property
    def cells(self) -> list[str]:
        return order_cells(self.runs["cell"].dropna().unique())

    @property
    def quantities(self) -> list[Quantity]:
        return [Quantity("value", f"test {self.metric}", self.goal, "better"), *TIMING]

    def groups(self, by_cell: bool = True):
        """((setting values), cell or None, runs) per setting (and cell), settings sorted."""
        keys = [*self.settings, "cell"] if by_cell else list(self.settings)
        if not keys:
            yield (), None, self.runs
            return
        for values, g in self.runs.groupby(keys, dropna=False, sort=True):
            values = values if isinstance(values, tuple) else (values,)
            yield (values[:-1] if by_cell else values), (values[-1] if by_cell else None), g


def order_cells(names) -> list[str]:
    """The registry's order (gru, lstm, rnn, ...): head-to-head pairs follow it, gru vs lstm first."""
    from grucli.cells import order

    return order(names)


def short(column: str) -> str:
    """config.task.seq_len -> task.seq_len"""
    return column.removeprefix("config.")


def setting_label(settings: list[str], values, max_value: int | None = None) -> str:
    """`task.seq_len=100, model.hidden_size=64`; values longer than `max_value` characters
    (paths, hashes) keep their start and end."""
    def value(v):
        text = "unset" if v is None or (isinstance(v, float) and v != v) else str(plain(v))
        if max_value and len(text) > max_value:
            keep = max(max_value // 2 - 1, 3)
            text = f"{text[:keep]}…{text[-keep:]}"
        return text

    return ", ".join(f"{short(c)}={value(v)}" for c, v in zip(settings, values)) or "all runs"


def plain(v):
    """5.0 -> 5 (a column with gaps turns integers into floats)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def setting_columns(runs: pd.DataFrame) -> list[str]:
    """config.* columns whose value varies across the runs, except the cell and keys that
    only follow the cell (zipped with it, e.g. a hidden size chosen per cell). Grid order
    first (from `varied.*`), then alphabetical."""
    cols = [c for c in runs.columns if c.startswith("config.") and c not in NOT_SETTINGS]
    cells = runs["cell"].nunique()
    keep = []
    for c in cols:
        if runs[c].nunique(dropna=False) < 2:
            continue
        follows_cell = cells > 1 and (runs.groupby("cell")[c].nunique(dropna=False) <= 1).all()
        if not follows_cell:
            keep.append(c)
    grid_order = [f"config.{c.removeprefix('varied.')}" for c in runs.columns if c.startswith("varied.")]
    return sorted(keep, key=lambda c: (grid_order.index(c) if c in grid_order else len(grid_order), c))


def task_views(runs: pd.DataFrame) -> list[TaskView]:
    """One view per task among the readable runs (unreadable rows have no task)."""
    views = []
    if runs.empty or "task" not in runs.columns:
        return views
    for task, df in runs[runs["task"].notna()].groupby("task", sort=True):
        finished = df[df["state"].isin(FINISHED)]
        if finished.empty:
            metric, goal, target, select = "metric", "min", None, None
        else:
            first = finished.iloc[0]
            metric, goal, target = first["metric"], first["goal"], first.get("target")
            select = first.get("selected_on") if isinstance(first.get("selected_on"), str) else None
        df = df.dropna(axis=1, how="all")
        views.append(TaskView(task, metric, goal, _num(target), setting_columns(df), df, select or metric))
    return views


# --------------------------------------------------------------------------- tables
def summary_table(view: TaskView) -> pd.DataFrame:
    """One row per setting x cell: size, cost, metric mean +- 95% CI over ok seeds, the
    baseline beside it, target share, and the runs that were not averaged in."""
    rows = []
    for values, cell, g in view.groups():
        ok = g[g["state"] == OK]
        m = stats.describe(ok["value"]) if "value" in ok else stats.describe([])
        row = {"task": view.task, **{short(c): plain(v) for c, v in zip(view.settings, values)}, "cell": cell,
               "hidden_size": _first(ok, "hidden_size"), "params": _first(ok, "params"),
               "runs": len(g), "ok": len(ok), "diverged": _count(g, DIVERGED), "failed": _count(g, FAILED), "pruned": _count(g, PRUNED),
               "in_progress": _count(g, IN_PROGRESS),
               "metric": view.metric, "goal": view.goal, "mean": m.mean, "ci95": m.ci, "sd": m.sd, "n": m.n,
               "baseline": _first(g, "baseline_value"), "target": view.target,
               "reached_target": int(ok["reached_target"].fillna(False).astype(bool).sum()) if "reached_target" in ok else 0}
        for col in g.columns:  # further baselines of the same metric, e.g. forecast's baseline.snaive_rmse
            if col.startswith("baseline.") and col.endswith(f"_{view.metric}"):
                row[f"baseline_{col.removeprefix('baseline.').removesuffix('_' + view.metric)}"] = _first(g, col)
        for col in ("timing.epoch_time_s", "timing.throughput_seq_s", "timing.latency_batch_ms",
                    "timing.latency_seq_ms", "timing.peak_memory_mb", "timing.train_time_s",
                    "timing.saved_activation_bytes", "timing.param_bytes", "timing.optimizer_state_bytes"):
            d = stats.describe(ok[col]) if col in ok else stats.describe([])
            name = col.removeprefix("timing.")
            row[name], row[f"{name}_ci95"] = d.mean, d.ci
        rows.append(row)
    return pd.DataFrame(rows)


def params_table(view: TaskView) -> pd.DataFrame:
    """Exact parameter count per cell and model size, and its ratio to the LSTM of the same
    size (GRU/LSTM = 3/4 at equal hidden size: 3 gate blocks against 4)."""
    model_keys = [c for c in view.settings if c.startswith("config.model.")]
    ok = view.runs[view.runs["state"].isin(FINISHED) & view.runs.get("params", pd.Series()).notna()]
    if ok.empty:
        return pd.DataFrame()
    rows = []
    for values, g in ok.groupby(model_keys, dropna=False, sort=True) if model_keys else [((), ok)]:
        values = values if isinstance(values, tuple) else (values,)
        per_cell = {cell: sorted(set(cg["params"].astype(int))) for cell, cg in g.groupby("cell")}
        ref = per_cell.get(REFERENCE)
        for cell in order_cells(per_cell):
            counts = per_cell[cell]
            rows.append({"task": view.task, **{short(c): plain(v) for c, v in zip(model_keys, values)}, "cell": cell,
                         "hidden_size": _first(g[g["cell"] == cell], "hidden_size"),
                         "params": counts[0] if len(counts) == 1 else f"{counts[0]}-{counts[-1]}",
                         RATIO: counts[0] / ref[0] if ref and len(counts) == 1 == len(ref) else None})
    return pd.DataFrame(rows)


def head_to_head(view: TaskView) -> pd.DataFrame:
    """For each setting and each pair of cells (gru vs lstm, then each vs rnn), every
    quantity: means, difference a - b with its Welch CI, Welch and Mann-Whitney p, Hedges g,
    the budget the runs had (epochs, steps) and how many were still improving when it ran
    out. `verdict` here follows Welch's p alone; `corrected` adjusts p over many tables."""
    rows = []
    for values, _, g in view.groups(by_cell=False):
        ok = g[g["state"] == OK]
        for a, b in itertools.combinations(order_cells(ok["cell"].unique()), 2):
            pair = ok[ok["cell"].isin([a, b])]
            spent = {"budget": budget.describe(_col(pair, "timing.epochs"), _col(pair, "timing.steps")),
                     "improving_a": _share(ok[ok["cell"] == a], "still_improving"),
                     "improving_b": _share(ok[ok["cell"] == b], "still_improving"),
                     "at_baseline_a": _share(ok[ok["cell"] == a], "left_baseline", False),
                     "at_baseline_b": _share(ok[ok["cell"] == b], "left_baseline", False)}
            for q in view.quantities:
                if q.column not in ok:
                    continue
                c = stats.compare(ok.loc[ok["cell"] == a, q.column], ok.loc[ok["cell"] == b, q.column])
                rows.append({"task": view.task, "setting": setting_label(view.settings, values),
                             "a": a, "b": b, "quantity": q.label, "goal": q.goal, "word": q.word, "family": q.family,
                             "n_a": c.n_a, "n_b": c.n_b, "mean_a": c.mean_a, "mean_b": c.mean_b,
                             "diff": c.diff, "diff_lo": c.diff_lo, "diff_hi": c.diff_hi, "df": c.df,
                             "p_welch": c.p_welch, "p_rank": c.p_rank, "hedges_g": c.hedges_g, **spent,
                             "verdict": stats.verdict(c, a, b, q.goal, q.word)})
    return pd.DataFrame(rows)


def corrected(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The head-to-head tables of several tasks with Holm-Bonferroni over every test of
    the same family (all metric comparisons together, all timing comparisons together):
    `p_holm` beside `p_welch`, and the verdict word following `p_holm`."""
    rows = [(task, i, r) for task, f in frames.items() for i, r in f.iterrows()]
    out = {task: f.copy() for task, f in frames.items()}
    for family in {r["family"] for _, _, r in rows}:
        members = [(task, i, r) for task, i, r in rows if r["family"] == family]
        for (task, i, r), p in zip(members, stats.holm([_p(r["p_welch"]) for _, _, r in members])):
            out[task].loc[i, "p_holm"] = p
            out[task].loc[i, "verdict"] = stats.verdict(_Row(r), r["a"], r["b"], r["goal"], r["word"], p=p)
    return out


class _Row:
    """A head-to-head row read back as the Comparison a verdict needs."""

    def __init__(self, r):
        self.n_a, self.n_b, self.diff, self.p_welch = int(r["n_a"]), int(r["n_b"]), r["diff"], _p(r["p_welch"])


def _p(v):
    return None if v is None or v != v else float(v)


def _col(df: pd.DataFrame, col: str) -> list:
    return df[col].dropna().tolist() if col in df else []


def _share(ok: pd.DataFrame, column: str, value: bool = True) -> str:
    """`2/3`: how many of a cell's ok runs have `column` == value (still_improving: True;
    left_baseline: False, i.e. still at the trivial baseline); "unknown" for older runs."""
    if column not in ok or ok[column].isna().all():
        return "unknown"
    known = ok[column].dropna().astype(bool)
    return f"{int((known == value).sum())}/{len(ok)}"


def answers(view: TaskView, summary: pd.DataFrame, h2h: pd.DataFrame) -> list[str]:
    """One line per setting: which cell reached the target or did best, at what size and
    time, how confident (the corrected verdicts against the others), at what budget, and
    which cells were still improving when it ran out."""
    lines = []
    keys = [short(c) for c in view.settings]
    groups = summary.groupby(keys, dropna=False, sort=False) if keys else [((), summary)]
    runs_of = {setting_label(view.settings, v): g[g["state"] == OK] for v, _, g in view.groups(by_cell=False)}
    for values, rows in groups:
        values = values if isinstance(values, tuple) else (values,)
        where = f"{view.task}" + (f", {setting_label(view.settings, values)}" if keys else "")
        done = rows[rows["n"] > 0]
        if done.empty:
            lines.append(f"{where}: no finished runs")
            continue
        best = done.loc[done["mean"].idxmin() if view.goal == "min" else done["mean"].idxmax()]
        reached = "" if view.target is None else (f", validation reached the target in {int(best['reached_target'])}/"
                                                   f"{int(best['n'])}")
        n = int(best["n"])
        did = "did best" if len(done) > 1 else "(the only cell here)"
        head = (f"{where}: {best['cell']} {did} (test {view.metric} {_pm(best['mean'], best['ci95'])} over "
                f"{n} seed{'s' if n != 1 else ''}{reached}; {_int(best['params'])} params, "
                f"{_g3(best['train_time_s'])} s training)")
        label = setting_label(view.settings, values)
        mine = h2h[(h2h["setting"] == label) & (h2h["family"] == "metric")] if len(h2h) else h2h
        against = [f"vs {r.b if r.a == best['cell'] else r.a}: {r.verdict} (Holm p {_pv(getattr(r, 'p_holm', None))})"
                   for r in mine.itertuples() if best["cell"] in (r.a, r.b)]
        ok = runs_of.get(label, pd.DataFrame())  # every cell of the setting, one or many
        spent = budget.describe(_col(ok, "timing.epochs"), _col(ok, "timing.steps")) if len(ok) else ""
        per_cell = [(c, ok[ok["cell"] == c]) for c in order_cells(ok["cell"].unique())] if len(ok) else []
        improving = [f"{c} {n}" for c, g in per_cell if _flagged(n := _share(g, "still_improving"))]
        plateau = [f"{c} {n}" for c, g in per_cell if _flagged(n := _share(g, "left_baseline", False))]
        tail = f" -- at {spent}" if spent else ""
        if improving:
            tail += f"; still improving when training stopped: {', '.join(improving)} runs"
        if plateau:
            tail += f"; never left the trivial baseline: {', '.join(plateau)} runs (a plateau more epochs may end)"
        if improving or plateau:
            tail += ": this verdict measures the budget as much as the cells"
        lines.append(head + ("; " + "; ".join(against) if against else "") + tail)
    return lines


def _flagged(text: str) -> bool:
    return text not in ("unknown",) and not text.startswith("0/")


def _pm(mean, ci) -> str:
    return _g3(mean) if ci is None or ci != ci else f"{_g3(mean)} ± {_g3(ci)}"


def _g3(v) -> str:
    """Three significant digits for a line of text."""
    return "–" if v is None or v != v else f"{float(v):.3g}"


def _int(v) -> str:
    return "–" if v is None or v != v else f"{int(v):,}"


def _pv(p) -> str:
    return "–" if p is None or p != p else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def not_averaged(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run that is not in the means: diverged, failed, in progress, unreadable."""
    if runs.empty:
        return pd.DataFrame()
    rest = runs[runs["state"] != OK]
    cols = [c for c in ("experiment", "run_id", "state", "task", "cell", "seed", "error") if c in rest]
    return rest[cols].reset_index(drop=True)


def _first(df: pd.DataFrame, col: str):
    if col not in df or df[col].dropna().empty:
        return None
    return plain(df[col].dropna().iloc[0])


def _count(df: pd.DataFrame, state: str) -> int:
    return int((df["state"] == state).sum())


def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if v != v else v
