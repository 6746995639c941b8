"""Run many: decide what still has to run, train it, store it. The in-process executor
lives here; parallel and distributed executors plug in beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from grucli import store
from grucli.grid import Run
from grucli.train import Callback, RunResult, train_run


@dataclass
class Plan:
    """What a grid invocation will do: every run with its state, and those to train."""

    runs: list[Run]
    states: dict[str, str]  # run_id -> done | failed | diverged | partial | todo
    todo: list[Run]


def plan(runs: list[Run], exp_dir: Path, retry_failed: bool = False) -> Plan:
    states = {r.run_id: store.run_state(Path(exp_dir) / r.run_id) for r in runs}
    redo = {"todo", "partial"} | ({"failed", "diverged"} if retry_failed else set())
    return Plan(runs, states, [r for r in runs if states[r.run_id] in redo])


def run_in_process(todo: Iterable[Run], exp_dir: Path, experiment: str,
                   make_callback: Callable[[Run], Callback] = lambda run: Callback(),
                   on_done: Callable[[Run, RunResult], None] = lambda run, result: None,
                   threads: int | None = None) -> None:
    """Train each run in this process, one after another, and store it as it finishes."""
    for run in todo:
        result = train_run(run.config, make_callback(run), threads=threads)
        store.write_run(exp_dir, run, result, experiment)
        on_done(run, result)
