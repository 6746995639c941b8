"""Executors on this machine: `Inline` (this process, one pack at a time) and `Pool` (a
pool of worker processes, one pack per worker at a time). A pack of one is a run alone."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
from pathlib import Path

from grucli import runtime
from grucli.execute.worker import ProgressCallback, Reporter, crashed, train
from grucli.grid import Run
from grucli.train.loop import RunResult


class Inline:
    """Train in this process, one pack at a time; each result is delivered as its run ends."""

    slots = 1

    def __init__(self, threads: int | None, reporter: Reporter):
        self.threads, self.reporter, self.pending = threads, reporter, []
        self.deliver = None  # set by the driver: deliver(run, result)

    def busy(self) -> int:
        return len(self.pending)

    def submit(self, runs: list[Run]) -> None:
        self.pending.append(runs)

    def _progress(self, run: Run) -> ProgressCallback:
        return ProgressCallback(lambda s, t, i: self.reporter.run_progress(run, s, t, i), every_s=0.1)

    def wait(self) -> None:
        runs = self.pending.pop(0)
        train(runs, [self._progress(r) for r in runs], self.threads, on_result=self.deliver)  # every run, as it ends

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
    if os.environ.get("GRUCLI_PROFILE"):  # benchmarks/grid_profile.py: this worker's time budget
        from grucli import profiling

        profiling.install_if_asked()


def _worker_train(runs: list[Run], threads: int) -> list[RunResult]:
    """In a worker: train one pack, sending progress and each result as its run ends (so a
    worker killed later loses only the runs still training); returns every result too."""

    def sender(run):
        def send(step, total, info):
            try:
                _worker_queue.put_nowait(("progress", run.run_id, (step, total, info)))
            except Exception:  # progress is best-effort
                pass

        return send

    def finished(run, result):
        _worker_queue.put(("result", run.run_id, ByValue(result)))

    return [ByValue(r) for r in train(runs, [ProgressCallback(sender(r)) for r in runs], threads, on_result=finished)]


class ByValue:
    """A worker's result, sent to the driver by value: plain pickle (tensors as bytes), not
    multiprocessing's pickler, which passes torch tensors as shared-memory file descriptors.
    Those stayed open in the worker, ~2 per run: a 10,000-run grid died at ~8,000 runs with
    "Too many open files". Unpickled, it is the result itself (the same numbers, bit for bit)."""

    def __init__(self, obj):
        self.obj = obj

    def __reduce__(self):
        return pickle.loads, (pickle.dumps(self.obj, protocol=pickle.HIGHEST_PROTOCOL),)


class Pool:
    """A pool of worker processes, one run per worker at a time (the malloc environment is
    set before they start; runtime.configure also applies it in-process)."""

    def __init__(self, jobs: int, threads: int | None, reporter: Reporter):
        self.slots, self.threads, self.reporter = jobs, threads, reporter
        # forkserver: one clean process imports torch and grucli once, and each worker is a
        # fork of it (no second import; never a fork of this multi-threaded driver)
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["grucli.train.loop", "grucli.execute.local",
                                         "torch.fx.experimental.symbolic_shapes"])  # see loop._import_what_backward_imports
        self.queue = self.ctx.Queue()
        os.environ.update(runtime.MALLOC_ENV)  # inherited by the fork server and its workers
        _start_fork_server()
        self.pool = self._new_pool()
        self.inflight: dict[cf.Future, Run] = {}
        self.by_id: dict[str, Run] = {}

    def _new_pool(self):
        return cf.ProcessPoolExecutor(self.slots, mp_context=self.ctx, initializer=_init_worker,
                                      initargs=(self.queue,))

    def busy(self) -> int:
        return len(self.inflight)

    def submit(self, runs: list[Run]) -> None:
        self.inflight[self.pool.submit(_worker_train, runs, self.threads)] = runs
        self.by_id.update({r.run_id: r for r in runs})

    def _drain(self) -> None:
        while True:
            try:
                kind, run_id, body = self.queue.get_nowait()
            except (queue_mod.Empty, OSError, ValueError, EOFError):
                return
            run = self.by_id.get(run_id)
            if run is None:
                continue
            if kind == "result":
                self._deliver(run, body)
            else:
                self.reporter.run_progress(run, *body)

    def _deliver(self, run: Run, result: RunResult) -> None:
        self.by_id.pop(run.run_id, None)
        self.deliver(run, result)

    def wait(self) -> None:
        """Until a pack finishes: progress and early results as they come, then the pack's
        remaining results (a dead worker's unfinished runs are recorded failed)."""
        while True:
            done, _ = cf.wait(list(self.inflight), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            self._drain()
            if done:
                break
        broken = False
        for fut in done:
            runs = self.inflight.pop(fut)
            try:
                results = fut.result()
            except cf.process.BrokenProcessPool as e:
                broken = True
                results = [crashed(f"worker process died while this run was in flight ({e})") for _ in runs]
            for run, result in zip(runs, results):
                if run.run_id in self.by_id:
                    self._deliver(run, result)
        if broken:  # every in-flight future of a broken pool fails: record them, start afresh
            self._drain()
            for fut, runs in list(self.inflight.items()):
                for run in runs:
                    if run.run_id in self.by_id:
                        self._deliver(run, crashed("worker process died while this run was in flight"))
            self.inflight.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()

    def close(self, abort: bool = False) -> None:
        if abort:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not abort, cancel_futures=True)
