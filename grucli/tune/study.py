"""Optuna studies for `grucli tune`, one per arm, in one SQLite database per experiment
(`results/<name>/tune.db`, Optuna's RDB storage). Optuna owns sampling, pruning and the
database; this module owns what grucli adds around it:

- arms: each grid point of the experiment (e.g. one cell) is one study, named after it;
- fingerprints: a study remembers the arm config and search it was made from, and a file
  that no longer matches is refused instead of mixed in;
- seeds: trial k of every arm samples with the seed `search.seed + k`, so a resumed study
  proposes what an uninterrupted one would, and random search tries the same points in
  every arm;
- counting: a trial is finished when it completed, was pruned, diverged or failed; a trial
  left RUNNING by a killed process is marked interrupted and its parameters retried;
- the worker side: `TrialWatch` reports each epoch's validation value and asks the pruner
  (tune/pruning.py: the rules, and the guard that keeps them off a baseline plateau), through
  one storage per worker process;
- tune.db's journal: SQLite's write-ahead log while a study runs, folded back at its end
  (`fast_commits`, `settle`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grucli.config import Experiment, RunConfigError, parse_run, set_dotted
from grucli.errors import ConfigError
from grucli.store import COUNTED, StoreError
from grucli.grid import grid_points, label, origin, point_config, point_source
from grucli.train.loop import Callback
from grucli.tune import pruning
from grucli.tune.space import SearchSpec

DB = "tune.db"
STATE = "grucli_state"  # trial user attr: ok | pruned | diverged | failed | interrupted
SQLITE_TIMEOUT_S = 30  # concurrent writers wait this long for the database lock


@dataclass(frozen=True)
class Arm:
    """One grid point, tuned as one Optuna study."""

    index: int
    label: str  # the study's name: `model.cell=gru` (or `all` without a grid)
    point: dict[str, Any]  # the grid values that make this arm
    raw: dict  # its run config before the searched keys and the seed
    where: str  # where its config errors are reported

    def config(self, params: dict[str, Any], seed: int):
        """The RunConfig of a trial (or final run) of this arm: searched values on top."""
        raw = self.raw
        for key, value in params.items():
            section, *rest = key.split(".")
            raw = {**raw, section: set_dotted(dict(raw[section]), rest, value, section)}
        return parse_run({**raw, "seed": seed}, self.where)

    def fingerprint(self, search: SearchSpec) -> dict:
        """What a study was made from; a change here means another study."""
        made = {"arm": self.raw, "space": {k: d.model_dump(mode="json") for k, d in sorted(search.space.items())},
                "sampler": search.sampler, "pruner": search.pruner, "warmup_epochs": search.warmup_epochs,
                "seed": search.seed}
        if search.pruner != "none" and search.plateau != "prune":  # studies made before the guard pruned
            made["plateau"] = search.plateau  # on plateaus: they keep their fingerprint under plateau: prune
        return made


def arms_of(exp: Experiment) -> list[Arm]:
    """Every arm of a tuned experiment, its space checked against each arm's config."""
    if exp.search is None:
        raise ConfigError(f"{exp.source}: no search: section: `grucli tune` needs one (see experiments/tune_adding.yaml); "
                          "`grucli compare` runs a plain grid")
    arms = [Arm(i, label(p) or "all", dict(p), point_config(exp, p), point_source(exp, p))
            for i, p in enumerate(grid_points(exp))]
    check_space(exp, arms)
    return arms


