"""`grucli compare`: run a whole comparison grid (in parallel, resumable) and show the
comparison table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from grucli.commands.common import (ProgressReporter, at_least_one, baseline_text, clean_errors, console,
                                    device_overrides, fmt, note_other_code, run_progress)
from grucli.errors import GrucliError


def render_comparison(exp_dir: Path, run_ids: set[str] | None = None) -> None:
    """One rich table per task and setting: cells side by side. With `run_ids`, only those
    runs (the current grid); finished runs of other grids in the folder are counted."""
    from grucli import store
    from grucli.summary import comparison_rows

    df = store.load_runs(exp_dir)
    others = 0
    if run_ids is not None and not df.empty:
        mine = df["run_id"].isin(run_ids)
        others = int((~mine).sum())
        df = df[mine].dropna(axis=1, how="all")
    tables = comparison_rows(df)
    if not tables:
        console.print(f"no finished runs of this grid in {exp_dir}")
        return
    for task, setting, rows in tables:
        title = f"{task}  " + "  ".join(f"{k}={v}" for k, v in setting.items())
        metric = rows["metric"].iloc[0]
        table = Table(title=title.strip(), title_justify="left")
        for col in ("cell", "params", "s/epoch", "train seq/s", "infer ms/seq", f"test {metric} ± 95% CI",
                    "n", "baseline", "reached", "diverged", "failed"):
            table.add_column(col, justify="left" if col == "cell" else "right")
        for r in rows.itertuples():
            ci = "" if r.ci95 is None else f" ± {fmt(r.ci95, 2)}"
            table.add_row(r.cell, fmt(r.params), fmt(r.epoch_time_s, 3), fmt(r.throughput_seq_s, 3),
                          fmt(r.latency_seq_ms, 3), f"{fmt(r.mean)}{ci}" if r.n else "-", str(r.n),
                          baseline_text(r.baseline, r.baseline_seasonal),
                          "-" if r.reached is None else f"{r.reached:.0%}", str(r.diverged), str(r.failed))
        console.print(table)
    console.print("[dim]mean ± half-width of the Student-t 95% interval over seeds; failed/diverged runs are "
                  "counted, not averaged; no interval with one seed[/]")
    if others:
        console.print(f"[dim]{others} other run(s) in {exp_dir} are not in this grid (an earlier version of the "
                      f"file?); `grucli report {exp_dir}` covers every run in the folder[/]")


@clean_errors
def compare(
    experiment: Path = typer.Argument(..., help="Experiment YAML file with a grid (see experiments/long_dependency.yaml)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key: --set train.epochs=5 (repeatable)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel workers (default: usable cores)."),
    executor: str = typer.Option("local", "--executor", "-e", help="local (process pool) | ray."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address HOST:PORT (with --executor ray)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List every run with its id and state; train nothing."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Re-run failed and diverged runs."),
    show: bool = typer.Option(False, "--show", help="Only print the comparison table of what is finished."),
    results: Path = typer.Option(Path("results"), "--results", "-o", help="Results root folder."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (overrides train.device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per worker (overrides train.threads; default 1)."),
) -> None:
    """Run a comparison grid of cells x settings x seeds, then print the comparison table.

    Finished runs are skipped by run id, so the same command resumes after an interruption
    (Ctrl-C or kill); a failed or diverged run is recorded and the grid goes on.

    Example:

        grucli compare experiments/long_dependency.yaml --jobs 2
    """
    from grucli import execute, runtime, store
    from grucli.commands.train import print_plan
    from grucli.config import load_experiment
    from grucli.grid import expand

    at_least_one(jobs=jobs, threads=threads)
    if executor not in ("local", "ray"):
        raise GrucliError(f"--executor {executor}: unknown executor; valid: local, ray")
    if address and executor != "ray":
        raise GrucliError("--address is the address of a Ray cluster: use it with --executor ray")
    exp = load_experiment(experiment, [*set_, *device_overrides(device, None)])
    runs = expand(exp)
    exp_dir = store.experiment_dir(results, exp.name)
    if show:
        if not exp_dir.is_dir():
            raise GrucliError(f"--show: no results of '{exp.name}' in {results} yet (run the grid first, or check --results)")
        note_other_code(execute.plan(runs, exp_dir, retry_failed), exp_dir)
        render_comparison(exp_dir, {r.run_id for r in runs})
        return
    plan = execute.plan(runs, exp_dir, retry_failed)
    if dry_run:
        print_plan(plan)
        return
    with console.status("preparing data and kernels (the fused kernels compile once per machine, ~1 min)"):
        execute.prepare(plan.todo, str(experiment))  # bad data stops here, before anything is written
    if executor == "local":  # runs train on this machine: cuda must be here (Ray nodes may have GPUs)
        for dev in {r.config.train.device for r in plan.todo}:
            runtime.resolve_device(dev)
    done = len(runs) - len(plan.todo)
    workers = "cluster" if executor == "ray" and address else f"{jobs or runtime.usable_cores()} workers"
    console.print(f"{exp.name}: {len(runs)} runs, {done} already finished, {len(plan.todo)} to run "
                  f"({executor}, {workers})")
    note_other_code(plan, exp_dir)
    if plan.todo:
        store.write_experiment(exp_dir, exp)
        with run_progress() as progress:
            reporter = ProgressReporter(progress, len(plan.todo))
            outcome = execute.run_grid(plan.todo, exp_dir, exp.name, executor=executor, jobs=jobs,
                                       threads=threads, address=address, retry_failed=retry_failed,
                                       reporter=reporter)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(outcome.finished.items()))
        console.print(f"finished: {summary or 'nothing'}" + (f"; skipped {outcome.skipped}" if outcome.skipped else ""))
    render_comparison(exp_dir, {r.run_id for r in runs})
    console.print(f"results: {exp_dir}  (runs.csv: one row per run)")
