"""`grucli compare`: run a whole comparison grid (in parallel, resumable) and show the
comparison table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from grucli.commands.common import (ProgressReporter, at_least_one, baseline_text, clean_errors, console,
                                    device_overrides, print_plan, PACK_HELP)
from grucli.errors import GrucliError
from grucli.numbers import NONE, interval, num, share


def render_comparison(exp_dir: Path, run_ids: set[str] | None = None) -> None:
    """One rich table per task and setting, cells side by side, built like the report's
    summary table (grucli.tables). With `run_ids`, only those runs (the current grid);
    finished runs of other grids in the folder are counted."""
    from grucli import results, tables
    from grucli.store import reader

    judged = results.read([exp_dir], histories=False, run_ids=run_ids) if exp_dir.is_dir() and any(
        reader.is_run_dir(p) for p in exp_dir.iterdir()) else None
    views = judged.views if judged is not None else []
    if not views:
        console.print(f"no finished runs of this grid in {exp_dir}")
        return
    runs, summaries, others = judged.runs, judged.summaries, judged.others
    for view in views:
        summary = summaries[view.task]
        keys = [tables.short(c) for c in view.settings]
        for values, rows in (summary.groupby(keys, dropna=False, sort=False) if keys else [((), summary)]):
            values = values if isinstance(values, tuple) else (values,)
            title = f"{view.task}  " + "  ".join(f"{k}={tables.plain(v)}" for k, v in zip(keys, values))
            table = Table(title=title.strip(), title_justify="left")
            centre = "geo. mean" if summary["scale"].iloc[0] == "log" else "mean"
            for col in ("cell", "params", "s/epoch", "train seq/s", "infer ms/seq", "activ.\nMB",
                        f"test {view.metric}\n{centre} [95% CI]",
                        "n", "baseline", "reached\n(val)", "diverged", "failed"):
                table.add_column(col, justify="left" if col == "cell" else "right")
            for r in rows.to_dict("records"):
                reached = NONE if view.target is None or not r["ok"] else share(r["reached_target"] / r["ok"])
                table.add_row(r["cell"], num(r["params"]), num(r["epoch_time_s"]), num(r["throughput_seq_s"]),
                              num(r["latency_seq_ms"]), num(_mb(r["saved_activation_bytes"])),
                              interval(r["centre"], r["lo"], r["hi"]) if r["n"] else NONE, str(r["n"]),
                              baseline_text(r["baseline"], r.get("baseline_snaive")), reached,
                              str(r["diverged"]), str(r["failed"]))
            console.print(table)
    console.print("[dim]centre [95% interval] over seeds on the metric's scale (geometric mean for error-type "
                  "metrics, cut to [0, 1] for accuracy-type ones); failed/diverged runs are counted, not averaged; "
                  "no interval with one seed; s/epoch is steady state (epochs after the first)[/]")
    packed = tables.packed_runs(runs)
    if packed:
        console.print(f"[dim]{packed} run(s) trained in packs (timing.pack_size): their s/epoch and seq/s are their "
                      "share of their pack's steps; compare costs of runs trained alike (--pack 1 trains each "
                      "alone)[/]")
    if "timing.step_why" in runs:
        for why, n in runs["timing.step_why"].dropna().value_counts().items():
            console.print(f"[dim]{n} run(s) stepped run by run, not stacked (timing.step): {why}[/]")
    console.print("[bold]Answer[/] (per setting: the baseline first, then the cells' verdicts on the metric's scale, "
                  "Holm over that setting's comparisons):")
    for line in judged.answers:
        console.print(f"  {escape(line)}")
    if others:
        console.print(f"[dim]{others} other run(s) in {exp_dir} are not in this grid (an earlier version of the "
                      f"file?); `grucli report {exp_dir}` covers every run in the folder[/]")


def grid_line(er, executor: str, jobs: int | None, address: str | None, pack: int | None) -> str:
    """`long_dependency: 36 runs, 0 already finished, 36 to run (local, 2 workers, packs of up to 3 ...)`"""
    from grucli import runtime
    from grucli.train import packing

    n = jobs or runtime.usable_cores()
    workers = "cluster" if executor == "ray" and address else f"{n} worker{'s' if n != 1 else ''}"
    size = packing.size(pack, er.plan.todo, n)
    packed = f", packs of up to {size} runs of one shape" if size > 1 else ""
    return (f"{er.experiment.name}: {len(er.runs)} runs, {er.finished} already finished, "
            f"{len(er.plan.todo)} to run ({executor}, {workers}{packed})")


def _mb(v):
    return None if v is None or v != v else v / 2**20


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
    pack: str = typer.Option("auto", "--pack", help=PACK_HELP),
    until_decided: bool = typer.Option(False, "--until-decided", help=(
        "Add seeds only to settings whose comparisons are undecided, at the looks the experiment's verdict: "
        "section plans (default 4, 6, 9, 12 seeds per cell), judged at Pocock's per-look level.")),
) -> None:
    """Run a comparison grid of cells x settings x seeds, then print the comparison table.

    Finished runs are skipped by run id, so the same command resumes after an interruption
    (Ctrl-C or kill); a failed or diverged run is recorded and the grid goes on.

    Example:

        grucli compare experiments/long_dependency.yaml --jobs 2

        grucli compare experiments/long_dependency.yaml --until-decided
    """
    from grucli import experiment as runner
    from grucli.train import packing

    at_least_one(jobs=jobs, threads=threads)
    k = packing.parse(pack)
    if executor not in ("local", "ray"):
        raise GrucliError(f"--executor {executor}: unknown executor; valid: local, ray")
    overrides = [*set_, *device_overrides(device, None)]
    if show:
        er = runner.open_experiment(experiment, overrides, results, retry_failed)
        if not er.exp_dir.is_dir():
            raise GrucliError(f"--show: no results of '{er.experiment.name}' in {results} yet "
                              "(run the grid first, or check --results)")
        if er.other_code:
            console.print(f"[yellow]{er.other_code}[/]")
        render_comparison(er.exp_dir, None if until_decided else er.run_ids)  # as after the run: every look's seeds
        return

    def header(er) -> None:
        console.print(grid_line(er, executor, jobs, address, k))

    def looked(result) -> None:
        left = (f"{len(result.undecided)} setting(s) undecided: {'; '.join(result.undecided[:4])}"
                f"{' ...' if len(result.undecided) > 4 else ''}") if result.undecided else "every setting decided"
        console.print(f"[bold]look {result.look}[/] ({result.seeds} seeds per cell, {result.trained} runs trained): "
                      f"{escape(left)}")

    with ProgressReporter(header=None if dry_run else header) as reporter:
        if until_decided:
            er, _ = runner.run_until_decided(experiment, overrides, results=results, executor=executor, jobs=jobs,
                                             threads=threads, address=address, retry_failed=retry_failed,
                                             dry_run=dry_run, reporter=reporter, pack=k, on_look=looked)
        else:
            er = runner.run(experiment, overrides, results=results, executor=executor, jobs=jobs, threads=threads,
                            address=address, retry_failed=retry_failed, dry_run=dry_run, reporter=reporter, pack=k)
    if dry_run:
        print_plan(er.plan)
        return
    if er.outcome is not None:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(er.outcome.finished.items()))
        skipped = f"; skipped {er.outcome.skipped}" if er.outcome.skipped else ""
        console.print(f"finished: {summary or 'nothing'}{skipped}")
    render_comparison(er.exp_dir, None if until_decided else er.run_ids)
    console.print(f"results: {er.exp_dir}  (runs.csv: one row per run)")
