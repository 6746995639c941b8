"""The grucli command line: each command parses, calls one library function, renders."""

from __future__ import annotations

import typer

from grucli.commands import catalog, compare, train
from grucli.commands import tune as tune_cmd
from grucli.commands import inspect as inspect_cmd
from grucli.commands import bench as bench_cmd
from grucli.commands import sample as sample_cmd
from grucli.commands import report as report_cmd

app = typer.Typer(
    help="grucli: GRU vs LSTM vs RNN -- which one, for my task, at what cost? Train, compare and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        import torch

        import grucli
        from grucli.environment import describe_code

        typer.echo(f"grucli {grucli.__version__} ({describe_code() or 'no git'}), torch {torch.__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print grucli's and torch's versions and exit.")) -> None:
    """grucli: GRU vs LSTM vs RNN -- which one, for my task, at what cost? Train, compare and report."""


app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("tune")(tune_cmd.tune)
app.command("tasks")(catalog.tasks)
app.command("cells")(catalog.cells)
app.command("bench")(bench_cmd.bench)
app.command("inspect")(inspect_cmd.inspect)
app.command("sample")(sample_cmd.sample)
app.command("report")(report_cmd.report)


def main() -> None:
    app()
