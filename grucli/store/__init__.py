"""The results folder is the interface between training and everything that reads it.

    results/<experiment>/
        experiment.json          what was asked: source file, grid spec, base config
        runs.csv (+ runs.parquet if pyarrow is installed)   one tidy row per run
        <run_id>/config.yaml     the resolved run config
        <run_id>/history.csv     one row per epoch
        <run_id>/model.pt        weights (state_dict) and what is needed to rebuild the model
        <run_id>/summary.json    metrics, params, timing, status, environment -- written last

Every file is written atomically (temp file in the same folder, fsync, rename), and a run
counts as finished only when its summary.json parses and carries a status. Nothing here
imports torch at module level, so pandas users can read results without grucli's models.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from grucli import budget
from grucli.errors import GrucliError

SCHEMA = 1
SUMMARY, HISTORY, CONFIG, WEIGHTS = "summary.json", "history.csv", "config.yaml", "model.pt"
# A run's status, in summary.json (the one definition: the reader, tables, tune and the CLI
# import these). A run with one of FINISHED is not trained again; a tuning trial with one of
# them used its share of the budget.
OK, DIVERGED, FAILED, PRUNED = "ok", "diverged", "failed", "pruned"
FINISHED = (OK, DIVERGED, FAILED, PRUNED)
COUNTED = FINISHED  # a tuning trial in one of these states used its share of the budget
TMP_SUFFIX = ".tmp"
HISTORY_COLUMNS = ("epoch", "step", "train_loss", "epoch_time_s", "train_time_s", "wall_time_s")
_UMASK = os.umask(0)
os.umask(_UMASK)


def steady_timing(epoch_times: list[float], epoch_steps: list[int], seqs_per_epoch: float | None) -> dict:
    """Steady-state speed of one run from its per-epoch training times (warm-up left out):

    - `epoch_time_s`: the median over the epochs after the first, each scaled to a whole
      epoch (time x first epoch's steps / its own steps: the last epoch of a run capped by
      max_steps is cut short). The first epoch pays for warm-up (kernels loaded, caches,
      allocator): 0.3-0.9 s against a steady 0.01 s in a worker's first run.
    - `first_epoch_time_s`: the first epoch's time, kept apart.
    - `epoch_time_steady`: False when only one epoch ran; `epoch_time_s` is then that
      epoch's time, warm-up included.
    - `throughput_seq_s`: sequences per second at that steady pace, `seqs_per_epoch`
      (a whole epoch's sequences) / `epoch_time_s`; the same median, so the two agree.

    Pure and torch-free: training writes these keys, and the reader recomputes them from
    history.csv for summaries written before they existed."""
    times = list(epoch_times)
    if not times:
        return {"epoch_time_s": None, "first_epoch_time_s": None, "epoch_time_steady": False,
                "throughput_seq_s": None}
    steps = list(epoch_steps) if len(epoch_steps) == len(times) else [None] * len(times)  # None: not scaled
    whole, later = steps[0], []
    for t, s in zip(times[1:], steps[1:]):
        if s is None or not whole:
            later.append(t)
        elif s > 0:  # (an epoch that diverged at its first step took no step)
            later.append(t * whole / s)
    steady = bool(later)
    per_epoch = _median(later) if steady else times[0]
    rate = seqs_per_epoch / per_epoch if seqs_per_epoch and per_epoch else None
    return {"epoch_time_s": per_epoch, "first_epoch_time_s": times[0], "epoch_time_steady": steady,
            "throughput_seq_s": rate}


def _median(values: list[float]) -> float:
    v, n = sorted(values), len(values)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


CAUSES = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
          errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
          errno.ENOENT: "the folder no longer exists"}


class StoreError(GrucliError, OSError):
    """A file of the results folder could not be written: a full disk, a read-only folder,
    a folder deleted under a running grid. One line naming the path and the cause; still an
    OSError (with its errno), so writers whose output is optional (a data cache) go on."""

    def __init__(self, path: Path, cause: OSError | str):
        code = cause.errno if isinstance(cause, OSError) else None
        super().__init__(code, cause if isinstance(cause, str) else cause.strerror)
        self.filename = str(path)
        self.why = cause if isinstance(cause, str) else (CAUSES.get(code) or cause.strerror or str(cause)
                                                         or type(cause).__name__)
        self.hint = ""  # what the user can do, added by whoever knows (the driver: what is kept)

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.why}" + (f"; {self.hint}" if self.hint else "")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all: a temp file in the same folder, fsync, rename. An
    OSError (full disk, read-only or vanished folder) becomes a StoreError naming `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise StoreError(path, e) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, StoreError):
            raise StoreError(path, e) from None
        raise


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files that a killed writer left in `folder` and its run folders: those
    written on this host by a process that no longer exists. Returns how many."""
    removed = 0
    for tmp in [*Path(folder).glob(f".*{TMP_SUFFIX}"), *Path(folder).glob(f"*/.*{TMP_SUFFIX}")]:
        parts = tmp.name.split(".")  # "", name..., host, pid, random + suffix
        try:
            host, pid = parts[-4], int(parts[-3])
        except (IndexError, ValueError):
            continue
        if host == _host() and not _alive(pid):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _host() -> str:
    return socket.gethostname().replace(".", "_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def experiment_dir(results: Path, name: str) -> Path:
    return Path(results) / name


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary if it is finished (parses, has a known status), else None."""
    try:
        data = json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") in FINISHED else None


def run_state(run_dir: Path) -> str:
    """done | failed | diverged | pruned | partial (files but no summary) | todo"""
    summary = read_summary(run_dir)
    if summary is not None:
        return {"ok": "done"}.get(summary["status"], summary["status"])
    return "partial" if Path(run_dir).is_dir() else "todo"


def clear_partial(run_dir: Path) -> None:
    """Remove what a killed run left behind (files but no finished summary) before redoing it."""
    import shutil

    if Path(run_dir).is_dir() and read_summary(run_dir) is None:
        shutil.rmtree(run_dir)


def write_experiment(exp_dir: Path, exp, until_decided: bool = False) -> None:
    """Record what was asked (the experiment as loaded, overrides applied), with its
    verdict section (declared before any run: the tables read the margins from here) and
    whether seeds are added look by look (--until-decided; once set, it stays set)."""
    path = Path(exp_dir) / "experiment.json"
    try:
        before = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        before = {}
    info = {"schema": SCHEMA, "name": exp.name, "description": exp.description, "source": exp.source,
            "base": exp.base, "spec": exp.spec.model_dump(mode="json"), "verdict": exp.verdict.model_dump(mode="json"),
            "until_decided": bool(until_decided or (isinstance(before, dict) and before.get("until_decided")))}
    atomic_write_text(path, json.dumps(info, indent=2, default=str))


def write_run(exp_dir: Path, run, result, experiment: str) -> Path:
    """Write one finished run (any status). The summary goes last: its presence marks the
    run as finished."""
    import torch

    run_dir = Path(exp_dir) / run.run_id
    cfg = run.config.model_dump(mode="json")
    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(cfg, sort_keys=False))
    history = pd.DataFrame(result.history, columns=None if result.history else list(HISTORY_COLUMNS))
    atomic_write_text(run_dir / HISTORY, history.to_csv(index=False))  # header even if it diverged at once
    if result.state_dict is not None:
        buf = io.BytesIO()
        torch.save({"state_dict": result.state_dict, "config": cfg, "meta": result.model_meta}, buf)
        atomic_write_bytes(run_dir / WEIGHTS, buf.getvalue())
    summary: dict[str, Any] = {
        "schema": SCHEMA, "run_id": run.run_id, "experiment": experiment, "status": result.status,
        "error": result.error, "traceback": result.traceback,
        "task": run.config.task.name, "cell": run.config.model.cell, "seed": run.config.seed,
        "data_seed": run.config.data_seed_given,  # per_seed: config.task.data_seed is the run's seed
        "varied": run.varied, "params": result.params, "hidden_size": result.hidden_size,
        "impl": result.model_meta.get("impl"), "kernels": result.model_meta.get("kernels"),
        "metric": result.metric, "goal": result.goal,
        "selected_on": (result.select or (result.metric, result.goal))[0],
        "select_goal": (result.select or (result.metric, result.goal))[1], "target": result.target, "baseline": result.baseline,
        "train": result.train, "val": result.val, "test": result.test,
        "target_split": "val", "reached_target": result.reached_target, "time_to_target_s": result.time_to_target_s,
        "epoch_to_target": result.epoch_to_target, "test_reached_target": result.test_reached_target, "stopped_by": result.stopped_by,
        "still_improving": result.still_improving, "still_improving_rule": budget.RULE,
        "left_baseline": result.left_baseline,
        "timing": result.timing, "env": result.env,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": cfg,
    }
    atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2, default=str))
    return run_dir
