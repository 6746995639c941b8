"""`grucli train`: train one configuration or a YAML grid, one run after another."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from grucli.commands.common import (ProgressReporter, at_least_one, clean_errors, console, device_overrides,
                                    note_other_code, run_progress)

STATE_STYLE = {"done": "green", "failed": "red", "diverged": "yellow", "partial": "magenta", "todo": "dim"}


def print_plan(plan) -> None:
    """Hydra-style listing: one line per run with its id and state."""
    from grucli.grid import describe

    todo = {r.run_id for r in plan.todo}
    for run in plan.runs:
        state = plan.states[run.run_id]
        label = "to run" if state in ("todo", "partial") else state + (" -> to run" if run.run_id in todo else "")
        console.print(f"#{run.index:<3} {describe(run)} -> {run.run_id}  [{STATE_STYLE[state]}]{label}[/]")
    counts = [f"{sum(s == k for s in plan.states.values())} {k}" for k in ("done", "failed", "diverged")]
    console.print(f"{len(plan.runs)} runs: {', '.join(c for c in counts if not c.startswith('0 ') or 'done' in c)}, "
                  f"{len(plan.todo)} to run")


@clean_errors
def train(
    experiment: Path = typer.Argument(..., help="Experiment YAML file (see experiments/)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key: --set model.cell=lstm (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List every run with its id and state; train nothing."),
    results: Path = typer.Option(Path("results"), "--results", "-o", help="Results root folder."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (overrides train.device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (overrides train.threads; default 1)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also re-run failed and diverged runs."),
) -> None:
    """Train one configuration or every run of a YAML grid, one after another.

    Finished runs (by run id) are skipped, so re-running the same command resumes.

    Example:

        grucli train experiments/adding.yaml --set model.cell=lstm --set task.seq_len=200
    """
    from grucli import execute, runtime, store
    from grucli.config import load_experiment
    from grucli.grid import expand

    at_least_one(threads=threads)
    exp = load_experiment(experiment, [*set_, *device_overrides(device, threads)])
    runs = expand(exp)
    exp_dir = store.experiment_dir(results, exp.name)
    plan = execute.plan(runs, exp_dir, retry_failed)
    if dry_run:
        print_plan(plan)
        return
    skipped = len(runs) - len(plan.todo)
    if skipped:
        console.print(f"[dim]{skipped} of {len(runs)} runs already finished in {exp_dir}; skipping them[/]")
        note_other_code(plan, exp_dir)
    if not plan.todo:
        return
    with console.status("preparing data and kernels (the fused kernels compile once per machine, ~1 min)"):
        execute.prepare(plan.todo, str(experiment))  # bad data stops here, before anything is written
    for device in {r.config.train.device for r in plan.todo}:
        runtime.resolve_device(device)  # and so does cuda on a machine without it (this process trains)
    store.write_experiment(exp_dir, exp)
    with run_progress() as progress:
        outcome = execute.run_grid(plan.todo, exp_dir, exp.name, executor="inline", retry_failed=retry_failed,
                                   reporter=ProgressReporter(progress, len(plan.todo)))
    console.print(f"results: {exp_dir}  (runs.csv: one row per run; <run_id>/summary.json, history.csv)")
    if outcome.finished.get("failed"):
        raise typer.Exit(1)
