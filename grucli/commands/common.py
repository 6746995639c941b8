"""What every command shares: the console, the error boundary, progress rendering."""

from __future__ import annotations

import functools
import re
import sys
import time

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grucli.errors import GrucliError
from grucli.numbers import num, share

PACK_HELP = ("Runs of one shape (differing only in seed, lr, weight decay, clip, dropout, stopping) trained "
             "together per worker: at most this many, in equal packs; or auto (default: small models, H <= 64, "
             "in packs of 3-8 where there are that many of one shape and every worker still gets a pack; else "
             "alone). A run's numbers are the same either way; 1 = each run alone. (A TPE study asks for a "
             "pack's trials before hearing their results, as parallel workers do: its later proposals can differ.)")

# Piped output (not a terminal) gets a width that fits the comparison tables.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


def clean_errors(fn):
    """Turn a GrucliError into one line on stderr (one per problem when it names several)
    and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GrucliError as e:
            for line in str(e).splitlines() or [""]:
                err_console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: finished runs are kept; run the same command again to resume")
            sys.exit(130)
        except OSError as e:  # a file fault no writer turned into a StoreError: still one line, naming the file
            line = file_fault(e)
            if line is None:
                raise
            err_console.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def file_fault(e: OSError) -> str | None:
    """`cannot write PATH: no space left on device` for a full disk, a quota or a read-only
    file system, `cannot access PATH: permission denied` for a refusal; None for any other
    OSError (a bug, shown whole)."""
    import errno

    from grucli.store import CAUSES

    if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM) or not e.filename:
        return None
    verb = "access" if e.errno in (errno.EACCES, errno.EPERM) else "write"  # (refused: reading, perhaps)
    return f"cannot {verb} {e.filename}: {CAUSES[e.errno]}"


def at_least_one(**options: int | None) -> None:
    """One line (not click's usage block) for a count option below 1: --jobs 0, --threads 0."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise GrucliError(f"--{name.replace('_', '-')} {value}: must be at least 1")


def device_overrides(device: str | None, threads: int | None) -> list[str]:
    out = []
    if device:
        out.append(f"train.device={device}")
    if threads:
        out.append(f"train.threads={threads}")
    return out


def live() -> bool:
    """Whether live displays (bars, spinners) render here: a terminal, or Jupyter with
    ipywidgets (rich draws them in a widget there, and warns without one). Elsewhere (a log
    file, a pipe, CI) the reporter writes plain lines instead."""
    if console.is_terminal:
        return True
    if not console.is_jupyter:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


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
        disable=console.is_jupyter and not live(),  # (rich's Live would only warn there)
    )


EPOCH_RE = re.compile(r"epoch \d+")
STATE_STYLE = {"done": "green", "failed": "red", "diverged": "yellow", "pruned": "cyan", "partial": "magenta",
               "todo": "dim"}


