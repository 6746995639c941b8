"""grucli as a library, for notebooks: the runner, the reader and the report's figures that
the commands use, called from Python.

    import grucli

    res = grucli.compare("experiments/adding.yaml", set={"grid.model.cell": ["gru", "lstm"], "seeds": 3})
    res.summary                  # one row per task, setting and cell (what compare's table shows)
    res.answer                   # the Answer lines
    res.figures()                # the report's figures: {name: matplotlib Figure}
    study = grucli.tune("experiments/tune_adding.yaml", set={"search.trials": 8})
    grucli.load("results/adding")    # any results folder, read only

`compare` and `tune` are `grucli compare` and `grucli tune` (same runner, same results
folder, same resumption: an interrupted call resumes when called again) and return what
`load` returns for their folder. Errors raise grucli.errors.GrucliError (ConfigError for a
bad file or override) with the one line the CLI prints; nothing here exits. With
`progress=True` (the default) the CLI's progress display is shown -- rich renders it in a
terminal and in Jupyter (through ipywidgets); with `progress=False` nothing is printed.

This module is imported on first use of `grucli.compare` / `grucli.tune` / `grucli.load`
(grucli/__init__.py), and imports what it runs only when called: `import grucli` stays light.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from grucli.results import Judged

__all__ = ["compare", "tune", "load", "Results"]


def compare(path: str | Path, set: Mapping[str, Any] | Iterable[str] | None = None, *, jobs: int | None = None,
            results: str | Path = "results", executor: str = "local", address: str | None = None,
            threads: int | None = None, device: str | None = None, pack: int | str | None = "auto",
            retry_failed: bool = False, until_decided: bool = False, progress: bool = True) -> "Results":
    """Run the comparison grid of the experiment file at `path` (`grucli compare`) and return
    its results (only this grid's runs are judged, as compare's table does).

    set: overrides, {"train.epochs": 5, "grid.model.cell": ["gru", "lstm"]} (values as Python
    objects) or ["train.epochs=5"] (as --set). jobs: parallel workers (default: usable
    cores; 1 trains in this process). results: the results root. pack: "auto", or at most
    this many runs of one shape trained together (1: each alone). until_decided: add seeds
    at the looks of the experiment's verdict: section."""
    from grucli import experiment as runner

    k = _pack(pack)
    _check(jobs=jobs, threads=threads)
    overrides = _overrides(set, device)
    with _reporter(progress, lambda er: _print_grid(er, executor, jobs, address, k)) as rep:
        options = dict(results=results, executor=executor, jobs=jobs, threads=threads, address=address,
                       retry_failed=retry_failed, reporter=rep, pack=k)
        if until_decided:
            er, _ = runner.run_until_decided(path, overrides, **options)
        else:
            er = runner.run(path, overrides, **options)
    if not er.exp_dir.is_dir():
        from grucli.errors import GrucliError

        raise GrucliError(f"{er.exp_dir}: nothing was written (no run to train?)")
    return Results(_read([er.exp_dir], None if until_decided else er.run_ids))


def tune(path: str | Path, set: Mapping[str, Any] | Iterable[str] | None = None, *, jobs: int | None = None,
         results: str | Path = "results", executor: str = "local", address: str | None = None,
         threads: int | None = None, device: str | None = None, pack: int | str | None = "auto",
         until_decided: bool = False, progress: bool = True) -> "Results":
    """Tune every arm of the experiment at `path` at the same budget of trials, then train
    each arm's best configuration on the final seeds (`grucli tune`); return its results
    (`Results.tuned`, `Results.trials`, the Answer). Arguments as `compare`."""
    from grucli.tune import run as tuning

    k = _pack(pack)
    _check(jobs=jobs, threads=threads)
    overrides = _overrides(set, device)
    with _reporter(progress, lambda tr: _print_study(tr, k, jobs)) as rep:
        tr = tuning.run(path, overrides, results=results, executor=executor, jobs=jobs, threads=threads,
                        address=address, reporter=rep, pack=k, until_decided=until_decided)
    return Results(_read([tr.exp_dir]))


def load(results: str | Path | Iterable[str | Path]) -> "Results":
    """Read a results folder (results/<experiment>, a results root, or several): nothing is
    trained or written."""
    paths = [results] if isinstance(results, (str, Path)) else list(results)
    return Results(_read(paths))


