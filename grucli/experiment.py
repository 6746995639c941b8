"""The one experiment runner: `grucli train` and `grucli compare` call `run`.

    load (config.py) -> expand (grid.py) -> plan (states in the results folder)
    -> [a dry run stops here] -> prepare data and kernels -> record experiment.json
    -> train and store every run still to do (execute/) -> ExperimentRun

Everything a command shows comes back in the ExperimentRun or through the Reporter; this
module prints nothing. Bad input stops before anything is written: config errors at load
and expand, data errors and a missing device at prepare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from grucli import cells, environment, execute, runtime, store, tables, verdicts
from grucli.cells.fused import build
from grucli.config import Experiment, load_experiment
from grucli.errors import ConfigError, DataError, GrucliError
from grucli.execute import EXECUTORS, Outcome, Plan
from grucli.grid import Run, describe, expand
from grucli.model import model_size
from grucli.tasks import build_task
from grucli.metrics import scale_of
from grucli.store import reader
from grucli.store.reader import flatten


class Reporter(execute.Reporter):
    """What the runner tells its caller, in order: planned, stage (0 or more), phase (0 or
    more), grid_started, then per run (started, progress, finished or skipped). Override what
    you need."""

    def planned(self, run: "ExperimentRun") -> None: ...

    def stage(self, text: str) -> None: ...

    def phase(self, title: str, split: str = "test") -> None:
        """A new part of a command begins (tune: its trials, then its final runs): `title`
        heads it; its finished runs are shown with their `split` metrics (a study's trials
        with validation only: a tuning study must not look at test metrics)."""

    def grid_started(self, todo: list[Run]) -> None: ...


@dataclass
class ExperimentRun:
    """An experiment file against its results folder, before and after training."""

    experiment: Experiment
    runs: list[Run]  # every run of the grid, in grid order
    exp_dir: Path
    plan: Plan  # each run's state, and those still to train
    executor: str = "inline"
    outcome: Outcome | None = None  # None: nothing was trained (dry run, or nothing to do)
    other_code: str | None = None  # a note when finished runs it reuses were made by other grucli code
    notes: list[str] = field(default_factory=list)  # e.g. auto could not use grucli's kernels, and why

    @property
    def run_ids(self) -> set[str]:
        return {r.run_id for r in self.runs}

    @property
    def finished(self) -> int:
        return len(self.runs) - len(self.plan.todo)


def open_experiment(path: str | Path, overrides=(), results: str | Path = "results",
                    retry_failed: bool = False) -> ExperimentRun:
    """Load, expand and plan: what `run` would do, without writing anything."""
    exp = load_experiment(path, list(overrides))
    if exp.search is not None:
        raise GrucliError(f"{exp.source}: search: this experiment is tuned: run it with `grucli tune {exp.source}` "
                          "(train and compare run a plain grid)")
    runs = expand(exp)
    exp_dir = store.experiment_dir(Path(results), exp.name)
    plan = execute.plan(runs, exp_dir, retry_failed)
    return ExperimentRun(exp, runs, exp_dir, plan, other_code=other_code_note(plan, exp_dir))


def run(path: str | Path, overrides=(), *, results: str | Path = "results", executor: str = "inline",
        jobs: int | None = None, threads: int | None = None, address: str | None = None,
        retry_failed: bool = False, dry_run: bool = False, reporter: Reporter | None = None,
        pack: int | None = None) -> ExperimentRun:
    """Train every run of the experiment at `path` that is not finished in `results`.

    executor: inline (this process) | local (a process pool of `jobs` workers) | ray (at
    `address`, or a local cluster). `threads`: torch threads per worker. `pack`: runs of one
    shape trained together per worker (1: each alone; None: chosen, train.packing.size); the
    numbers are the same either way. Finished runs are found by run id and kept, so the
    same call resumes an interrupted grid."""
    rep = reporter or Reporter()
    _check_executor(executor, address)
    er = open_experiment(path, overrides, results, retry_failed)
    return _train(er, executor=executor, jobs=jobs, threads=threads, address=address, retry_failed=retry_failed,
                  dry_run=dry_run, rep=rep, pack=pack)


def prepare(runs: Iterable[Run], source: str | None = None, on_stage=None) -> list[str]:
    """Before anything is written: build the data of every distinct task config once (a
    missing or malformed data file stops the command with a GrucliError) and resolve each
    cell's implementation (model.impl=auto compiles the fused kernels on first use on a
    machine, so workers later only load them; `on_stage(text)` hears of it first). A data
    error names `source` (the experiment file) and the task key it comes from. Returns
    notes for the user: what the data preparation did that they should know (the task's
    `info['notes']`: rows left out, gaps filled, small splits), runs whose `impl: auto` cannot
    use grucli's kernels, and why."""
    runs = list(runs)
    notes = []
    for task in {r.config.task.model_dump_json(): r.config.task for r in runs}.values():
        try:
            data = build_task(task)
        except DataError as e:
            raise DataError(f"{source + ': ' if source else ''}task.{_data_key(task, e)}: {e}", e.key) from None
        notes += [f"note: {n}" for n in data.info.get("notes") or [] if f"note: {n}" not in notes]
    for r in {(r.config.task.model_dump_json(), r.config.model.model_dump_json()): r for r in runs}.values():
        try:
            model_size(r.config, build_task(r.config.task))
        except GrucliError as e:
            where = describe(r, ("seed",)).removesuffix(f"seed={r.config.seed}").strip()
            raise GrucliError(f"{source + ': ' if source else ''}{f'[{where}] ' if where else ''}{e}") from None
    impls = {(r.config.model.cell, r.config.model.impl) for r in runs}
    if on_stage and build.will_compile() and any(cells.get(c).fused and i in ("auto", "fused") for c, i in impls):
        on_stage("compiling grucli's CPU kernels once for this machine, about a minute")
    slower = set()
    for cell, impl in impls:
        try:
            resolved = cells.resolve_impl(cells.get(cell), impl)
        except GrucliError as e:
            raise GrucliError(f"{source + ': ' if source else ''}model.impl: {e}") from None
        if impl == "auto" and cells.get(cell).fused and resolved != "fused":
            slower.add(cell)
    if slower:
        notes.append(f"note: {', '.join(sorted(slower))} train(s) on torch's own modules, not grucli's "
                     f"faster kernels: {build.describe()}")
    return notes


