"""The worker's side of every executor: train one pack of runs in this process, report its
progress, and turn a crash into a failed result. local.py and cluster.py call these; the
driver (execute/__init__.py) never trains."""

from __future__ import annotations

import time

from grucli.grid import Run
from grucli.numbers import num
from grucli.train.loop import Callback, RunResult, train_pack


class Reporter:
    """What the driver tells its caller. Override what you need."""

    def run_started(self, run: Run) -> None: ...

    def run_progress(self, run: Run, step: int, total: int | None, info: str) -> None: ...

    def run_finished(self, run: Run, result: RunResult) -> None: ...

    def run_skipped(self, run: Run, why: str) -> None: ...


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
            self.send(step, self.total, f"loss {num(loss, 4)}{self.info}")

    def on_epoch(self, row: dict) -> None:
        vals = [f"{k.removeprefix('val_')} {num(v, 4)}" for k, v in row.items() if k.startswith("val_")][:1]
        self.info = f" | epoch {row['epoch']} " + " ".join(vals)


def crashed(message: str) -> RunResult:
    return RunResult(status="failed", error=message)


def train(runs: list[Run], callbacks: list[Callback | None], threads: int | None, on_result=None) -> list[RunResult]:
    """Train one pack of runs in this process (what every executor's worker calls; a pack
    of one is a run alone): each run's watcher, if any (a tuner's pruner), wraps its
    progress callback and is closed when the pack ends; `on_result(run, result)` hears of
    each run as it finishes."""
    callbacks = [r.watch.callback(cb) if r.watch is not None else cb for r, cb in zip(runs, callbacks)]
    hear = None if on_result is None else (lambda i, result: on_result(runs[i], result))
    try:
        return train_pack([r.config for r in runs], callbacks, threads=threads, on_result=hear)
    finally:
        for r in runs:
            if r.watch is not None:
                r.watch.close()
