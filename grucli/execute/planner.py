"""What a grid invocation will do: each run's state in the results folder, the runs still to
train, and the order they start in (longest first)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grucli import cells, store
from grucli.grid import Run


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
    redo = redo_states(retry_failed)
    return Plan(runs, states, [r for r in runs if states[r.run_id] in redo])


def redo_states(retry_failed: bool) -> set[str]:
    return {"todo", "partial"} | ({"failed", "diverged"} if retry_failed else set())


def estimated_cost(run: Run) -> float:
    """A rough relative cost (steps x sequence length x gate blocks x recurrent width^2)
    used to start long runs first. Only ordering depends on it."""
    cfg = run.config
    t = cfg.task
    length = getattr(t, "seq_len", None) or getattr(t, "window", None) or 64
    n = getattr(t, "n_train", None) or 1000
    h = cfg.model.hidden_size or (cfg.model.param_budget or 64**2 * 4) ** 0.5
    steps = cfg.train.max_steps or cfg.train.epochs * n / cfg.train.batch_size
    recurrent = cells.get(cfg.model.cell).matmul_macs(0, h)  # G*H^2 for a cell with G gate blocks
    return steps * length * recurrent * cfg.model.num_layers * (2 if cfg.model.bidirectional else 1)