def check_space(exp: Experiment, arms: list[Arm]) -> None:
    """Every searched key is a config key, not also a grid axis, and every bound or choice
    gives a valid config for every arm: one line naming the key otherwise."""
    axes = set(exp.spec.grid) | {k for g in exp.spec.zip for k in g}
    for key, dist in exp.search.space.items():
        where = f"{exp.source}: search.space.{key}"
        if key.split(".")[0] not in ("task", "model", "train") or "." not in key:
            raise ConfigError(f"{where}: searched keys are task.*, model.* or train.* keys, e.g. train.lr")
        if key in axes or key.split(".")[0] in axes:
            raise ConfigError(f"{where}: also a grid axis; a key makes the arms (grid) or is searched, not both")
        for arm in arms:
            for value in dist.edges():
                try:
                    arm.config({key: value}, exp.search.seed)
                except RunConfigError as e:  # each problem where its value came from: this searched value, else
                    raise ConfigError(e.at(  # the arm's grid point, a --set or the file's line
                        lambda k: f"{where} = {value!r}" if k == key or key.startswith(k + ".")
                        else origin(exp, arm.point, k))) from None


# --------------------------------------------------------------------------- storage
def storage_url(exp_dir: Path) -> str:
    return f"sqlite:///{(Path(exp_dir) / DB).resolve()}"


def storage(exp_dir: Path, wal: bool = False):
    """The experiment's RDB storage (creating the database and its tables). `wal`: the
    study's own driver, its workers on this machine: tune.db's commits go to SQLite's
    write-ahead log (`fast_commits`) until `settle` folds it back."""
    st = _rdb(storage_url(exp_dir))
    if wal:
        fast_commits(st)
    return st


def _rdb(url: str, checked: bool = True, **engine):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}, **engine},
                                      skip_compatibility_check=not checked, skip_table_creation=not checked)


def fast_commits(st, switch: bool = True) -> None:
    """Every later connection of `st` commits to SQLite's write-ahead log and syncs it to disk
    only at checkpoints (journal_mode=WAL, synchronous=NORMAL): 1 ms of CPU a write instead of
    2.5, and no fsync per commit (9-20 ms of wall time each in the default rollback journal).
    A killed process loses nothing (a commit is in the log, which the next connection replays);
    only a power cut or an OS crash can drop the last commits before a checkpoint, never corrupt
    the file -- and a trial whose end was dropped is retried from its run folder.

    The journal mode is a property of the file: the driver switches it (`switch`), a worker
    follows whatever the file is in (synchronous=NORMAL only in WAL mode). SQLite's WAL needs
    every process on one host (its index is shared memory), so the driver leaves the default
    journal when workers may run on other machines (`--executor ray --address`)."""
    from sqlalchemy import event

    def pragmas(connection, _record):
        cursor = connection.cursor()
        mode = cursor.execute("PRAGMA journal_mode=WAL" if switch else "PRAGMA journal_mode").fetchone()[0]
        if mode == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(st.engine, "connect", pragmas)
    st.engine.dispose()  # the connection RDBStorage made its tables with had the defaults


def settle(exp_dir: Path, st) -> None:
    """Fold the write-ahead log back into tune.db and leave it one ordinary file (the default
    rollback journal): readable in a read-only folder (SQLite cannot open a WAL database
    there) and whole when copied alone. Workers close their connections as each pack ends; one
    still connected (a crashed process) keeps the log until the next study folds it back.
    Never raises: the log is a valid state of the database."""
    import sqlite3

    st.engine.dispose()
    release(storage_url(exp_dir))  # the trials' watchers of an inline study ran in this process
    path = Path(exp_dir) / DB
    if not path.is_file():
        return
    try:
        connection = sqlite3.connect(path, timeout=1)
        try:
            connection.execute("PRAGMA journal_mode=DELETE")
        finally:
            connection.close()
    except sqlite3.Error:
        pass


# What SQLite says when it cannot write tune.db, as the cause a results file would give.
SQLITE_FAULTS = {"database or disk is full": "no space left on device",
                 "attempt to write a readonly database": "read-only (SQLite: attempt to write a readonly database)",
                 "unable to open database file": "cannot be opened (SQLite: unable to open database file; a folder "
                                                 "that is read-only or was deleted?)",
                 "disk i/o error": "disk I/O error (SQLite)"}


WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def storage_fault(error: BaseException, exp_dir: Path) -> StoreError | None:
    """tune.db could not be written -- a full disk, a read-only or deleted folder: the one
    line a results file gives (store.StoreError, naming tune.db and the cause), found in the
    chain Optuna and SQLAlchemy wrap SQLite's error in. None for any other error."""
    import sqlite3

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sqlite3.Error):
            text = str(error).lower()
            for message, cause in SQLITE_FAULTS.items():
                if message in text:
                    return StoreError(Path(exp_dir) / DB, cause)
            return None
        if isinstance(error, OSError) and not isinstance(error, StoreError) and error.errno in WRITE_FAULTS:
            return StoreError(Path(error.filename) if error.filename else Path(exp_dir) / DB, error)
        error = error.__cause__ or error.__context__
    return None


def direction(goal: str) -> str:
    return "minimize" if goal == "min" else "maximize"


def open_study(st, arm: Arm, search: SearchSpec, goal: str, source: str, create: bool = True):
    """The arm's study (created on first use), refused if it was made from something else."""
    import optuna

    want = arm.fingerprint(search)
    try:
        study = optuna.load_study(study_name=arm.label, storage=st)
    except KeyError:
        if not create:
            return None
        study = optuna.create_study(storage=st, study_name=arm.label, direction=direction(goal), load_if_exists=True)
        study.set_user_attr("fingerprint", want)
        study.set_user_attr("fingerprint_sha", _sha(want))
        return study
    have = study.user_attrs.get("fingerprint")
    if have != want:
        older = isinstance(have, dict) and "plateau" not in have and {**have, "plateau": want.get("plateau")} == want
        hint = (" (made before search.plateau, when pruners also stopped trials on the baseline's plateau: "
                "--set search.plateau=prune resumes it as it was)" if older else "")
        raise ConfigError(f"{source}: {DB} already holds study '{arm.label}' made from another "
                          f"{_what_differs(have, want)}{hint}; it is never mixed with this file's. Delete {DB} (and "
                          "the trial folders) to start over, or give the experiment another name")
    return study


