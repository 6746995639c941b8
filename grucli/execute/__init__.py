"""Run many: decide what still has to run, train it, store it.

Three executors share one driver loop (run_grid): `inline` (this process) and `local` (a
process pool, one torch thread per worker by default) in local.py, `ray` (each run a Ray
task, on a local or an existing cluster) in cluster.py. Whatever the executor, the driver
writes every result into the same results store, so nothing downstream can tell which one
produced it.

Safety: before a run starts, the driver takes a per-run file lock (a real OS lock that dies
with its process) and re-checks the run's state, so two drivers on one results folder never
train the same run twice. Results are written atomically with the summary last, so a
process killed at any point leaves either a finished run or a partial one that is redone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from filelock import FileLock, Timeout

from grucli import runtime, store
from grucli.store import runs as runs_table
from grucli.execute import pack as packing
from grucli.errors import DataError, GrucliError
from grucli.grid import Run
from grucli.train import Callback, RunResult

EXECUTORS = ("inline", "local", "ray")
LOCK_DIR = ".locks"


@dataclass
class Plan:
    """What a grid invocation will do: every run with its state, and those to train."""

    runs: list[Run]
    states: dict[str, str]  # run_id -> done | failed | diverged | partial | todo
    todo: list[Run]


def plan(runs: list[Run], exp_dir: Path, retry_failed: bool = False) -> Plan:
    try:  # one listing of the folder: a run without a folder is to do, no need to look for its summary
        present = {entry.name for entry in os.scandir(exp_dir)}
    except (FileNotFoundError, NotADirectoryError):
        present = set()
    states = {r.run_id: store.run_state(Path(exp_dir) / r.run_id) if r.run_id in present else "todo" for r in runs}
    redo = _redo_states(retry_failed)
    return Plan(runs, states, [r for r in runs if states[r.run_id] in redo])


def _redo_states(retry_failed: bool) -> set[str]:
    return {"todo", "partial"} | ({"failed", "diverged"} if retry_failed else set())


def prepare(runs: Iterable[Run], source: str | None = None, on_stage=None) -> list[str]:
    """Before anything is written: build the data of every distinct task config once (a
    missing or malformed data file stops the command with a GrucliError) and resolve each
    cell's implementation (model.impl=auto compiles the fused kernels on first use on a
    machine, so workers later only load them; `on_stage(text)` hears of it first). A data
    error names `source` (the experiment file) and the task key it comes from. Returns
    notes for the user: what the data preparation did that they should know (the task's
    `info['notes']`: rows left out, gaps filled, small splits), runs whose `impl: auto` cannot
    use grucli's kernels, and why."""
    from grucli import cells
    from grucli.cells.fused import build
    from grucli.tasks import build_task

    from grucli.grid import describe
    from grucli.train import model_size

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


def estimated_cost(run: Run) -> float:
    """A rough relative cost (steps x sequence length x gate blocks x recurrent width^2)
    used to start long runs first. Only ordering depends on it."""
    cfg = run.config
    t = cfg.task
    length = getattr(t, "seq_len", None) or getattr(t, "window", None) or 64
    n = getattr(t, "n_train", None) or 1000
    h = cfg.model.hidden_size or (cfg.model.param_budget or 64**2 * 4) ** 0.5
    steps = cfg.train.max_steps or cfg.train.epochs * n / cfg.train.batch_size
    from grucli import cells

    recurrent = cells.get(cfg.model.cell).matmul_macs(0, h)  # G*H^2 for a cell with G gate blocks
    return steps * length * recurrent * cfg.model.num_layers * (2 if cfg.model.bidirectional else 1)


def _identity(folder: Path) -> tuple[int, int]:
    info = Path(folder).stat()
    return info.st_dev, info.st_ino


class Reporter:
    """What the driver tells its caller. Override what you need."""

    def run_started(self, run: Run) -> None: ...

    def run_progress(self, run: Run, step: int, total: int | None, info: str) -> None: ...

    def run_finished(self, run: Run, result: RunResult) -> None: ...

    def run_skipped(self, run: Run, why: str) -> None: ...


