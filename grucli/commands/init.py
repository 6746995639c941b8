"""`grucli init`: a commented starter experiment from your data file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from grucli.commands.common import clean_errors, console


@clean_errors
def init(
    data: Path = typer.Argument(..., help="Your data: a CSV file with a header line, or a .ts file (UEA format)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Experiment file to write (default: ./<data name>.yaml); its tuned twin "
                                            "goes beside it as <name>_tune.yaml."),
    task: Optional[str] = typer.Option(None, "--task", "-t",
                                       help="Force the task: csv_forecast | csv_classify | csv_anomaly."),
    target: Optional[str] = typer.Option(None, "--target",
                                         help="The column to forecast, or the label to classify (when the guess is "
                                              "wrong or there is none)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing experiment files."),
) -> None:
    """Look at a CSV (or .ts) file and write a commented experiment that runs as written.

    Guesses the task from the columns (and says why): a series to forecast, numeric
    sequences with a label (one row each, or a long file of id, time and channel columns),
    a text column (words, or characters for short cells), a 0/1 anomaly label. Proposes
    window, horizon and season for a series (the season from the timestamps' frequency),
    sizes rnn, gru and lstm at one parameter budget, sets epochs, patience and batch size
    from the data's size, and builds the task once to check it. Writes
    <name>.yaml (for compare, 3 seeds) and <name>_tune.yaml (the same with a search:
    block for tune), then prints the commands to run next.

    Example:

        grucli init sales.csv

        grucli init gestures.csv --task csv_classify --target gesture --out exp/gestures.yaml
    """
    from grucli.starter import init as write_starter

    res = write_starter(data, out, task, target, force)
    st = res.starter
    console.print(f"[bold]{escape(str(data))}[/]: {st.kind}, {st.sizes['train']} train / {st.sizes['val']} validation"
                  f" / {st.sizes['test']} test examples")
    for line in st.guesses:
        console.print(f"  guessed {escape(line)}")
    for note in st.notes:
        console.print(f"[yellow]note: {escape(note)}[/]")
    for path in res.files:
        console.print(f"wrote {escape(str(path))}")
    console.print("next:")
    for cmd in res.commands:
        console.print(f"  {escape(cmd)}")
