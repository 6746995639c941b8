"""The comparison table: runs of an experiment aggregated per task, setting and cell.
Pure functions on the DataFrame from `store.load_runs`."""

from __future__ import annotations

import pandas as pd

from grucli.stats import mean_ci

CELL_KEY = "varied.model.cell"


def setting_columns(df: pd.DataFrame) -> list[str]:
    """Varied grid keys that define a setting: every `varied.*` column except the cell and
    keys that only follow the cell (zipped with it, e.g. hidden_size per cell)."""
    cols = [c for c in df.columns if c.startswith("varied.") and c not in (CELL_KEY, "varied.task.name")
            and df[c].nunique(dropna=False) > 1]
    keep = []
    for c in cols:
        per_cell = df.groupby("cell")[c].nunique(dropna=False)
        follows_cell = (per_cell <= 1).all() and df[c].nunique(dropna=False) > 1 and df["cell"].nunique() > 1
        if not follows_cell:
            keep.append(c)
    return keep


def comparison_rows(df: pd.DataFrame) -> list[tuple[str, dict, pd.DataFrame]]:
    """[(task, setting {key: value}, table)] where the table has one row per cell with
    parameters, cost, and the test metric mean +- 95% CI over seeds. Failed and diverged
    runs are counted, never averaged in."""
    if df.empty:
        return []
    settings = setting_columns(df)
    out = []
    for (task, *values), group in df.groupby(["task", *settings], dropna=False, sort=True):
        setting = {c.removeprefix("varied."): _plain(v) for c, v in zip(settings, values) if not pd.isna(v)}
        metric = group["metric"].dropna().iloc[0] if group["metric"].notna().any() else None
        rows = []
        for cell, runs in sorted(group.groupby("cell"), key=lambda kv: _cell_rank(kv[0])):
            ok = runs[runs["status"] == "ok"]
            values_ = ok.get(f"test.{metric}", pd.Series(dtype=float)).tolist() if metric else []
            mean, half, n = mean_ci(values_)
            rows.append({
                "cell": cell,
                "params": _median(runs, "params"),
                "epoch_time_s": _mean(ok, "timing.epoch_time_s"),
                "throughput_seq_s": _mean(ok, "timing.throughput_seq_s"),
                "latency_seq_ms": _mean(ok, "timing.latency_seq_ms"),
                "metric": metric,
                "mean": mean,
                "ci95": half,
                "n": n,
                "baseline": _first(runs, f"baseline.{metric}") if metric else None,
                "baseline_seasonal": _first(runs, f"baseline.snaive_{metric}") if metric else None,
                "reached": float(ok["reached_target"].mean()) if len(ok) and _has_target(ok) else None,
                "diverged": int((runs["status"] == "diverged").sum()),
                "failed": int((runs["status"] == "failed").sum()),
            })
        out.append((task, setting, pd.DataFrame(rows)))
    return out


def _cell_rank(cell: str) -> tuple:
    """Rows in the registry's order (rnn, rnn_relu, gru, ..., lstm) in every table."""
    from grucli.cells import CELLS

    names = list(CELLS)
    return (names.index(cell) if cell in names else len(names), cell)


def _has_target(runs: pd.DataFrame) -> bool:
    """Tasks without a target (real data, user files) have no 'reached' share."""
    return "target" in runs and runs["target"].notna().any()


def _plain(value):
    """5.0 -> 5 (a column with gaps turns integers into floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _mean(df: pd.DataFrame, col: str):
    return float(df[col].mean()) if col in df and df[col].notna().any() else None


def _median(df: pd.DataFrame, col: str):
    return int(df[col].median()) if col in df and df[col].notna().any() else None


def _first(df: pd.DataFrame, col: str):
    return float(df[col].dropna().iloc[0]) if col in df and df[col].notna().any() else None