class Results:
    """Finished (and unfinished) runs of one or more experiment folders, as pandas objects,
    judged as compare's table and the report judge them (grucli.results)."""

    def __init__(self, judged: Judged):
        self._j = judged
        self._drawn: list | None = None

    @property
    def folders(self) -> list[Path]:
        """The experiment folders read."""
        return [Path(e["path"]) for e in self._j.col.experiments]

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run folder (a tuning study's trials too): experiment, run_id, state
        (ok, diverged, failed, pruned, in progress, unreadable), task, cell, seed,
        config.*, test.*, val.*, timing.* -- the rows of runs.csv, plus unfinished ones."""
        return self._j.col.runs

    @property
    def histories(self) -> pd.DataFrame:
        """Every run's history.csv in one long frame: experiment, run_id, cell, seed, then
        one row per epoch (epoch, step, train_loss, val_*, epoch_time_s, ...)."""
        col = self._j.col
        if not col.histories:
            return pd.DataFrame(columns=["experiment", "run_id", "cell", "seed", "epoch"])
        who = col.runs.set_index("key")[["experiment", "run_id", "cell", "seed"]]
        parts = [h.assign(**who.loc[key].to_dict()) for key, h in col.histories.items() if key in who.index]
        frame = pd.concat(parts, ignore_index=True)
        front = ["experiment", "run_id", "cell", "seed"]
        return frame[front + [c for c in frame.columns if c not in front]]

    def history(self, run_id: str) -> pd.DataFrame:
        """One run's history.csv (by run id)."""
        for key, h in self._j.col.histories.items():
            if key.rpartition("/")[2] == run_id:
                return h
        raise KeyError(f"{run_id}: no history of that run here (unknown id, or it failed before an epoch)")

    @property
    def summary(self) -> pd.DataFrame:
        """One row per task, setting and cell: parameters, timings, the test metric's centre
        and 95% interval over seeds, n, the baseline, diverged and failed counts (the
        report's tables/summary.csv; a tuned experiment's final runs)."""
        return _concat(self._j.summaries)

    @property
    def head_to_head(self) -> pd.DataFrame:
        """Every comparison the Answer rests on: pair (or cell against the baseline), effect
        and interval on the metric's scale, Holm-adjusted p-values, verdict."""
        return _concat(self._j.head_to_head)

    @property
    def answer(self) -> list[str]:
        """The Answer: per task and setting, the baseline first, then the cells' verdicts;
        per tuned experiment, its verdicts at an equal budget of trials."""
        from grucli.tune import analysis

        lines = list(self._j.answers)
        for t in self._j.tunes:
            lines.append(f"{t.manifest['name']}, at an equal budget of {analysis.budget_text(t)}:")
            lines += [f"  {line}" for line in analysis.answer(t)]
        return lines

    @property
    def tuned(self) -> pd.DataFrame:
        """Per arm of each tuned experiment: trials done, pruned, failed, the best validation
        value and its configuration (best.*), the final seeds' test metric."""
        from grucli.tune import analysis

        return pd.concat([analysis.comparison(t).assign(experiment=t.manifest["name"]) for t in self._j.tunes],
                         ignore_index=True) if self._j.tunes else pd.DataFrame()

    @property
    def trials(self) -> pd.DataFrame:
        """Every trial of each tuned experiment (its trials.csv): arm, trial, state, value, param.*."""
        return pd.concat([t.trials.assign(experiment=t.manifest["name"]) for t in self._j.tunes],
                         ignore_index=True) if self._j.tunes else pd.DataFrame()

    @property
    def notes(self) -> list[str]:
        """What the reader set aside (unreadable runs, ...) and what the tables leave out."""
        return [*self._j.col.notes, *self._j.notes]

    def figures(self) -> dict:
        """The report's figures (grucli.report.plots' registry and the tuned comparison's),
        drawn once: {name: matplotlib Figure}. `captions` says what each shows."""
        return {d.name: d.figure for d in self._figures()}

    @property
    def captions(self) -> dict[str, str]:
        return {d.name: d.caption for d in self._figures()}

    def _figures(self) -> list:
        if self._drawn is None:
            from grucli.report import plots, tuned

            self._drawn = [d for v in self._j.views for d in plots.draw(v, self._j.col.histories)]
            self._drawn += [d for t in self._j.tunes for d in tuned.draw(t)]
        return self._drawn

    def report(self, out: str | Path | None = None, formats: tuple[str, ...] = ("md", "html")) -> list[Path]:
        """Write the report of these folders (`grucli report`); returns report.md / .html."""
        from grucli.report import build_report

        return build_report(self.folders, Path(out) if out is not None else None, formats).files

    def __repr__(self) -> str:
        states = self.runs["state"].value_counts().to_dict() if len(self.runs) else {}
        names = ", ".join(e["name"] for e in self._j.col.experiments)
        head = f"grucli results of {names}: {len(self.runs)} runs ({', '.join(f'{n} {s}' for s, n in states.items())})"
        return "\n".join([head, *(f"  {line}" for line in self.answer)])

    def _repr_markdown_(self) -> str:
        head, *lines = repr(self).splitlines()
        return "\n".join([f"**{head}**", "", *(f"- {line.strip()}" for line in lines)])


# --------------------------------------------------------------------------- helpers
def _read(paths: list, run_ids: set[str] | None = None) -> Judged:
    from grucli import results

    return results.read([Path(p) for p in paths], histories=True, run_ids=run_ids)


def _overrides(values, device: str | None) -> list[str]:
    """`set` as --set items: a mapping's values written as JSON (which YAML reads back as
    the same object: 5, 1e-3, "gru", [10, 20], true), or --set items as they are."""
    if values is None:
        items = []
    elif isinstance(values, Mapping):
        items = [f"{key}={json.dumps(value, default=str)}" for key, value in values.items()]
    elif isinstance(values, str):
        items = [values]
    else:
        items = [str(v) for v in values]
    return items + ([f"train.device={device}"] if device else [])


def _pack(pack) -> int | None:
    from grucli.train import packing

    return packing.parse(pack) if isinstance(pack, str) else pack


def _check(**counts) -> None:
    from grucli.errors import GrucliError

    for name, value in counts.items():
        if value is not None and value < 1:
            raise GrucliError(f"{name}={value}: must be at least 1")


def _reporter(progress: bool, header):
    """The CLI's progress display (grucli.commands.common.ProgressReporter), or a reporter
    that prints nothing."""
    if progress:
        from grucli.commands.common import ProgressReporter

        return ProgressReporter(header=header)
    from grucli.experiment import Reporter

    return contextlib.nullcontext(Reporter())


def _print_grid(er, executor, jobs, address, pack) -> None:
    from grucli.commands.common import console
    from grucli.commands.compare import grid_line

    console.print(grid_line(er, executor, jobs, address, pack))


def _print_study(tr, pack, jobs) -> None:
    from grucli.commands.tune import print_study

    print_study(tr, pack, jobs)


def _concat(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames.values() if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