def _sha(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _what_differs(have, want) -> str:
    if not isinstance(have, dict):
        return "search (no fingerprint: not made by grucli tune)"
    keys = [k for k in want if have.get(k) != want.get(k)]
    if "arm" in keys:
        a, b = have.get("arm") or {}, want["arm"]
        inner = [f"{s}.{k}" for s in b for k in sorted(set(a.get(s, {})) | set(b[s]))
                 if (a.get(s) or {}).get(k) != b[s].get(k)]
        keys = [*inner[:3], *[k for k in keys if k != "arm"]]
    return "config (" + ", ".join(f"search.{k}" if k in want and k != "arm" else k for k in keys) + " differ)"


def grucli_state(trial) -> str:
    """ok | pruned | diverged | failed | interrupted | running | waiting"""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        return "ok"
    if trial.state == TrialState.PRUNED:
        return "pruned"
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get(STATE, "failed")
    return trial.state.name.lower()


def counted(study) -> list:
    """The trials that used their share of the budget (the arm's `trials` count)."""
    return [t for t in study.get_trials(deepcopy=False) if grucli_state(t) in COUNTED]


def recover(st, study) -> int:
    """Mark trials a killed process left RUNNING as interrupted (FAIL) and queue their
    parameters again, so the next trial retries them. Call while holding the tune lock:
    no other driver is running, so nothing RUNNING is alive. Returns how many."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        st.set_trial_user_attr(t._trial_id, STATE, "interrupted")
        st.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        n += 1
    return n


def sampler(search: SearchSpec, position: int):
    """The sampler that proposes trial `position` (0-based among the arm's counted trials):
    seeded from search.seed + position, so sampling does not depend on how often the
    process was restarted."""
    import optuna

    seed = search.seed + position
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "grid":
        return optuna.samplers.GridSampler({k: d.grid() for k, d in search.space.items()}, seed=search.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning for constant_liar and multivariate
        return optuna.samplers.TPESampler(seed=seed)


def pruner(watch: TrialWatch):
    """The pruner a worker asks after each epoch of a trial."""
    return pruning.make(watch.pruner, watch.warmup, watch.epochs, watch.plateau, watch.goal)


# --------------------------------------------------------------------------- the worker side
@dataclass(frozen=True)
class TrialWatch:
    """Travels with a trial's run to its worker (picklable): reports the validation value
    after each epoch to the study and stops the run when the pruner says so."""

    url: str
    study: str
    trial_id: int
    pruner: str
    warmup: int
    key: str  # history column, e.g. val_mse
    epochs: int  # train.epochs: Hyperband's largest bracket
    plateau: str  # search.plateau: wait | prune
    goal: str  # min | max, of the selection metric

    def callback(self, inner: Callback | None) -> Callback:
        return _Pruning(self, inner or Callback())

    def close(self) -> None:
        """The run's pack is over: close this process's connection to tune.db (kept open from
        epoch to epoch; one left open would keep the driver from folding the log back)."""
        for key, cached in _OPEN.items():
            if key[0] == self.url:
                cached._backend.engine.dispose()


# A worker's tune.db, opened once per process: RDBStorage's set-up (its tables, the schema
# check) cost 35-45 ms of CPU per run, and Optuna's cache over it, kept from run to run,
# reads only the trials that changed since it last looked (finished trials never change).
# Keyed by tune.db's inode too: a database deleted and made again at the same path is another.
_OPEN: dict[tuple, Any] = {}  # (url, device, inode) -> optuna's _CachedStorage over the RDBStorage


def _worker_study(url: str, name: str, judge):
    """Study `name` in the tune.db at `url`, with the pruner `judge` (each run its own Study
    object: runs packed in one worker may differ in epochs, so in Hyperband's pruner)."""
    import optuna

    try:
        stat = Path(url.removeprefix("sqlite:///")).stat()
        key = (url, stat.st_dev, stat.st_ino)
    except OSError:  # (the study's first read says what is wrong)
        key = (url, None, None)
    if key not in _OPEN:
        release(url)
        st = _rdb(url, checked=False)  # the driver made the tables and checked the schema
        fast_commits(st, switch=False)
        _OPEN[key] = optuna.storages._CachedStorage(st)
    return optuna.study.Study(study_name=name, storage=_OPEN[key], pruner=judge)


def release(url: str) -> None:
    """Close what this process holds open of the tune.db at `url` (its pooled connection)."""
    for key in [k for k in _OPEN if k[0] == url]:
        _OPEN.pop(key)._backend.engine.dispose()


class _Pruning(Callback):
    def __init__(self, watch: TrialWatch, inner: Callback):
        self.watch, self.inner, self.trial, self.epoch = watch, inner, None, 0
        self.cut_off = False  # tune.db cannot be written: train on unpruned; the driver stops with the cause

    def _trial(self):
        if self.trial is None:
            import optuna

            study = _worker_study(self.watch.url, self.watch.study, pruner(self.watch))
            self.trial = optuna.trial.Trial(study, self.watch.trial_id)
        return self.trial

    def on_start(self, total_steps):
        self.inner.on_start(total_steps)

    def on_step(self, step, loss):
        self.inner.on_step(step, loss)

    def on_epoch(self, row):
        self.inner.on_epoch(row)
        value = row.get(self.watch.key)
        if value is not None and value == value and not self.cut_off:  # NaN is never reported
            self.epoch = int(row["epoch"])
            self._study_says(lambda: self._trial().report(float(value), self.epoch))

    def stop_reason(self) -> str | None:
        if self.watch.pruner == "none" or not self.epoch or self.cut_off:
            return self.inner.stop_reason()
        if self._study_says(lambda: self._trial().should_prune()):
            return f"pruned by {self.watch.pruner} after epoch {self.epoch}"
        return self.inner.stop_reason()

    def _study_says(self, ask):
        """A full disk or a read-only tune.db must not fail the trial's run (its result is
        kept and told when the study can be written again): stop talking to the study."""
        try:
            return ask()
        except Exception as e:
            if storage_fault(e, Path(".")) is None:
                raise
            self.cut_off = True
            return None
