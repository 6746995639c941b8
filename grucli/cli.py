"""The grucli command line: each command parses, calls one library function, renders."""

from __future__ import annotations

import typer

from grucli.commands import catalog, compare, train
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
app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("tasks")(catalog.tasks)
app.command("cells")(catalog.cells)
app.command("bench")(bench_cmd.bench)
app.command("inspect")(inspect_cmd.inspect)
app.command("sample")(sample_cmd.sample)
app.command("report")(report_cmd.report)


def main() -> None:
    app()