@dataclass
class Outcome:
    finished: dict[str, int] = field(default_factory=dict)  # status -> count
    skipped: int = 0


class ProgressCallback(Callback):
    """Turns training callbacks into `send(step, total, info)` calls, throttled."""

    def __init__(self, send, every_s: float = 0.5):
        self.send, self.every, self.total, self.last, self.info = send, every_s, None, 0.0, ""

    def on_start(self, total_steps: int) -> None:
        self.total = total_steps
        self.send(0, total_steps, "starting")

    def on_step(self, step: int, loss: float) -> None:
        now = time.monotonic()
        if now - self.last >= self.every or step == self.total:
            self.last = now
            self.send(step, self.total, f"loss {loss:.4g}{self.info}")

    def on_epoch(self, row: dict) -> None:
        vals = [f"{k.removeprefix('val_')} {v:.4g}" for k, v in row.items() if k.startswith("val_")][:1]
        self.info = f" | epoch {row['epoch']} " + " ".join(vals)


def crashed(message: str) -> RunResult:
    return RunResult(status="failed", error=message)


def train(runs: list[Run], callbacks: list[Callback | None], threads: int | None, on_result=None) -> list[RunResult]:
    """Train one pack of runs in this process (what every executor's worker calls; a pack
    of one is a run alone): each run's watcher, if any (a tuner's pruner), wraps its
    progress callback; `on_result(run, result)` hears of each run as it finishes."""
    from grucli.train import train_pack

    callbacks = [r.watch.callback(cb) if r.watch is not None else cb for r, cb in zip(runs, callbacks)]
    hear = None if on_result is None else (lambda i, result: on_result(runs[i], result))
    return train_pack([r.config for r in runs], callbacks, threads=threads, on_result=hear)


# --------------------------------------------------------------------------- driver
class Source:
    """Where the driver takes runs from: `next()` gives the next run to start (None: none
    now; with nothing in flight that ends the drive), `finished(run, result)` hears of each
    stored result, `skipped(run, why)` of runs another process holds or has finished."""

    def next(self) -> Run | None: ...

    def finished(self, run: Run, result: RunResult) -> None: ...

    def skipped(self, run: Run, why: str) -> None: ...


class _Queue(Source):
    """A fixed list of runs, longest first."""

    def __init__(self, todo: Iterable[Run]):
        self.queue = sorted(todo, key=estimated_cost, reverse=True)[::-1]  # next run last: pop() is O(1)

    def next(self) -> Run | None:
        return self.queue.pop() if self.queue else None


def run_grid(todo: Iterable[Run], exp_dir: Path, experiment: str, *, pack: int | None = 1, jobs: int | None = None,
             **options) -> Outcome:
    """Train every run in `todo` (longest first) and store each as it finishes. Runs that
    another driver holds or has finished meanwhile are skipped. `pack`: runs per pack (1:
    each alone; None: chosen, execute.pack.size). Options as `drive`."""
    todo = list(todo)
    jobs = jobs or runtime.usable_cores()
    return drive(_Queue(todo), exp_dir, experiment, pack=packing.size(pack, todo, jobs), jobs=jobs, **options)


def _executor(executor: str, jobs: int, threads: int | None, address: str | None, rep: Reporter):
    if executor not in EXECUTORS:
        raise GrucliError(f"unknown executor '{executor}'; valid: {', '.join(EXECUTORS)}")
    if executor == "ray":
        from grucli.execute.cluster import Ray

        return Ray(jobs, threads, address, rep)
    if executor == "local" and jobs > 1:
        from grucli.execute.local import Pool

        return Pool(jobs, threads, rep)
    from grucli.execute.local import Inline

    return Inline(threads, rep)