class ProgressReporter:
    """Renders an experiment run (grucli.experiment.Reporter): a status line while data and
    kernels are prepared, a heading per phase (tune: trials, then final runs), then an
    overall bar (k of N runs, elapsed, ETA, failures so far), one bar per active run and one
    line per finished run. When the output is not a terminal (a log file, CI), bars cannot
    render: each run's epochs are logged as lines instead, and the overall count is a line
    every PLAIN_EVERY_S seconds and at the end. `header(er)` prints the command's own line
    once the grid is planned. Use it as a context manager, so the live display stops
    whatever happens."""

    PLAIN_EVERY_S = 10.0

    def __init__(self, header=None):
        self.header = header
        self.progress: Progress | None = None
        self.status = None
        self.bars: dict[str, int] = {}
        self.last_epoch: dict[str, str] = {}
        self.live = live()
        self.log_epochs = not self.live
        self.split = "test"  # which metrics a finished run's line shows (a tuning trial's: val)
        self.count = Count(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def planned(self, er) -> None:
        if self.header:
            self.header(er)
        for note in [getattr(er, "other_code", None), *getattr(er, "notes", [])]:
            if note:
                console.print(f"[yellow]{escape(note)}[/]")

    def stage(self, text: str) -> None:
        """A transient status on a terminal; in a log only what takes long (compiling) is a line."""
        if self.status is not None:
            self.status.update(text)
        elif self.live:
            self.status = console.status(text)
            self.status.start()
        elif "compiling" in text:
            err_console.print(text)

    def phase(self, title: str, split: str = "test") -> None:
        self.close()
        self.split = split
        console.print(f"[bold]{escape(title)}[/]")

    def grid_started(self, todo) -> None:
        self.close()
        self.count = Count(len(todo))
        self.progress = run_progress()
        self.progress.start()
        self.overall = self.progress.add_task("[bold]runs", total=len(todo), status="")

    def _counted(self, status: str | None = None) -> None:
        """One more run of the grid is done: the bar (k of N, failures so far), or in a log
        a line when PLAIN_EVERY_S have passed and at the last run."""
        self.count.add(status)
        self.progress.update(self.overall, advance=1, status=self.count.failures())
        now = time.monotonic()
        if not self.live and (self.count.done >= self.count.total
                              or now - self.count.said >= self.PLAIN_EVERY_S):
            self.count.said = now
            self.progress.console.print(f"[dim]{self.count.line(now)}[/]")

    def run_started(self, run) -> None:
        self.bars[run.run_id] = self.progress.add_task(
            f"  #{run.index} {run.config.model.cell}", total=None, status="queued")

    def run_progress(self, run, step, total, info) -> None:
        if run.run_id in self.bars:
            self.progress.update(self.bars[run.run_id], completed=step, total=total, status=info)
        epoch = EPOCH_RE.search(info)
        if self.log_epochs and epoch and self.last_epoch.get(run.run_id) != epoch.group(0):
            self.last_epoch[run.run_id] = epoch.group(0)
            self.progress.console.print(f"[dim]  #{run.index} {run.config.model.cell} step {step}/{total}: {info}[/]")

    def run_finished(self, run, result) -> None:
        bar = self.bars.pop(run.run_id, None)
        if bar is not None:
            self.progress.remove_task(bar)
        self.progress.console.print(run_line(run, result, self.split))
        self._counted(result.status)

    def run_skipped(self, run, why: str) -> None:
        self.progress.console.print(f"[dim] skipped #{run.index} {run.run_id}: {why}[/]")
        self._counted()


class Count:
    """How far a grid is: k of N runs done, failures so far, elapsed and an ETA (the mean
    time per run so far times the runs left)."""

    def __init__(self, total: int):
        self.total, self.done, self.failed, self.diverged = total, 0, 0, 0
        self.start = self.said = time.monotonic()

    def add(self, status: str | None) -> None:
        self.done += 1
        self.failed += status == "failed"
        self.diverged += status == "diverged"

    def failures(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.failed, "failed"), (self.diverged, "diverged")) if n]
        return ", ".join(parts)

    def line(self, now: float) -> str:
        """`runs 12/40 (30%), elapsed 0:01:05, eta 0:02:32, 1 failed`"""
        elapsed = now - self.start
        left = self.total - self.done
        eta = f", eta {_clock(elapsed / self.done * left)}" if self.done and left > 0 else ""
        failures = f", {self.failures()}" if self.failures() else ""
        done = f" ({share(self.done / self.total)})" if self.total else ""
        return f"runs {self.done}/{self.total}{done}, elapsed {_clock(elapsed)}{eta}{failures}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def print_plan(plan) -> None:
    """Hydra-style listing: one line per run with its id and state."""
    from grucli.grid import describe

    todo = {r.run_id for r in plan.todo}
    styled = console.is_terminal  # a log or a pipe gets plain lines, written as they are: rich's rendering of
    lines = []                    # a line each took ~25 s for 100,000 runs
    for run in plan.runs:
        state = plan.states[run.run_id]
        label = "to run" if state in ("todo", "partial") else state + (" -> to run" if run.run_id in todo else "")
        head = f"#{run.index:<3} {describe(run)} -> {run.run_id}  "
        lines.append(f"{escape(head)}[{STATE_STYLE[state]}]{label}[/]" if styled else head + label)
    for start in range(0, len(lines), 5000):
        block = "\n".join(lines[start:start + 5000])
        if styled:
            console.print(block)
        else:
            console.file.write(block + "\n")
    counts = [f"{sum(s == k for s in plan.states.values())} {k}" for k in ("done", "failed", "diverged")]
    console.print(f"{len(plan.runs)} runs: {', '.join(c for c in counts if not c.startswith('0 ') or 'done' in c)}, "
                  f"{len(plan.todo)} to run")


def baseline_text(naive, seasonal=None) -> str:
    """The trivial baseline; for a forecast with a season, naive and seasonal naive both
    (the seasonal one is often much the stronger)."""
    if seasonal is None or seasonal != seasonal:
        return num(naive, 4)
    return f"naive {num(naive, 4)} / seasonal naive {num(seasonal, 4)}"


def run_line(run, result, split: str = "test") -> str:
    """One line per finished run: cell, key settings, seed, metric, training time (a packed
    run's share of its pack's steps). split="val": the validation metric it is selected on,
    no test metric and no baseline (a tuning trial's line)."""
    from grucli.grid import describe

    colour = {"ok": "green", "diverged": "yellow", "failed": "red", "pruned": "cyan"}[result.status]
    head = f"[{colour}]{result.status:>8}[/] #{run.index} {run.config.model.cell:<8} {describe(run, ('model.cell',))}"
    if result.status == "failed":
        return f"{head}  {result.error}"
    t, pack = result.timing.get("train_time_s"), result.timing.get("pack_size") or 1
    packed = f" (its share of a pack of {pack})" if pack > 1 else ""
    if split == "val":
        metric = (result.select or (result.metric, result.goal))[0]
        value = result.val.get(metric) if result.val else None
        said = "best val" if result.status == "pruned" else "val"  # (the study records its value when pruned)
        tail = f"  {said} {metric} {num(value, 4)}  params {result.params}  {num(t)} s training{packed}"
        return head + tail + (f"  {result.error}" if result.status == "diverged" else "")
    metric = result.metric
    value = result.test.get(metric) if result.test else None
    base = baseline_text(result.baseline.get(metric), result.baseline.get(f"snaive_{metric}"))
    tail = f"  test {metric} {num(value, 4)} (baseline {base})  params {result.params}  {num(t)} s training{packed}"
    if result.status == "diverged":
        tail += f"  {result.error}"
    return head + tail
