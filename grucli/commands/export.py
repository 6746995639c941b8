"""`grucli export`: a results folder's finished runs -> TensorBoard or MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from grucli.commands.common import clean_errors, console, err_console

VIEW = {"tensorboard": "tensorboard --logdir {dest}", "mlflow": "mlflow ui --backend-store-uri {dest}"}


@clean_errors
def export(
    results: Path = typer.Argument(..., help="An experiment folder (results/<experiment>) or a results root."),
    dest: str = typer.Argument(..., help="tensorboard: a log folder; mlflow: a tracking URI "
                                         "(sqlite:///mlflow.db, http://host:5000, a folder)."),
    to: str = typer.Option(..., "--to", help="tensorboard | mlflow"),
    artifacts: Optional[Path] = typer.Option(None, "--artifacts",
                                             help="mlflow: where a new MLflow experiment keeps its artifacts "
                                                  "(<folder>/<experiment>; default: the tracking server's)."),
) -> None:
    """Export finished runs to TensorBoard or MLflow: per-epoch curves, the config as
    hyperparameters, the final metrics, and each run's status (ok, diverged, failed,
    pruned). Only reads the results; exporting again adds nothing twice (a run trained
    again since is replaced). A tuned folder exports its trials and final runs (role tag).

    Example:

        grucli export results/adding --to tensorboard runs/tb

        grucli export results/adding --to mlflow sqlite:///mlflow.db
    """
    from grucli.export import export as export_runs

    with console.status(f"exporting to {to}"):
        res = export_runs([results], to, dest, artifacts=artifacts)
    for note in res.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(res.statuses.items()))
    console.print(f"{to}: {len(res.written)} run(s) written, {len(res.replaced)} replaced (changed since the last export), "
                  f"{len(res.unchanged)} already there ({statuses or 'no finished runs'}) -> {escape(res.dest)}")
    if res.written or res.replaced or res.unchanged:
        console.print(f"view: {escape(VIEW[to].format(dest=res.dest))}")
