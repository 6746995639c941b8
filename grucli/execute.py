"""Run many: decide what still has to run, train it, store it.

Three executors share one driver loop: `inline` (this process), `local` (a process pool,
one torch thread per worker by default) and `ray` (each run a Ray task, on a local or an
existing cluster). Whatever the executor, the driver writes every result into the same
results store, so nothing downstream can tell which one produced it.

Safety: before a run starts, the driver takes a per-run file lock (a real OS lock that dies
with its process) and re-checks the run's state, so two drivers on one results folder never
train the same run twice. Results are written atomically with the summary last, so a
process killed at any point leaves either a finished run or a partial one that is redone.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue as queue_mod
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from filelock import FileLock, Timeout

from grucli import runtime, store
from grucli.errors import DataError, GrucliError
from grucli.grid import Run
from grucli.train import Callback, RunResult, train_run

EXECUTORS = ("inline", "local", "ray")
LOCK_DIR = ".locks"


@dataclass
class Plan:
    """What a grid invocation will do: every run with its state, and those to train."""

    runs: list[Run]
    states: dict[str, str]  # run_id -> done | failed | diverged | partial | todo
    todo: list[Run]


def plan(runs: list[Run], exp_dir: Path, retry_failed: bool = False) -> Plan:
    states = {r.run_id: store.run_state(Path(exp_dir) / r.run_id) for r in runs}
    redo = _redo_states(retry_failed)
    return Plan(runs, states, [r for r in runs if states[r.run_id] in redo])


def _redo_states(retry_failed: bool) -> set[str]:
    return {"todo", "partial"} | ({"failed", "diverged"} if retry_failed else set())


def prepare(runs: Iterable[Run], source: str | None = None) -> None:
    """Before anything is written: build the data of every distinct task config once (a
    missing or malformed data file stops the command with a GrucliError) and resolve each
    cell's implementation (model.impl=auto compiles the fused kernels on first use on a
    machine, so workers later only load them). A data error names `source` (the experiment
    file) and the task key it comes from."""
    from grucli import cells
    from grucli.tasks import build_task

    runs = list(runs)
    for task in {r.config.task.model_dump_json(): r.config.task for r in runs}.values():
        try:
            build_task(task)
        except DataError as e:
            raise DataError(f"{source + ': ' if source else ''}task.{_data_key(task, e)}: {e}", e.key) from None
    for cell, impl in {(r.config.model.cell, r.config.model.impl) for r in runs}:
        cells.resolve_impl(cells.get(cell), impl)


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


class _ProgressCallback(Callback):
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


# --------------------------------------------------------------------------- executors
class _Inline:
    """Train in this process, one run at a time."""

    slots = 1

    def __init__(self, threads: int | None, reporter: Reporter):
        self.threads, self.reporter, self.pending = threads, reporter, []

    def submit(self, run: Run) -> None:
        self.pending.append(run)

    def wait(self) -> list[tuple[Run, RunResult]]:
        run = self.pending.pop(0)
        cb = _ProgressCallback(lambda s, t, i: self.reporter.run_progress(run, s, t, i), every_s=0.1)
        return [(run, train_run(run.config, cb, threads=self.threads))]

    def close(self, abort: bool = False) -> None: ...


_worker_queue = None


def _start_fork_server() -> None:
    """Start the fork server importing the same grucli as this process. Python 3.11 starts
    it with `python -c`, whose sys.path begins with the working directory, and ignores the
    path it is handed: run from another checkout, the workers would train with that
    checkout's code while this driver and the records said otherwise."""
    import grucli
    from multiprocessing import forkserver

    root = str(Path(grucli.__file__).resolve().parent.parent)
    saved = {k: os.environ.get(k) for k in ("PYTHONSAFEPATH", "PYTHONPATH")}
    os.environ["PYTHONSAFEPATH"] = "1"  # no working directory on sys.path
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [saved["PYTHONPATH"]])])
    try:
        forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker(q) -> None:
    global _worker_queue
    _worker_queue = q


def _worker_train(run: Run, threads: int) -> RunResult:
    def send(step, total, info):
        try:
            _worker_queue.put_nowait((run.run_id, step, total, info))
        except Exception:  # progress is best-effort
            pass

    return train_run(run.config, _ProgressCallback(send), threads=threads)


class _Pool:
    """A pool of worker processes, one run per worker at a time (the malloc environment is
    set before they start; runtime.configure also applies it in-process)."""

    def __init__(self, jobs: int, threads: int | None, reporter: Reporter):
        self.slots, self.threads, self.reporter = jobs, threads, reporter
        # forkserver: one clean process imports torch and grucli once, and each worker is a
        # fork of it (no second import; never a fork of this multi-threaded driver)
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["grucli.train", "grucli.execute"])
        self.queue = self.ctx.Queue()
        os.environ.update(runtime.MALLOC_ENV)  # inherited by the fork server and its workers
        _start_fork_server()
        self.pool = self._new_pool()
        self.inflight: dict[cf.Future, Run] = {}
        self.by_id: dict[str, Run] = {}

    def _new_pool(self):
        return cf.ProcessPoolExecutor(self.slots, mp_context=self.ctx, initializer=_init_worker,
                                      initargs=(self.queue,))

    def submit(self, run: Run) -> None:
        self.inflight[self.pool.submit(_worker_train, run, self.threads)] = run
        self.by_id[run.run_id] = run

    def _drain(self) -> None:
        while True:
            try:
                run_id, step, total, info = self.queue.get_nowait()
            except (queue_mod.Empty, OSError, ValueError):
                return
            if run_id in self.by_id:
                self.reporter.run_progress(self.by_id[run_id], step, total, info)

    def wait(self) -> list[tuple[Run, RunResult]]:
        while True:
            done, _ = cf.wait(list(self.inflight), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            self._drain()
            if done:
                break
        out, broken = [], False
        for fut in done:
            run = self.inflight.pop(fut)
            self.by_id.pop(run.run_id, None)
            try:
                out.append((run, fut.result()))
            except cf.process.BrokenProcessPool as e:
                broken = True
                out.append((run, _crashed(f"worker process died while this run was in flight ({e})")))
        if broken:  # every in-flight future of a broken pool fails: record them, start afresh
            for fut, run in list(self.inflight.items()):
                out.append((run, _crashed("worker process died while this run was in flight")))
            self.inflight.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
        return out

    def close(self, abort: bool = False) -> None:
        if abort:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not abort, cancel_futures=True)


