"""`grucli train`: train one configuration or a YAML grid, one run after another."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from grucli.commands.common import (ProgressReporter, at_least_one, clean_errors, console, device_overrides,
                                    print_plan, PACK_HELP)


def _header(er) -> None:
    if er.finished:
        console.print(f"[dim]{er.finished} of {len(er.runs)} runs already finished in {er.exp_dir}; skipping them[/]")


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
    """Train one configuration or every run of a YAML grid, one after another.

    Finished runs (by run id) are skipped, so re-running the same command resumes.

    Example:

        grucli train experiments/adding.yaml --set model.cell=lstm --set task.seq_len=200
    """
    from grucli import experiment as runner

    from grucli.execute import pack as packing

    at_least_one(threads=threads)
    k = packing.parse(pack)
    with ProgressReporter(header=None if dry_run else _header) as reporter:
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
