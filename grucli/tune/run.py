"""`grucli tune` end to end: every arm (grid point) gets the same number of trials from the
same search space, then its best configuration is trained again with fresh seeds.

    load + check the space (study.arms_of) -> prepare data and kernels -> lock the folder
    -> open one study per arm in tune.db, retry what a killed run left RUNNING
    -> trials: the driver (execute.drive) asks Optuna for the next trial of the arm with
       the fewest, trains it as an ordinary run folder, tells Optuna how it ended
    -> final runs: each arm's best completed trial, seeds search.final_seed_list()
    -> tune.json and trials.csv beside the runs

Trials are asked and told in this process only, so with --jobs 1 a seeded study proposes
the same trials every time (with more workers, TPE's proposals depend on which trials
finish first; random and grid search do not). Workers talk to tune.db only with a pruner, to
report each epoch's validation value and ask it; without one the driver tells each trial's
curve from its history.csv when the trial ends.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from grucli import execute, runtime, store, verdicts
from grucli.train import packing
from grucli.config import Experiment, load_experiment
from grucli.errors import ConfigError, GrucliError
from grucli.experiment import Reporter, check_margin, prepare
from grucli.grid import Run, run_id
from grucli.tune import pruning
from grucli.tune import study as studies
from grucli.tune.study import Arm
from grucli.tasks import build_task
from grucli.tune import analysis

MANIFEST, TRIALS = "tune.json", "trials.csv"
# trials.csv and tune.json are rewritten at most this often while trials run, and at their end:
# rewritten after every trial (each time from every trial of the study) a study cost O(N^2).
RECORDS_EVERY_S = 5.0
SCHEMA = 1


@dataclass
class ArmState:
    arm: Arm
    done: int = 0  # counted trials (complete, pruned, diverged, failed)
    interrupted: int = 0  # trials a killed process left, retried
    best: dict | None = None  # {"trial", "value", "params", "run_id"} of the best completed trial
    finals: list[str] = field(default_factory=list)  # run ids of the final runs
    pruned_on_plateau: int = 0  # trials pruned while no trial of the arm had left the baseline (by noise)


@dataclass
class TuneRun:
    experiment: Experiment
    exp_dir: Path
    arms: list[ArmState]
    metric: str | None = None  # the task's test metric, on which the final runs are compared
    goal: str | None = None
    select: str | None = None  # the validation metric trials are told, pruned and chosen on
    select_goal: str | None = None
    trial_outcome: execute.Outcome | None = None
    final_outcome: execute.Outcome | None = None
    notes: list[str] = field(default_factory=list)  # what preparing the data did that the user should know
    until_decided: bool = False  # final seeds come in the verdict section's looks (once set, it stays set)

    @property
    def search(self):
        return self.experiment.search

    @property
    def to_run(self) -> int:
        return sum(max(0, self.search.trials - a.done) for a in self.arms)


# --------------------------------------------------------------------------- the trial source
class _Trials(execute.Source):
    """Asks each arm's study for trials, fewest-done arm first, until every arm has
    `search.trials` counted trials; tells the study how each run ended."""

    def __init__(self, tr: TuneRun, st, found: dict[str, object], warmups: dict[int, int]):
        self.tr, self.st, self.studies, self.warmups = tr, st, found, warmups
        self.inflight: dict[str, list] = {}  # run id -> [(arm state, trial)] (twins: trials of the same config)
        self.index = 0
        self.baselines: dict[str, float | None] = {}  # task config -> its baseline on the selection metric
        self.dists = {k: d.to_optuna() for k, d in tr.search.space.items()}
        self.written = time.monotonic()  # when trials.csv and tune.json were last written

    def _open(self, state: ArmState) -> int:
        return sum(1 for trials in self.inflight.values() for s, _ in trials if s is state)

    def next(self) -> Run | None:
        while True:
            candidates = [s for s in self.tr.arms if s.done + self._open(s) < self.tr.search.trials]
            if not candidates:
                return None
            state = min(candidates, key=lambda s: (s.done + self._open(s), s.arm.index))
            study = self.studies[state.arm.label]
            study.sampler = studies.sampler(self.tr.search, state.done + self._open(state))
            trial = study.ask(self.dists)
            cfg = state.arm.config(trial.params, self.tr.search.seed)
            rid = run_id(cfg)
            self.st.set_trial_user_attr(trial._trial_id, "run_id", rid)
            self.st.set_trial_user_attr(trial._trial_id, pruning.BASELINE, self._baseline(cfg))
            if rid in self.inflight:  # the same config is already training: wait for it
                self.inflight[rid].append((state, trial))
                continue
            summary = store.read_summary(self.tr.exp_dir / rid)
            if summary is not None:  # trained before (an earlier trial, or another study file)
                self._tell(state, trial, summary)
                continue
            self.inflight[rid] = [(state, trial)]
            self.index += 1
            return Run(self.index, cfg, {**state.arm.point, **trial.params}, rid, self._watch(state, trial, cfg))

    def _watch(self, state: ArmState, trial, cfg) -> studies.TrialWatch | None:
        """What the trial's worker reports to the study: each epoch's value, for its pruner.
        Without a pruner nothing (None): the study hears the curve from the run's history.csv
        when it is told (`_tell`), and the worker never opens tune.db."""
        s = self.tr.search
        if s.pruner == "none":
            return None
        return studies.TrialWatch(studies.storage_url(self.tr.exp_dir), state.arm.label, trial._trial_id, s.pruner,
                                  self.warmups[state.arm.index], f"val_{self.tr.select}", cfg.train.epochs,
                                  s.plateau, self.tr.select_goal)

    def _reported(self, trial) -> set[int]:
        """The epochs the trial's worker reported to the study (none without a pruner)."""
        if self.tr.search.pruner == "none":
            return set()
        return set(self.st.get_trial(trial._trial_id).intermediate_values)

    def _baseline(self, cfg) -> float | None:
        """The trial's task's trivial baseline on the selection metric (the plateau guard's
        reference; a searched task key can change it, so it is the trial's own)."""
        key = cfg.task.model_dump_json()
        if key not in self.baselines:
            base = build_task(cfg.task).baseline.get(self.tr.select)
            self.baselines[key] = None if base is None else float(base)
        return self.baselines[key]

    def finished(self, run, result) -> None:
        summary = store.read_summary(self.tr.exp_dir / run.run_id)
        for state, trial in self.inflight.pop(run.run_id):
            self._tell(state, trial, summary)

    def skipped(self, run, why) -> None:
        summary = store.read_summary(self.tr.exp_dir / run.run_id)
        for state, trial in self.inflight.pop(run.run_id):
            if summary is not None:
                self._tell(state, trial, summary)
            else:  # another process holds it: retry the same parameters later
                self._interrupt(state, trial)

    def _interrupt(self, state, trial) -> None:
        from optuna.trial import TrialState

        self.st.set_trial_user_attr(trial._trial_id, studies.STATE, "interrupted")
        self.studies[state.arm.label].tell(trial, state=TrialState.FAIL)
        self.studies[state.arm.label].enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})

    def _tell(self, state: ArmState, trial, summary: dict) -> None:
        """Record how the trial's run ended in its study (intermediate values first, so the
        pruner sees a reused run's curve too)."""
        from optuna.trial import TrialState

        study = self.studies[state.arm.label]
        status = summary["status"]
        history = _history(self.tr.exp_dir / summary["run_id"], f"val_{self.tr.select}")
        reported = self._reported(trial)
        for epoch, value in history:
            if epoch not in reported:
                trial.report(value, epoch)
        value = (summary.get("val") or {}).get(self.tr.select)
        self.st.set_trial_user_attr(trial._trial_id, "epochs", (summary.get("timing") or {}).get("epochs"))
        ok = status == "ok" and value is not None and math.isfinite(value)
        self.st.set_trial_user_attr(trial._trial_id, studies.STATE, status if status != "ok" or ok else "failed")
        try:
            if ok:
                study.tell(trial, value)
            elif status == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, state=TrialState.FAIL)
        except RuntimeError:  # the grid sampler calls study.stop() once its grid is used up
            pass
        state.done += 1
        now = time.monotonic()
        if now - self.written >= RECORDS_EVERY_S:  # (and at the end of the trials: run)
            self.written = now
            write_records(self.tr, self.studies)


