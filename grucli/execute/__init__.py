"""Run many: decide what still has to run (planner.py), train it (worker.py, on an executor),
store it (this module, the driver).

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from filelock import FileLock, Timeout

from grucli import runtime, store
from grucli.store import runs as runs_table
from grucli.train import packing
from grucli.errors import GrucliError
from grucli.execute.planner import Plan, estimated_cost, plan, redo_states  # noqa: F401 (Plan, plan: the package's API)
from grucli.execute.worker import Reporter
from grucli.grid import Run
from grucli.train.loop import RunResult

EXECUTORS = ("inline", "local", "ray")
LOCK_DIR = ".locks"


def _identity(folder: Path) -> tuple[int, int]:
    info = Path(folder).stat()
    return info.st_dev, info.st_ino


@dataclass
class Outcome:
    finished: dict[str, int] = field(default_factory=dict)  # status -> count
    skipped: int = 0


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
    each alone; None: chosen, train.packing.size). Options as `drive`."""
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
    shape each, grucli.train.packing; 1 = every run alone), store each result as it comes
    (atomically, under the run's OS lock), until the source has nothing more and nothing
    is in flight. executor: inline | local (`jobs` processes) | ray."""
    rep = reporter or Reporter()
    exp_dir = Path(exp_dir)
    if pack < 1:
        raise GrucliError(f"--pack {pack}: a pack holds at least 1 run")
    ex = _executor(executor, jobs or runtime.usable_cores(), threads, address, rep)
    locks: dict[str, FileLock] = {}
    outcome = Outcome()
    redo = redo_states(retry_failed)
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
