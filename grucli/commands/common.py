"""What every command shares: the console, the error boundary, progress rendering."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grucli.errors import GrucliError
from grucli.train import Callback

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def clean_errors(fn):
    """Turn a GrucliError into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GrucliError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: finished runs are kept; run the same command again to resume")
            sys.exit(130)

    return wrapper


def device_overrides(device: str | None, threads: int | None) -> list[str]:
    out = []
    if device:
        out.append(f"train.device={device}")
    if threads:
        out.append(f"train.threads={threads}")
    return out


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


def run_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


class ProgressCallback(Callback):
    """Drives one rich progress bar from a training run's callbacks."""

    def __init__(self, progress: Progress, description: str, metric: str = "metric"):
        self.progress, self.metric = progress, metric
        self.task = progress.add_task(description, total=None, status="starting")
        self.epoch_info = ""

    def on_start(self, total_steps: int) -> None:
        self.progress.update(self.task, total=total_steps)

    def on_step(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, status=f"loss {loss:.4g}{self.epoch_info}")

    def on_epoch(self, row: dict) -> None:
        vals = [f"{k.removeprefix('val_')} {v:.4g}" for k, v in row.items() if k.startswith("val_")][:2]
        self.epoch_info = f" | epoch {row['epoch']} val " + ", ".join(vals)

    def close(self) -> None:
        self.progress.remove_task(self.task)


def run_line(run, result) -> str:
    """One line per finished run: cell, key settings, seed, metric, time."""
    from grucli.grid import describe

    colour = {"ok": "green", "diverged": "yellow", "failed": "red"}[result.status]
    head = f"[{colour}]{result.status:>8}[/] #{run.index} {run.config.model.cell:<8} {describe(run)}"
    if result.status == "failed":
        return f"{head}  {result.error}"
    metric = result.metric
    value = result.test.get(metric) if result.test else None
    base = result.baseline.get(metric)
    t = result.timing.get("total_time_s")
    tail = f"  test {metric} {fmt(value)} (baseline {fmt(base)})  params {result.params}  {fmt(t, 3)} s"
    if result.status == "diverged":
        tail += f"  {result.error}"
    return head + tail
