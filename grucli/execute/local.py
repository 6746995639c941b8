"""Executors on this machine: `Inline` (this process, one run at a time) and `Pool` (a
pool of worker processes, one run per worker at a time)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue as queue_mod
from pathlib import Path

from grucli import runtime
from grucli.execute import ProgressCallback, Reporter, crashed, train
from grucli.grid import Run
from grucli.train import RunResult


class Inline:
    """Train in this process, one run at a time."""

    slots = 1

    def __init__(self, threads: int | None, reporter: Reporter):
        self.threads, self.reporter, self.pending = threads, reporter, []

    def submit(self, run: Run) -> None:
        self.pending.append(run)

    def wait(self) -> list[tuple[Run, RunResult]]:
        run = self.pending.pop(0)
        cb = ProgressCallback(lambda s, t, i: self.reporter.run_progress(run, s, t, i), every_s=0.1)
        return [(run, train(run, cb, self.threads))]

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

    return train(run, ProgressCallback(send), threads)


class Pool:
    """A pool of worker processes, one run per worker at a time (the malloc environment is
    set before they start; runtime.configure also applies it in-process)."""

    def __init__(self, jobs: int, threads: int | None, reporter: Reporter):
        self.slots, self.threads, self.reporter = jobs, threads, reporter
        # forkserver: one clean process imports torch and grucli once, and each worker is a
        # fork of it (no second import; never a fork of this multi-threaded driver)
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["grucli.train", "grucli.execute.local"])
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
                out.append((run, crashed(f"worker process died while this run was in flight ({e})")))
        if broken:  # every in-flight future of a broken pool fails: record them, start afresh
            for fut, run in list(self.inflight.items()):
                out.append((run, crashed("worker process died while this run was in flight")))
            self.inflight.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
        return out

    def close(self, abort: bool = False) -> None:
        if abort:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not abort, cancel_futures=True)