def drive(source: Source, exp_dir: Path, experiment: str, *, executor: str = "local", jobs: int | None = None,
          threads: int | None = None, address: str | None = None, retry_failed: bool = False,
          reporter: Reporter | None = None, pack: int = 1) -> Outcome:
    """Start packs of runs from `source` while workers are free (up to `pack` runs of one
    shape each, execute.pack; 1 = every run alone), store each result as it comes
    (atomically, under the run's OS lock), until the source has nothing more and nothing
    is in flight. executor: inline | local (`jobs` processes) | ray."""
    rep = reporter or Reporter()
    exp_dir = Path(exp_dir)
    if pack < 1:
        raise GrucliError(f"--pack {pack}: a pack holds at least 1 run")
    ex = _executor(executor, jobs or runtime.usable_cores(), threads, address, rep)
    locks: dict[str, FileLock] = {}
    outcome = Outcome()
    redo = _redo_states(retry_failed)
    lock_dir = exp_dir / LOCK_DIR
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        folder = _identity(exp_dir)
    except OSError as e:
        raise store.StoreError(lock_dir, e) from None
    store.remove_stale_temps(exp_dir)  # left by a writer that was killed
    table = runs_table.RunsTable(exp_dir)  # runs.csv: a row per stored run, written every few seconds and at the end
    waiting: list[Run] = []  # taken from the source, not started yet: packs are cut from here

    def still_there() -> None:
        """Stop when the results folder was deleted (or replaced) under the running grid:
        writing on would quietly re-make a folder holding only the runs still to come."""
        try:
            same = _identity(exp_dir) == folder
        except OSError:
            same = False
        if not same:
            raise store.StoreError(exp_dir, "the results folder was deleted while the grid ran")

    def deliver(run: Run, result: RunResult) -> None:
        if run.run_id not in locks:  # delivered before (a pool worker sends each result as it finishes)
            return
        try:
            still_there()
            store.write_run(exp_dir, run, result, experiment)
        finally:
            locks.pop(run.run_id).release()
        outcome.finished[result.status] = outcome.finished.get(result.status, 0) + 1
        table.add(run.run_id)
        source.finished(run, result)
        rep.run_finished(run, result)

    def claim(run: Run) -> bool:
        """Lock the run for this driver, unless another process holds or has finished it."""
        still_there()  # before the lock: taking it would re-make a deleted folder
        lock = FileLock(str(lock_dir / f"{run.run_id}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:  # (an OSError too: caught first)
            why = "being trained by another process"
        except OSError as e:
            raise store.StoreError(lock.lock_file, e) from None
        else:
            if store.run_state(exp_dir / run.run_id) in redo:
                locks[run.run_id] = lock
                return True
            lock.release()
            why = "finished by another process"
        outcome.skipped += 1
        source.skipped(run, why)
        rep.run_skipped(run, why)
        return False

    ex.deliver = deliver
    try:
        while True:
            while ex.busy() < ex.slots:
                while len(waiting) < pack * ex.slots and (run := source.next()) is not None:
                    waiting.append(run)
                if not waiting:
                    break
                runs = [run for run in packing.take(waiting, pack) if claim(run)]
                for run in runs:
                    store.clear_partial(exp_dir / run.run_id)
                    rep.run_started(run)
                if runs:
                    ex.submit(runs)
            if not locks:
                break
            ex.wait()
    except store.StoreError as e:  # a full disk, a read-only or deleted folder: one line, what is stored is kept
        ex.close(abort=True)
        if e.errno is not None:
            _flush_quietly(table)
        e.hint = e.hint or ("run the same command again to start afresh" if e.errno is None else
                            "the runs stored before it are kept: run the same command again to train the rest")
        raise
    except BaseException:
        ex.close(abort=True)
        _flush_quietly(table)
        raise
    finally:
        for lock in locks.values():
            lock.release()
    ex.close()
    table.flush()
    return outcome


def _flush_quietly(table: runs_table.RunsTable) -> None:
    """runs.csv on the way out of a failing grid: worth a try, never worth hiding the cause
    (the table is rebuilt from the run folders by the next grid or report anyway)."""
    try:
        table.flush()
    except Exception:  # noqa: BLE001 -- the error being raised is the one to show
        pass
