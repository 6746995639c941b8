"""The grucli command line: each command parses, calls one library function, renders."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from grucli.commands import catalog, compare, train
from grucli.commands import tune as tune_cmd
from grucli.commands import inspect as inspect_cmd
from grucli.commands import bench as bench_cmd
from grucli.commands import sample as sample_cmd
from grucli.commands import report as report_cmd
from grucli.commands import claims as claims_cmd
from grucli.commands import init as init_cmd
from grucli.commands import export as export_cmd

class _Group(TyperGroup):
    """Command-line mistakes (--jobs abc, an unknown command or option, a missing argument)
    as grucli's one line and exit code 2, not click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        import typer.core

        click = getattr(typer.core, "_click", None) or __import__("click")
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except click.exceptions.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError" or e.ctx is None:
                e.show()
                sys.exit(e.exit_code)
            command = e.ctx.command_path
            print(f"error: {command}: {e.format_message()} (see {command} --help)", file=sys.stderr)
            sys.exit(2)
        except click.exceptions.ClickException as e:
            print(f"error: {e.format_message()}", file=sys.stderr)
            sys.exit(e.exit_code)
        except typer.core.Abort:
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    cls=_Group,
    help="grucli: GRU vs LSTM vs RNN -- which one, for my task, at what cost? Train, compare and report.",
    no_args_is_help=True,
    add_completion=True,
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


app.command("init")(init_cmd.init)
app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("tune")(tune_cmd.tune)
app.command("tasks")(catalog.tasks)
app.command("cells")(catalog.cells)
app.command("bench")(bench_cmd.bench)
app.command("inspect")(inspect_cmd.inspect)
app.command("sample")(sample_cmd.sample)
app.command("report")(report_cmd.report)
app.command("claims")(claims_cmd.claims)
app.command("export")(export_cmd.export)


def main() -> None:
    app()