def _data_key(task, error: DataError) -> str:
    """The task key a data error points at: the raiser's, else the file or data set named."""
    if error.key:
        return error.key
    for key in ("path", "dataset"):
        if getattr(task, key, None) is not None:
            return key
    return "name"


def check_margin(exp: Experiment, runs: list[Run]) -> None:
    """A declared margin must mean something on each task's metric scale (a ratio above 1
    on the log scale, an absolute difference below 1 on the bounded one): checked once the
    data say which metric a task reports, before anything is written."""
    if exp.verdict.margin is None:
        return
    seen = set()
    for r in runs:
        if r.config.task.name in seen:
            continue
        seen.add(r.config.task.name)
        metric = build_task(r.config.task).metric
        why = scale_of(metric).check_margin(exp.verdict.margin)
        if why:
            raise ConfigError(f"{exp.source}: verdict.margin {why} (task {r.config.task.name} reports {metric})")


def _check_executor(executor: str, address: str | None) -> None:
    if executor not in EXECUTORS:
        raise GrucliError(f"--executor {executor}: unknown executor; valid: {', '.join(EXECUTORS)}")
    if address and executor != "ray":
        raise GrucliError("--address is the address of a Ray cluster: use it with --executor ray")


def _train(er: ExperimentRun, *, executor: str, jobs, threads, address, retry_failed: bool, dry_run: bool,
           rep: Reporter, pack, until_decided: bool = False) -> ExperimentRun:
    """Prepare, record and train what `er` plans (every run of its grid not finished)."""
    er.executor = executor
    if dry_run or not er.plan.todo:
        rep.planned(er)
        return er
    rep.stage("preparing data")
    er.notes = prepare(er.plan.todo, er.experiment.source, rep.stage)  # bad data stop here: nothing written
    check_margin(er.experiment, er.plan.todo)
    if executor == "ray" and address:  # a missing cluster token is one line before anything is written
        from grucli.execute.cluster import token_auth

        token_auth(address)
    if executor != "ray":  # runs train on this machine: a requested cuda must be here (Ray nodes may have GPUs)
        for device in {r.config.train.device for r in er.plan.todo}:
            runtime.resolve_device(device)
    rep.planned(er)
    store.write_experiment(er.exp_dir, er.experiment, until_decided=until_decided)
    rep.grid_started(er.plan.todo)
    er.outcome = execute.run_grid(er.plan.todo, er.exp_dir, er.experiment.name, executor=executor, jobs=jobs,
                                  threads=threads, address=address, retry_failed=retry_failed, reporter=rep,
                                  pack=pack)
    return er


