"""The one reader of results folders (compare's table, the report, runs.csv and pandas
users through `store.runs.load_runs` all read through here), tolerating what training can leave
behind.

Every run folder becomes a row with a `state`: ok | diverged | failed | pruned (a tuning
trial its pruner stopped) | in progress (no summary.json yet) | unreadable (a corrupt or foreign summary). Whatever could not be read
becomes a note that names the run; tables are then built from the rest. Only reads:
nothing here writes or trains.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grucli import budget, store
from grucli.errors import GrucliError
from grucli.store import DIVERGED, FAILED, FINISHED, OK, PRUNED  # noqa: F401 (the states tables read)

RUN_ID = re.compile(r"^[0-9a-f]{12}$")
RUN_FILES = (store.SUMMARY, store.CONFIG, store.HISTORY)
IN_PROGRESS, UNREADABLE = "in progress", "unreadable"  # the reader's own states of a run folder
# The summary keys the report needs; older or foreign summaries missing one are set aside.
REQUIRED = ("status", "metric", "goal", "config")
PER_SEED = "per_seed"  # task.data_seed given as per_seed (grucli.tasks.base.PER_SEED; this module imports no torch)


@dataclass
class Collection:
    runs: pd.DataFrame  # one row per run folder: experiment, run_id, state, task, cell, seed, config.*, test.*, timing.*
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)  # run_id -> history.csv
    experiments: list[dict] = field(default_factory=list)  # experiment.json (+ name, path), one per folder
    notes: list[str] = field(default_factory=list)  # problems, each naming the run


def experiment_dirs(paths: list[Path]) -> list[Path]:
    """Each given folder is an experiment (holds run folders or experiment.json) or a
    results root whose sub-folders are experiments."""
    out: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise GrucliError(f"{path}: no such results folder")
        if _is_experiment(path):
            out.append(path)
            continue
        subs = sorted(p for p in path.iterdir() if p.is_dir() and _is_experiment(p))
        if not subs:
            raise GrucliError(f"{path}: no runs here (expected results/<experiment>/ holding run folders)")
        out.extend(subs)
    return list(dict.fromkeys(p.resolve() for p in out))


def _is_experiment(path: Path) -> bool:
    return (path / "experiment.json").is_file() or any(is_run_dir(p) for p in path.iterdir())


def is_run_dir(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith("."):
        return False
    return bool(RUN_ID.match(path.name)) or any((path / f).exists() for f in RUN_FILES)


def collect(paths: list[Path], histories: bool = True) -> Collection:
    """Every run of every experiment folder in `paths` (see `experiment_dirs`); with
    `histories`, the history.csv of every ok or diverged run too (learning curves)."""
    rows: list[dict] = []
    col = Collection(pd.DataFrame())
    for exp_dir in experiment_dirs(paths):
        info = _read_experiment(exp_dir, col.notes)
        col.experiments.append(info)
        older: dict[str, list[str]] = {"history": [], "mean": []}  # runs timed before steady-state timing
        unflagged = 0  # runs an older rule called still improving that today's does not
        for run_dir in sorted(p for p in exp_dir.iterdir() if is_run_dir(p)):
            row = _read_run(run_dir, info["name"], col.notes)
            how = _steady_timing(row, run_dir) if row["state"] in FINISHED else None
            if how == "history" or (how == "mean" and row["state"] == OK):  # (a run that diverged at once
                older[how].append(run_dir.name)  # has no history, and its speed counts for nothing)
            was = row.get("still_improving")
            if _rejudge(row, run_dir) and was is True and row["still_improving"] is not True:
                unflagged += 1
            if histories and row["state"] in (OK, DIVERGED, PRUNED):
                hist = _read_history(run_dir, info["name"], col.notes)
                if hist is not None:
                    col.histories[_key(row)] = hist
            rows.append(row)
        col.notes.extend(_timing_notes(info["name"], older))
        if unflagged:
            col.notes.append(f"{info['name']}: {unflagged} run(s) that an older grucli called still improving are not "
                             "by today's rule (their last epochs' gain within the curve's own noise): judged again "
                             "from history.csv")
    runs = pd.DataFrame([flatten(r) for r in rows])
    dup = runs.duplicated("run_id", keep="first") & runs["state"].eq(OK) if not runs.empty else []
    if len(runs) and dup.any():
        col.notes.append(f"{int(dup.sum())} run(s) appear in more than one folder (same run id): counted once")
        runs = runs[~dup]
    if len(runs):
        runs["key"] = runs["experiment"] + "/" + runs["run_id"]
    col.runs = runs.reset_index(drop=True)
    return col


def read_row(run_dir: Path, experiment: str) -> dict:
    """One run folder as the flat row `collect` makes of it (for a table kept up to date
    run by run, store.runs.RunsTable, without reading every other run again)."""
    return flatten(_read_run(Path(run_dir), experiment, []))


def _key(row: dict) -> str:
    return f"{row['experiment']}/{row['run_id']}"


def _read_experiment(exp_dir: Path, notes: list[str]) -> dict:
    info: dict[str, Any] = {}
    path = exp_dir / "experiment.json"
    if path.exists():
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            notes.append(f"{exp_dir.name}: experiment.json is unreadable ({_short(e)}); grid taken from the runs")
    else:
        notes.append(f"{exp_dir.name}: no experiment.json; grid taken from the runs")
    info = info if isinstance(info, dict) else {}
    return {**info, "name": exp_dir.name, "path": str(exp_dir)}


def _read_run(run_dir: Path, experiment: str, notes: list[str]) -> dict:
    row: dict[str, Any] = {"experiment": experiment, "run_id": run_dir.name, "run_dir": str(run_dir)}
    where = f"run {experiment}/{run_dir.name}"
    summary_path = run_dir / store.SUMMARY
    if not summary_path.exists():
        row["state"] = IN_PROGRESS
        cfg = _read_config(run_dir)
        if cfg:
            row.update(config=cfg, task=cfg.get("task", {}).get("name"), cell=cfg.get("model", {}).get("cell"),
                       seed=cfg.get("seed"))
        return row
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as e:
        notes.append(f"{where}: summary.json is unreadable ({_short(e)}); left out")
        return {**row, "state": UNREADABLE, "error": "summary.json unreadable"}
    if not isinstance(summary, dict):
        notes.append(f"{where}: summary.json is not a JSON object; left out")
        return {**row, "state": UNREADABLE, "error": "summary.json not an object"}
    missing = [k for k in REQUIRED if k not in summary]
    if summary.get("status") not in store.FINISHED:
        missing = missing or ["status"]
    if missing:
        version = f"schema {summary['schema']}" if "schema" in summary else "no schema field: an older grucli"
        notes.append(f"{where}: summary.json lacks {', '.join(missing)} ({version}); left out")
        return {**row, "state": UNREADABLE, "error": f"summary.json lacks {', '.join(missing)}"}
    if summary.get("schema", 0) > store.SCHEMA:
        notes.append(f"{where}: written by a newer grucli (schema {summary['schema']}); read as far as possible")
    summary.pop("traceback", None)
    cfg = summary["config"] if isinstance(summary["config"], dict) else {}
    if summary.get("data_seed") == PER_SEED and isinstance(cfg.get("task"), dict):
        # the data seed follows the run's seed: config.task.data_seed reads per_seed as the
        # experiment gave it (a constant, not a setting; the concrete value is `seed`)
        cfg = summary["config"] = {**cfg, "task": {**cfg["task"], "data_seed": PER_SEED}}
    summary.setdefault("task", cfg.get("task", {}).get("name"))
    summary.setdefault("cell", cfg.get("model", {}).get("cell"))
    summary.setdefault("seed", cfg.get("seed"))
    state = summary["status"]
    value = (summary.get("test") or {}).get(summary["metric"])
    if state == OK and not _finite(value):
        notes.append(f"{where}: status ok but no finite test {summary['metric']}; shown as unreadable, left out")
        state, summary["error"] = UNREADABLE, f"no test {summary['metric']}"
    bases = summary.get("baseline") or {}
    base, seasonal = bases.get(summary["metric"]), bases.get(f"snaive_{summary['metric']}")
    return {**summary, **row, "state": state, "value": value if _finite(value) else None, "baseline_value": base,
            "seasonal_baseline_value": seasonal}


def _steady_timing(row: dict, run_dir: Path) -> str | None:
    """Bring a summary written before steady-state timing (no timing.first_epoch_time_s:
    its epoch_time_s is the mean over every epoch, the first's warm-up included) to today's
    keys (store.steady_timing) in place. "history": recomputed from history.csv's per-epoch
    times (seq/s from the run's own sequences per step); "mean": no usable history, the
    mean is kept and marked epoch_time_steady false. None: nothing to do. A missing
    pack_id becomes the run id for a run trained alone, else a name shared by the runs
    whose first epoch took the very same time (a pack's runs share each step's time to
    the last bit), or stays missing without a history."""
    timing = row.get("timing")
    if not isinstance(timing, dict) or "first_epoch_time_s" in timing or not _finite(timing.get("epoch_time_s")):
        return None
    pack_size = timing.get("pack_size") or 1
    if pack_size == 1:
        timing.setdefault("pack_id", row["run_id"])
    try:
        hist = read_history(run_dir)
        times = [float(t) for t in hist["epoch_time_s"]]
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        times = []
    if not times or not all(map(_finite, times)):
        timing["epoch_time_steady"] = False
        return "mean"
    steps = [int(s) for s in hist["step"].diff().fillna(hist["step"])] if "step" in hist else []
    seqs = (timing.get("throughput_seq_s") or 0) * (timing.get("train_time_s") or 0)  # every sequence trained on
    per_epoch = seqs * steps[0] / timing["steps"] if steps and timing.get("steps") else None
    timing.update(store.steady_timing(times, steps, per_epoch))
    if pack_size > 1:
        timing.setdefault("pack_id", "~" + hashlib.sha256(f"{pack_size}:{times[0]!r}".encode()).hexdigest()[:11])
    return "history"


def _rejudge(row: dict, run_dir: Path) -> bool:
    """A finished run judged "still improving" by an older rule (no still_improving_rule
    of today's budget.RULE in its summary): judged again by today's rule from its
    history.csv, in place. False when there is nothing to do or no usable history."""
    if (row.get("state") not in FINISHED or row.get("still_improving_rule") == budget.RULE
            or row.get("stopped_by") is None):  # (the rule needs why the run stopped)
        return False
    select, goal = row.get("selected_on") or row.get("metric"), row.get("select_goal") or row.get("goal")
    try:
        curve = [float(v) for v in read_history(run_dir)[f"val_{select}"]]
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return False
    solved = _finite(row.get("time_to_target_s"))
    row["still_improving"] = budget.still_improving(curve, goal, row["stopped_by"], solved=solved)
    row["still_improving_rule"] = budget.RULE
    return True


def _timing_notes(experiment: str, older: dict[str, list[str]]) -> list[str]:
    notes = []
    if older["history"]:
        notes.append(f"{experiment}: {len(older['history'])} run(s) timed by an older grucli (s/epoch the mean "
                     "over all epochs, warm-up included): s/epoch and seq/s recomputed from history.csv, the "
                     "median over the epochs after the first")
    if older["mean"]:
        shown = ", ".join(older["mean"][:5]) + (" ..." if len(older["mean"]) > 5 else "")
        notes.append(f"{experiment}: {len(older['mean'])} run(s) timed by an older grucli without a usable "
                     f"history.csv ({shown}): s/epoch is the mean over all epochs, warm-up included "
                     "(timing.epoch_time_steady false)")
    return notes


def _read_config(run_dir: Path) -> dict | None:
    try:
        cfg = yaml.safe_load((run_dir / store.CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return cfg if isinstance(cfg, dict) else None


def read_history(run_dir: Path, exact: bool = False) -> pd.DataFrame:
    """A run's history.csv. `exact`: every value to the last bit as the run wrote it
    (round_trip; pandas' default float parser is one ulp off on about half of all values,
    which tables and figures never show, but a study told the values must get them
    exactly). Raises what pandas raises."""
    return pd.read_csv(Path(run_dir) / store.HISTORY, float_precision="round_trip" if exact else None)


def _read_history(run_dir: Path, experiment: str, notes: list[str]) -> pd.DataFrame | None:
    where = f"run {experiment}/{run_dir.name}"
    try:
        hist = read_history(run_dir)
    except FileNotFoundError:
        notes.append(f"{where}: history.csv missing; left out of the learning curves")
        return None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        notes.append(f"{where}: history.csv is unreadable ({_short(e)}); left out of the learning curves")
        return None
    if "epoch" not in hist.columns or hist.empty:
        notes.append(f"{where}: history.csv has no epoch rows; left out of the learning curves")
        return None
    return hist


def flatten(d: dict, prefix: str = "") -> dict:
    """{"test": {"mse": 1}} -> {"test.mse": 1}; lists become tuples so they can be grouped."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("baseline_value", "seasonal_baseline_value"):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:120] if str(e) else type(e).__name__
