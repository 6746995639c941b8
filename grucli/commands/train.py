"""`grucli train`: train one configuration or a YAML grid in this process (runs of one
shape in packs, as compare does)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from grucli.commands.common import (ProgressReporter, at_least_one, clean_errors, console, device_overrides,
                                    print_plan, PACK_HELP)


def _header(er, pack: int | None = 1) -> None:
    from grucli.train import packing

    if er.finished:
        console.print(f"[dim]{er.finished} of {len(er.runs)} runs already finished in {er.exp_dir}; skipping them[/]")
    size = packing.size(pack, er.plan.todo, 1)
    if size > 1:
        console.print(f"[dim]{len(er.plan.todo)} runs to train in this process, packs of up to {size} runs of one "
                      "shape (--pack 1: one after another)[/]")


@clean_errors
def train(
    experiment: Path = typer.Argument(..., help="Experiment YAML file (see experiments/)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key: --set model.cell=lstm (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List every run with its id and state; train nothing."),
    results: Path = typer.Option(Path("results"), "--results", "-o", help="Results root folder."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda (overrides train.device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (overrides train.threads; default 1)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also re-run failed and diverged runs."),
    pack: str = typer.Option("auto", "--pack", help=PACK_HELP),
) -> None:
    """Train one configuration or every run of a YAML grid, in this process.

    Finished runs (by run id) are skipped, so re-running the same command resumes.

    Example:

        grucli train experiments/adding.yaml --set model.cell=lstm --set task.seq_len=200
    """
    from grucli import experiment as runner

    from grucli.train import packing

    at_least_one(threads=threads)
    k = packing.parse(pack)
    with ProgressReporter(header=None if dry_run else (lambda er: _header(er, k))) as reporter:
        er = runner.run(experiment, [*set_, *device_overrides(device, threads)], results=results, executor="inline",
                        retry_failed=retry_failed, dry_run=dry_run, reporter=reporter, pack=k)
    if dry_run:
        print_plan(er.plan)
        return
    if er.outcome is None:
        return
    console.print(f"results: {er.exp_dir}  (runs.csv: one row per run; <run_id>/summary.json, history.csv)")
    if er.outcome.finished.get("failed"):
        raise typer.Exit(1)
