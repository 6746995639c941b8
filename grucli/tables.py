"""The comparison tables (compare's terminal table and the report's): pure functions from
the runs the one reader returns (grucli.store.reader) to DataFrames.

A *setting* is one combination of the config keys that vary within a task (seq_len,
hidden_size, ...), found from the runs themselves, so several experiments and older runs
without a `varied` field group the same way. Only runs with state ok are averaged; the
others are counted beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from grucli import metrics, stats
from grucli.cells import REFERENCE
from grucli.declared import DEFAULT as DEFAULT_SPEC
from grucli.declared import VerdictSpec
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
    declared: VerdictSpec = DEFAULT_SPEC  # the experiment's verdict: section (margins, alpha, looks)
    sequential: bool = False  # the runs were added look by look (--until-decided)

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


def task_views(runs: pd.DataFrame, experiments: list[dict] | None = None) -> list[TaskView]:
    """One view per task among the readable runs (unreadable rows have no task), with what
    the experiments the runs came from declared about their verdicts (experiment.json)."""
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
        declared, sequential = declared_for(df, experiments or [])
        views.append(TaskView(task, metric, goal, _num(target), setting_columns(df), df, select or metric,
                              declared, sequential))
    return views


def declared_for(runs: pd.DataFrame, experiments: list[dict]) -> tuple[VerdictSpec, bool]:
    """The verdict section the runs' experiments recorded (the first one's where several
    experiments hold the task), and whether any of them ran --until-decided."""
    names = set(runs["experiment"]) if "experiment" in runs else set()
    mine = [e for e in experiments if e.get("name") in names]
    for e in mine:
        if isinstance(e.get("verdict"), dict):
            try:
                return VerdictSpec(**e["verdict"]), any(bool(x.get("until_decided")) for x in mine)
            except ValueError:
                continue  # written by other code: the defaults
    return DEFAULT_SPEC, any(bool(x.get("until_decided")) for x in mine)


# --------------------------------------------------------------------------- tables
def summary_table(view: TaskView) -> pd.DataFrame:
    """One row per setting x cell: size, cost, the metric's centre and 95% interval over ok
    seeds on its scale (`centre`, `lo`, `hi`: the geometric mean on the log scale, cut to the
    range on the bounded one; `mean` is the arithmetic mean), the baseline beside it, target
    share, and the runs that were not averaged in. Timings likewise (`epoch_time_s` is the
    geometric mean of the runs' steady-state s/epoch, with `epoch_time_s_lo`/`_hi`), over one
    value per pack where runs were trained in packs (PER_PACK)."""
    rows = []
    for values, cell, g in view.groups():
        ok = g[g["state"] == OK]
        m = stats.describe(ok["value"]) if "value" in ok else stats.describe([])
        e = stats.estimate(ok["value"].tolist() if "value" in ok else [], metrics.scale_of(view.metric))
        row = {"task": view.task, **{short(c): plain(v) for c, v in zip(view.settings, values)}, "cell": cell,
               "hidden_size": _first(ok, "hidden_size"), "params": _first(ok, "params"),
               "runs": len(g), "ok": len(ok), "diverged": _count(g, DIVERGED), "failed": _count(g, FAILED), "pruned": _count(g, PRUNED),
               "in_progress": _count(g, IN_PROGRESS),
               "metric": view.metric, "goal": view.goal, "scale": metrics.scale_of(view.metric).name,
               "centre": e.centre, "lo": e.lo, "hi": e.hi, "mean": m.mean, "sd": m.sd, "n": m.n,
               "baseline": _first(g, "baseline_value"), "target": view.target,
               "reached_target": int(ok["reached_target"].fillna(False).astype(bool).sum()) if "reached_target" in ok else 0}
        for col in g.columns:  # further baselines of the same metric, e.g. forecast's baseline.snaive_rmse
            if col.startswith("baseline.") and col.endswith(f"_{view.metric}"):
                row[f"baseline_{col.removeprefix('baseline.').removesuffix('_' + view.metric)}"] = _first(g, col)
        for col in ("timing.epoch_time_s", "timing.throughput_seq_s", "timing.latency_batch_ms",
                    "timing.latency_seq_ms", "timing.peak_memory_mb", "timing.train_time_s",
                    "timing.saved_activation_bytes", "timing.param_bytes", "timing.optimizer_state_bytes"):
            values = (per_pack(ok, col) if col in PER_PACK else ok[col].tolist()) if col in ok else []
            d = stats.estimate(values, metrics.scale_of(col))
            name = col.removeprefix("timing.")
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = d.centre, d.lo, d.hi
        rows.append(row)
    return pd.DataFrame(rows)


# timings a pack's runs share (one measured time for every step of the pack): one value per pack
PER_PACK = ("timing.epoch_time_s", "timing.throughput_seq_s", "timing.train_time_s")


def packed_runs(runs: pd.DataFrame) -> int:
    """How many of these runs trained in a pack of more than one (timing.pack_size)."""
    return int((runs["timing.pack_size"].fillna(1) > 1).sum()) if "timing.pack_size" in runs else 0


def per_pack(runs: pd.DataFrame, col: str) -> list[float]:
    """`col` once per pack (its runs share one measured time: n copies of it are not n
    measurements, and their interval would be zero wide) and once per run trained alone;
    each run's value where runs do not say which pack they were in (no timing.pack_id)."""
    if "timing.pack_id" in runs and runs["timing.pack_id"].notna().all():
        return runs.groupby("timing.pack_id")[col].mean().dropna().tolist()
    return runs[col].dropna().tolist()


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