def _ray_train(run: Run, threads: int) -> RunResult:
    return train_run(run.config, None, threads=threads)


class _Ray:
    """Each run a Ray task (num_cpus=1); results come back to this driver, which stores them."""

    def __init__(self, jobs: int, threads: int | None, address: str | None, reporter: Reporter):
        try:
            import ray
        except ImportError:
            raise GrucliError('the ray executor needs Ray: pip install -e ".[ray]"') from None
        self.ray, self.threads = ray, threads
        if not ray.is_initialized():
            env = {"env_vars": dict(runtime.MALLOC_ENV)}
            try:
                if address:
                    ray.init(address=address, runtime_env=env, log_to_driver=False, include_dashboard=False)
                else:
                    ray.init(num_cpus=jobs, runtime_env=env, log_to_driver=False, include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise GrucliError(f"--address {address}: cannot connect to a Ray cluster: {e}".splitlines()[0]) from None
        self.slots = max(1, int(ray.cluster_resources().get("CPU", jobs))) if address else jobs
        self.remote = ray.remote(num_cpus=1, max_retries=0)(_ray_train)
        self.inflight: dict = {}

    def submit(self, run: Run) -> None:
        self.inflight[self.remote.remote(run, self.threads)] = run

    def wait(self) -> list[tuple[Run, RunResult]]:
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1)
        out = []
        for ref in ready:
            run = self.inflight.pop(ref)
            try:
                out.append((run, self.ray.get(ref)))
            except GrucliError:
                raise
            except Exception as e:  # task or worker failure: recorded, the grid goes on
                cause = getattr(e, "cause", None)
                if isinstance(cause, GrucliError):
                    raise cause from None
                out.append((run, _crashed(f"ray task failed: {type(e).__name__}: {e}".splitlines()[0])))
        return out

    def close(self, abort: bool = False) -> None:
        if abort:
            for ref in self.inflight:
                self.ray.cancel(ref, force=True)


def _crashed(message: str) -> RunResult:
    return RunResult(status="failed", error=message)


# --------------------------------------------------------------------------- driver
def run_grid(todo: Iterable[Run], exp_dir: Path, experiment: str, *, executor: str = "local",
             jobs: int | None = None, threads: int | None = None, address: str | None = None,
             retry_failed: bool = False, reporter: Reporter | None = None) -> Outcome:
    """Train every run in `todo` (longest first) and store each as it finishes. Runs that
    another driver holds or has finished meanwhile are skipped."""
    rep = reporter or Reporter()
    exp_dir = Path(exp_dir)
    jobs = jobs or runtime.usable_cores()
    if executor not in EXECUTORS:
        raise GrucliError(f"unknown executor '{executor}'; valid: {', '.join(EXECUTORS)}")
    if executor == "ray":
        ex = _Ray(jobs, threads, address, rep)
    elif executor == "local" and jobs > 1:
        ex = _Pool(jobs, threads, rep)
    else:
        ex = _Inline(threads, rep)
    queue = sorted(todo, key=estimated_cost, reverse=True)
    locks: dict[str, FileLock] = {}
    outcome = Outcome()
    redo = _redo_states(retry_failed)
    lock_dir = exp_dir / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    store.remove_stale_temps(exp_dir)  # left by a writer that was killed
    try:
        while queue or locks:
            while queue and len(locks) < ex.slots:
                run = queue.pop(0)
                lock = FileLock(str(lock_dir / f"{run.run_id}.lock"))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    outcome.skipped += 1
                    rep.run_skipped(run, "being trained by another process")
                    continue
                if store.run_state(exp_dir / run.run_id) not in redo:
                    lock.release()
                    outcome.skipped += 1
                    rep.run_skipped(run, "finished by another process")
                    continue
                locks[run.run_id] = lock
                store.clear_partial(exp_dir / run.run_id)
                rep.run_started(run)
                ex.submit(run)
            if not locks:
                break
            for run, result in ex.wait():
                try:
                    store.write_run(exp_dir, run, result, experiment)
                finally:
                    locks.pop(run.run_id).release()
                outcome.finished[result.status] = outcome.finished.get(result.status, 0) + 1
                store.write_runs_table(exp_dir)
                rep.run_finished(run, result)
    except BaseException:
        ex.close(abort=True)
        raise
    finally:
        for lock in locks.values():
            lock.release()
    ex.close()
    return outcome