@dataclass
class LookResult:
    """One look of --until-decided: its seeds per cell and what was still undecided after it."""

    look: int
    seeds: int
    trained: int  # runs trained at this look
    undecided: list[str]  # "task, setting" still undecided after it


def run_until_decided(path: str | Path, overrides=(), *, results: str | Path = "results", executor: str = "local",
                      jobs: int | None = None, threads: int | None = None, address: str | None = None,
                      retry_failed: bool = False, dry_run: bool = False, reporter: Reporter | None = None,
                      pack: int | None = None, on_look=None) -> tuple[ExperimentRun, list[LookResult]]:
    """Seeds until decided: the grid at the first look's seeds per cell, then only the
    settings whose comparisons are not all decided get the next look's seeds, up to the
    last look (the experiment's `verdict.looks`, planned before the data). Each look is
    judged at Pocock's constant per-look level (grucli.verdicts). The seeds of look k are the
    first n_k of the experiment's seeds followed by max + 1, max + 2, ...; run ids do not
    depend on the plan, so an interrupted plan resumes like any grid. `on_look(LookResult)`
    is called after each look."""
    rep = reporter or Reporter()
    _check_executor(executor, address)
    exp = load_experiment(path, list(overrides))
    looks = list(exp.verdict.looks)
    base = exp.spec.seed_list()
    extra = [max(base) + 1 + i for i in range(max(0, looks[-1] - len(base)))]
    seeds = (base + extra)[:looks[-1]]
    done: list[LookResult] = []
    undecided: dict[str, set] | None = None  # task -> setting labels still undecided; None: every setting
    ids: set[str] = set()
    er = None
    for k, n in enumerate(looks, 1):
        er = open_experiment(path, [*overrides, f"seeds={seeds[:n]}"], results, retry_failed)
        ids |= er.run_ids
        if undecided is not None:
            er.runs = [r for r in er.runs if _setting_of(r, undecided)]
            er.plan = execute.plan(er.runs, er.exp_dir, retry_failed)
        _train(er, executor=executor, jobs=jobs, threads=threads, address=address, retry_failed=retry_failed,
               dry_run=dry_run, rep=rep, pack=pack, until_decided=True)
        trained = len(er.plan.todo)
        if dry_run:
            done.append(LookResult(k, n, trained, []))
            break
        col = reader.collect([er.exp_dir], histories=False)
        runs = col.runs[col.runs["run_id"].isin(ids)].dropna(axis=1, how="all") if len(col.runs) else col.runs
        undecided = {}
        for view in tables.task_views(runs, col.experiments):
            for values, _, g in view.groups(by_cell=False):
                look = verdicts.judge(view, g[g["state"] == reader.OK])
                if not look.decided:
                    undecided.setdefault(view.task, set()).add(
                        (tuple(view.settings), tuple(tables.plain(v) for v in values)))
        result = LookResult(k, n, trained, sorted(f"{t}, {tables.setting_label(list(s), list(v))}"
                                                  for t, keys in undecided.items() for s, v in keys))
        done.append(result)
        if on_look:
            on_look(result)
        if not undecided:
            break
    return er, done


def _setting_of(run: Run, undecided: dict[str, set]) -> bool:
    """Whether a run belongs to one of the undecided settings."""
    cfg = flatten({"config": run.config.model_dump(mode="json")})
    for settings, values in undecided.get(run.config.task.name, ()):
        if all(_same(cfg.get(c), v) for c, v in zip(settings, values)):
            return True
    return False


def _same(a, b) -> bool:
    if isinstance(a, float) and a.is_integer():
        a = int(a)
    if isinstance(b, float) and b != b:
        return a is None
    return a == b or str(a) == str(b)


def other_code_note(plan: Plan, exp_dir: Path) -> str | None:
    """A line when finished runs that will be reused were made by other grucli code (another
    git commit, or version without git): their numbers may differ from a fresh run's."""
    mine = environment.describe_code()
    others: dict[str, int] = {}
    todo = {r.run_id for r in plan.todo}
    for r in plan.runs:
        if r.run_id in todo:
            continue
        summary = store.read_summary(Path(exp_dir) / r.run_id) or {}
        code = environment.code_label(summary.get("env") or {})
        if code and code != mine:
            others[code] = others.get(code, 0) + 1
    if not others:
        return None
    listed = ", ".join(f"{code} ({n})" for code, n in sorted(others.items()))
    return (f"note: {sum(others.values())} finished run(s) of this grid were made by other grucli code: {listed}; "
            f"this code is {mine}. Delete a run's folder to redo it.")
