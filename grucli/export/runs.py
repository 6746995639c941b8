"""What a tracker receives of each finished run, read through the one reader (store.reader)
and, for a tuned folder, tune's own manifest (tune.analysis): the same for every tracker.

    params    the run's resolved config, flattened (`model.hidden_size`), as the summary
              holds it (null values left out)
    series    per-epoch values from history.csv, step = epoch, under tracker names
              (`train/loss`, `val/mse`, `time/epoch_time_s`: `series_name`); a value
              that is not finite (a diverged run's NaN loss) is left out: the status says it
    final     the summary's end-of-run numbers (`final/test_mse`, `final/params`,
              `final/epoch_time_s` = steady s/epoch, ...), finite values only
    tags      experiment, cell, task, seed, status (ok | diverged | failed | pruned), the
              error of a run that is not ok and, in a tuned folder, role (trial | final),
              arm (its grid point's label) and, for a trial, its number in the arm

Runs in progress or unreadable are not finished: left out, with a note. No tracker is
imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from grucli import store
from grucli.store import reader

TUNED = ("role", "arm", "trial")  # a tuned folder's tags
TIMING_COLUMNS = ("epoch_time_s", "train_time_s", "wall_time_s")  # history.csv's clock columns
SPLITS = ("train", "val", "test")
FINAL_TIMING = ("epoch_time_s", "first_epoch_time_s", "train_time_s", "throughput_seq_s", "latency_seq_ms",
                "peak_memory_mb", "epochs", "steps")  # the summary's timing keys a tracker gets at the end


@dataclass
class RunRecord:
    experiment: str  # the experiment folder's name
    run_id: str
    run_dir: Path
    status: str  # ok | diverged | failed | pruned
    tags: dict[str, str]
    params: dict[str, Any]  # flattened config: bool, int, float or str
    series: dict[str, list[tuple[int, float]]]  # tracker name -> [(epoch, value)]
    final: dict[str, float]
    start: float  # unix seconds: when training started (finished_at - total time), else finished_at
    end: float  # unix seconds: finished_at
    epoch_times: dict[int, float] = field(default_factory=dict)  # epoch -> unix seconds it ended

    @property
    def key(self) -> str:
        return f"{self.experiment}/{self.run_id}"

    @property
    def summary_path(self) -> Path:
        return self.run_dir / store.SUMMARY

    @property
    def finished_at(self) -> str:
        return self.tags.get("finished_at", "")

    @property
    def last_epoch(self) -> int:
        return max((e for values in self.series.values() for e, _ in values), default=0)


@dataclass
class Finished:
    runs: list[RunRecord]
    notes: list[str]


def series_name(column: str) -> str:
    """history.csv column -> tracker name: train_loss -> train/loss, val_mse -> val/mse,
    epoch_time_s -> time/epoch_time_s (s/epoch), step -> train/steps (optimiser steps so
    far), anything else -> history/<column>."""
    if column == "step":
        return "train/steps"
    if column in TIMING_COLUMNS:
        return f"time/{column}"
    split, _, name = column.partition("_")
    if split in SPLITS and name:
        return f"{split}/{name}"
    return f"history/{column}"


def finished_runs(paths: list[Path]) -> Finished:
    """Every finished run (ok, diverged, failed, pruned) of the experiment folders in
    `paths` (an experiment folder or a results root, as `grucli report` takes them)."""
    from grucli.tune import analysis

    col = reader.collect([Path(p) for p in paths])
    notes = list(col.notes)
    out: list[RunRecord] = []
    if col.runs.empty:
        return Finished(out, notes)
    for exp in col.experiments:
        mine = col.runs[col.runs["experiment"] == exp["name"]]
        tuned = _tuned_tags(analysis.load(exp["path"], mine)) if analysis.is_tuned(exp["path"]) else None
        left = mine[~mine["state"].isin(store.FINISHED)]
        if len(left):
            states = ", ".join(f"{n} {s}" for s, n in left["state"].value_counts().sort_index().items())
            notes.append(f"{exp['name']}: {len(left)} run(s) not finished ({states}): not exported")
        for row in mine[mine["state"].isin(store.FINISHED)].to_dict("records"):
            out.append(_record(row, col.histories.get(row["key"]), tuned))
    return Finished(out, notes)


def _tuned_tags(t) -> dict[str, dict[str, str]]:
    """A tuned folder's run id -> role, arm and (a trial's) number, from tune.json's final
    runs and trials.csv (a run trained once for twin trials takes the first)."""
    out: dict[str, dict[str, str]] = {}
    for trial in t.trials.to_dict("records"):
        if isinstance(trial.get("run_id"), str):
            number = trial.get("trial")
            out.setdefault(trial["run_id"], {"role": "trial", "arm": _text(trial.get("arm")),
                                             "trial": _text(int(number) if _finite(number) else None)})
    for arm in t.arms:
        for rid in arm.get("final_runs") or []:
            out[rid] = {"role": "final", "arm": _text(arm.get("label"))}
    return out


def _record(row: dict, history: pd.DataFrame | None, tuned: dict[str, dict[str, str]] | None) -> RunRecord:
    run_dir = Path(row["run_dir"])
    # The config as the summary holds it: the collected table turns an int column with a
    # gap into floats (hidden_size 4 -> 4.0), one run's own row keeps its types.
    own = reader.read_row(run_dir, row["experiment"])
    params = {k.removeprefix("config."): _param(v) for k, v in own.items() if k.startswith("config.")}
    params = {k: v for k, v in params.items() if v is not None}
    tags = {"experiment": row["experiment"], "cell": _text(row.get("cell")), "task": _text(row.get("task")),
            "seed": _text(own.get("seed")), "status": row["state"], "finished_at": _text(row.get("finished_at"))}
    if row["state"] != store.OK and _text(row.get("error")):
        tags["error"] = _text(row.get("error"))  # why it failed, diverged or was pruned
    if tuned is not None:
        tags.update({k: v for k, v in tuned.get(row["run_id"], {"role": "trial"}).items() if v})
    final = {}
    for split in SPLITS:
        final.update({f"final/{split}_{k.removeprefix(split + '.')}": v for k, v in row.items()
                      if k.startswith(split + ".")})
    final.update({f"final/baseline_{k.removeprefix('baseline.')}": v for k, v in row.items()
                  if k.startswith("baseline.")})
    final.update({f"final/{k}": row.get(f"timing.{k}") for k in FINAL_TIMING})
    final["final/params"] = row.get("params")
    final = {k: float(v) for k, v in final.items() if _finite(v)}
    end = _when(row.get("finished_at"))
    total = row.get("timing.total_time_s")
    start = end - total if end is not None and _finite(total) else end
    series, epoch_times = {}, {}
    if history is not None:
        epochs = [int(e) for e in history["epoch"]]
        for column in history.columns:
            if column == "epoch" or not pd.api.types.is_numeric_dtype(history[column]):
                continue
            series[series_name(column)] = [(e, float(v)) for e, v in zip(epochs, history[column]) if _finite(v)]
        if start is not None and "wall_time_s" in history:
            epoch_times = {e: start + float(w) for e, w in zip(epochs, history["wall_time_s"]) if _finite(w)}
    end = end if end is not None else 0.0
    return RunRecord(row["experiment"], row["run_id"], run_dir, row["state"], tags, params, series, final,
                     start if start is not None else end, end, epoch_times)


def _param(v):
    """A config value as a tracker takes it: bool, int, float or str (a list as its text)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(list(v)) if isinstance(v, tuple) else str(v)


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _when(stamp) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except (TypeError, ValueError):
        return None