def _history(run_dir: Path, column: str) -> list[tuple[int, float]]:
    from grucli.store.reader import read_history

    try:  # the values the run saw, to the last bit
        hist = read_history(run_dir, exact=True)
    except (OSError, ValueError):
        return []
    if column not in hist:
        return []
    return [(int(e), float(v)) for e, v in zip(hist["epoch"], hist[column]) if v == v]


# --------------------------------------------------------------------------- records
def best_trial(study) -> dict | None:
    trials = [t for t in study.get_trials(deepcopy=False) if studies.grucli_state(t) == "ok"]
    if not trials:
        return None
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    t = min(trials, key=lambda t: (sign * t.value, t.number))
    return {"trial": t.number, "value": t.value, "params": dict(t.params), "run_id": t.user_attrs.get("run_id")}


def write_records(tr: TuneRun, found: dict) -> None:
    """trials.csv (one row per trial of every arm, pandas-readable) and tune.json (the
    arms, the budget, each arm's best trial and final runs), written atomically."""
    import pandas as pd

    rows = []
    for state in tr.arms:
        study = found.get(state.arm.label)
        if study is None:
            continue
        for t in study.get_trials(deepcopy=False):
            start, end = t.datetime_start, t.datetime_complete
            rows.append({"arm": state.arm.label, "trial": t.number, "state": studies.grucli_state(t),
                         "value": t.value, "epochs": t.user_attrs.get("epochs"), "run_id": t.user_attrs.get("run_id"),
                         "retry_of": t.user_attrs.get("retry_of"),
                         "duration_s": (end - start).total_seconds() if start and end else None,
                         **{f"param.{k}": v for k, v in t.params.items()}})
        state.best = best_trial(study)
        state.pruned_on_plateau = pruning.pruned_on_plateau(study.get_trials(deepcopy=False), tr.select_goal or "min")
    store.atomic_write_text(tr.exp_dir / TRIALS, pd.DataFrame(rows).to_csv(index=False))
    store.atomic_write_text(tr.exp_dir / MANIFEST, json.dumps(manifest(tr), indent=2, default=str))


