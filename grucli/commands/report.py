"""`grucli report`: tables, figures and a Markdown + HTML report from results folders."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from grucli.commands.common import clean_errors, console, err_console
from grucli.errors import GrucliError

FORMAT_CHOICES = {"md": ("md",), "html": ("html",), "both": ("md", "html")}


@clean_errors
def report(
    dirs: list[Path] = typer.Argument(..., help="Experiment folders (results/<experiment>) or a results root."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Report folder (default: <experiment>/report, or the shared parent's "
                                            "report/ for several experiments)."),
    format_: str = typer.Option("both", "--format", "-f", help="md | html | both."),
    open_: bool = typer.Option(False, "--open", help="Open the report in a browser when done."),
) -> None:
    """Write comparison tables, figures and a Markdown + self-contained HTML report.

    Only reads the results: nothing is trained. Runs that diverged, failed or are still
    in progress are listed, never averaged in; an unreadable run is named and skipped.

    Example:

        grucli report results/adding

        grucli report results/a results/b --out reports/combined --format html --open
    """
    from grucli.report import build_report

    if format_ not in FORMAT_CHOICES:
        raise GrucliError(f"--format {format_}: expected one of {', '.join(FORMAT_CHOICES)}")
    with console.status("building the report"):
        res = build_report(dirs, out, FORMAT_CHOICES[format_])
    for note in res.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    plots = "; ".join(f"{task}: {', '.join(names) or 'none'}" for task, names in res.plots.items())
    console.print(f"{res.runs} run folders -> {len(res.tables)} tables, {len(res.figures)} figure files ({plots})")
    for path in res.files:
        console.print(f"report: {path}")
    if open_:
        target = next((p for p in res.files if p.suffix == ".html"), res.files[0])
        webbrowser.open(target.resolve().as_uri())