def manifest(tr: TuneRun) -> dict:
    s = tr.search
    cfg0 = tr.arms[0].arm.config({}, s.seed) if tr.arms else None
    return {
        "schema": SCHEMA, "name": tr.experiment.name, "source": tr.experiment.source, "metric": tr.metric,
        "goal": tr.goal, "selected_on": tr.select, "select_goal": tr.select_goal,
        "verdict": tr.experiment.verdict.model_dump(mode="json"),  # declared before the data: the margins
        "until_decided": tr.until_decided,  # final seeds added look by look
        "budget": {"trials": s.trials, "sampler": s.sampler, "pruner": s.pruner, "plateau": s.plateau,
                   "warmup_epochs": s.warmup(cfg0.train.epochs) if cfg0 else None,
                   "epochs": cfg0.train.epochs if cfg0 else None, "max_steps": cfg0.train.max_steps if cfg0 else None,
                   "early_stopping": cfg0.train.early_stopping if cfg0 else None, "seed": s.seed,
                   "final_seeds": s.final_seed_list()},
        "space": {k: {"kind": d.kind, "low": d.low, "high": d.high, "choices": list(d.choices), "text": d.describe()}
                  for k, d in s.space.items()},
        "arms": [{"label": a.arm.label, "point": a.arm.point, "trials_done": a.done, "interrupted": a.interrupted,
                  "pruned_on_plateau": a.pruned_on_plateau, "best": a.best, "final_runs": a.finals} for a in tr.arms],
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- the runner
def open_tune(path, overrides=(), results: str | Path = "results") -> tuple[TuneRun, list[Arm]]:
    """Load and check a tuned experiment and read what its tune.db holds (nothing written)."""
    exp = load_experiment(path, list(overrides))
    arms = studies.arms_of(exp)
    search = exp.search
    size = search.grid_size()
    if size is not None and size < search.trials:
        raise ConfigError(f"{exp.source}: search.trials: {search.trials} trials per arm but the grid sampler's "
                          f"space has {size} points; give at most {size}")
    tr = TuneRun(exp, store.experiment_dir(Path(results), exp.name), [ArmState(a) for a in arms])
    if (tr.exp_dir / studies.DB).is_file():
        try:
            _read_studies(tr)
        except Exception as e:  # e.g. SQLite cannot open the write-ahead log a killed study left, in a
            fault = studies.storage_fault(e, tr.exp_dir)  # read-only folder: one line
            if fault is None:
                raise
            raise fault from None
    manifest_path = tr.exp_dir / MANIFEST
    if manifest_path.is_file():
        try:
            data = json.loads(manifest_path.read_text())
            finals = {a["label"]: a.get("final_runs") or [] for a in data.get("arms", [])}
            for state in tr.arms:
                state.finals = finals.get(state.arm.label, [])
            tr.until_decided = bool(data.get("until_decided"))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return tr, arms


def _read_studies(tr: TuneRun) -> None:
    """Each arm's trials done and best trial so far, from tune.db."""
    st = studies.storage(tr.exp_dir)
    for state in tr.arms:
        study = studies.open_study(st, state.arm, tr.search, "min", tr.experiment.source, create=False)
        if study is not None:
            state.done = len(studies.counted(study))
            state.best = best_trial(study)
    st.engine.dispose()  # nothing of it left open (the driver folds tune.db's log back at its end)


def run(path, overrides=(), *, results: str | Path = "results", executor: str = "inline", jobs: int | None = None,
        threads: int | None = None, address: str | None = None, dry_run: bool = False,
        reporter=None, pack: int | None = None, until_decided: bool = False) -> TuneRun:
    """Tune every arm of the experiment at `path` to `search.trials` counted trials, then
    train each arm's best configuration with the final seeds. Resumes whatever is done.
    `pack`: trials (and final runs) of one shape trained together per worker (1: each
    alone; None: chosen, train.packing.size); a pack of K asks its study for K trials
    before it hears how any of them ended, as K parallel workers would. `until_decided`: the
    final seeds come in the looks of the experiment's verdict section, and stop at the first
    look where every pair of arms is decided (grucli.verdicts, Pocock's per-look level)."""
    rep = reporter or Reporter()
    tr, arms = open_tune(path, overrides, results)
    tr.until_decided = until_decided or tr.until_decided
    search = tr.search
    if dry_run:
        rep.planned(tr)
        return tr
    first = [Run(i, a.config({}, search.seed), a.point, "") for i, a in enumerate(arms)]
    rep.stage("preparing data")
    tr.notes = prepare(first, tr.experiment.source, rep.stage)  # bad data stop here, before anything is written
    check_margin(tr.experiment, first)
    data = build_task(first[0].config.task)
    tr.metric, tr.goal = data.metric, data.goal
    tr.select, tr.select_goal = data.selection  # trials are told, pruned and chosen on validation
    warmups = {a.index: search.warmup(first[a.index].config.train.epochs) for a in arms}
    lock_dir = tr.exp_dir / execute.LOCK_DIR
    lock = FileLock(str(lock_dir / "tune.lock"))
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        raise GrucliError(f"{tr.exp_dir}: another grucli tune is running on this folder (it holds "
                          f"{lock_dir / 'tune.lock'}); wait for it, or stop it and run this again") from None
    except OSError as e:  # a read-only or full results folder: one line before anything is written
        raise store.StoreError(Path(e.filename) if e.filename else lock_dir, e) from None
    try:
        _tune(tr, warmups, rep, pack, executor=executor, jobs=jobs, threads=threads, address=address)
    except Exception as e:  # tune.db on a full disk, in a read-only or deleted folder: one line
        fault = e if isinstance(e, store.StoreError) else studies.storage_fault(e, tr.exp_dir)
        if fault is None:
            raise
        fault.hint = fault.hint or ("finished trials are kept (tune.db and their run folders): run the same "
                                    "command again to resume")
        raise fault from None
    finally:
        lock.release()
    return tr


def _tune(tr: TuneRun, warmups: dict[int, int], rep, pack, *, executor: str, jobs, threads, address) -> None:
    """The study under the tune lock, its commits in SQLite's write-ahead log until it ends
    (studies.fast_commits; studies.settle leaves tune.db one ordinary file again) unless its
    workers may run on other machines."""
    wal = not (executor == "ray" and address)
    st = studies.storage(tr.exp_dir, wal=wal)
    if not wal:  # a log a killed study left is folded back before workers elsewhere open the file
        studies.settle(tr.exp_dir, st)
    try:
        _study(tr, st, warmups, rep, pack, executor=executor, jobs=jobs, threads=threads, address=address)
    finally:
        studies.settle(tr.exp_dir, st)


def _study(tr: TuneRun, st, warmups: dict[int, int], rep, pack, *, executor: str, jobs, threads, address) -> None:
    """Open each arm's study, the trials, the final runs."""
    search = tr.search
    found = {}
    for state in tr.arms:
        found[state.arm.label] = study = studies.open_study(st, state.arm, search, tr.select_goal,
                                                            tr.experiment.source)
        state.interrupted = studies.recover(st, study)
        state.done = len(studies.counted(study))
    store.write_experiment(tr.exp_dir, tr.experiment, until_decided=tr.until_decided)
    write_records(tr, found)
    rep.planned(tr)
    jobs = jobs or runtime.usable_cores()
    options = dict(executor=executor, jobs=jobs, threads=threads, address=address, reporter=rep)
    if tr.to_run:
        rep.phase(f"trials: {tr.to_run} to run (validation metrics only)", split="val")
        rep.grid_started([None] * tr.to_run)
        k = packing.size(pack, trial_shapes(tr), jobs)
        tr.trial_outcome = execute.drive(_Trials(tr, st, found, warmups), tr.exp_dir, tr.experiment.name,
                                         pack=k, **options)
    write_records(tr, found)
    seeds = search.final_seed_list()
    looks = [len(seeds)]
    if tr.until_decided:
        looks = list(tr.experiment.verdict.looks)
        seeds = (seeds + [max(seeds) + 1 + i for i in range(max(0, looks[-1] - len(seeds)))])[:looks[-1]]
    for k, n in enumerate(looks, 1):
        finals = final_runs(tr, seeds[:n])
        todo = [r for r in finals if store.read_summary(tr.exp_dir / r.run_id) is None]
        if todo:
            rep.phase(f"final runs: each arm's best configuration on {n} fresh seeds ({len(todo)} to run"
                      + (f"; look {k} of {len(looks)}, until decided)" if tr.until_decided else ")"))
            rep.grid_started(todo)
            tr.final_outcome = execute.run_grid(todo, tr.exp_dir, tr.experiment.name, pack=pack, **options)
        write_records(tr, found)
        if tr.until_decided and _decided(tr):
            break


def trial_shapes(tr: TuneRun) -> list:
    """Stand-ins for the trials still to run (each arm's config before its searched values),
    to size packs by: a search over packable keys (lr, weight decay, clip, dropout) keeps
    an arm's trials one shape."""
    from types import SimpleNamespace

    return [SimpleNamespace(config=s.arm.config({}, tr.search.seed))
            for s in tr.arms for _ in range(max(0, tr.search.trials - s.done))]


def _decided(tr: TuneRun) -> bool:
    """Whether every pair of arms is decided on the final runs so far (grucli.verdicts)."""
    t = analysis.load(tr.exp_dir)
    view = analysis.view_of(t)
    return bool(len(view.runs)) and verdicts.judge(view, view.runs[view.runs["state"] == "ok"]).decided


def final_runs(tr: TuneRun, seeds: list[int] | None = None) -> list[Run]:
    """Each arm's best completed trial, trained again with every final seed (ordinary runs,
    never the trials' seed: the best trial's own draw is not counted twice); `seeds`: the
    final seeds of the looks so far (--until-decided)."""
    runs = []
    for state in tr.arms:
        state.finals = []
        if state.best is None:
            continue
        for seed in (tr.search.final_seed_list() if seeds is None else seeds):
            cfg = state.arm.config(state.best["params"], seed)
            runs.append(Run(len(runs) + 1, cfg, {**state.arm.point, **state.best["params"]}, run_id(cfg)))
            state.finals.append(runs[-1].run_id)
    return runs
