"""A results folder read and judged, once, for everything that shows it: compare's table,
the report and the notebook API (`grucli.load`) take their runs, summary tables,
head-to-head verdicts and Answer lines from `judge`, so they cannot disagree.

    store.reader.collect -> a tuned experiment's final runs (its trials are the study's)
    -> [only the runs of one grid] -> tables.task_views -> tables.summary_table,
    verdicts.head_to_head -> verdicts.answers per setting, verdicts.across_tasks

Reads only; imports neither torch nor matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from grucli import tables, verdicts
from grucli.store import FINISHED
from grucli.store.reader import Collection, collect
from grucli.tables import TaskView


@dataclass
class Judged:
    col: Collection  # every run folder as the reader read it (trials too), histories, experiments, notes
    runs: pd.DataFrame  # the runs the tables judge: of a tuned experiment its final runs; with run_ids only those
    views: list[TaskView] = field(default_factory=list)  # one per task
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)  # task -> tables.summary_table
    head_to_head: dict[str, pd.DataFrame] = field(default_factory=dict)  # task -> verdicts.head_to_head
    answers: list[str] = field(default_factory=list)  # per task and setting, then per pair across a task's settings
    tunes: list = field(default_factory=list)  # grucli.tune.analysis.Tuned, one per tuned experiment
    notes: list[str] = field(default_factory=list)  # what the tables leave out (a tuned experiment's trials)
    others: int = 0  # finished runs in the folders that are not among `run_ids`


def read(paths: list[Path], histories: bool = True, run_ids: set[str] | None = None) -> Judged:
    """Read the experiment folders in `paths` (store.reader.experiment_dirs) and judge them."""
    return judge(collect([Path(p) for p in paths], histories=histories), run_ids)


def judge(col: Collection, run_ids: set[str] | None = None) -> Judged:
    """The tables and verdicts of a collection. `run_ids`: judge only those runs (the grid a
    command just ran; finished runs of other grids in the folder are counted in `others`)."""
    tunes, runs, notes = tuned(col)
    others = 0
    if run_ids is not None and len(runs):
        mine = runs["run_id"].isin(run_ids)
        others = int((~mine & runs["state"].isin(FINISHED)).sum())
        runs = runs[mine].dropna(axis=1, how="all")
    views = tables.task_views(runs, col.experiments) if len(runs) else []
    summaries = {v.task: tables.summary_table(v) for v in views}
    h2h = {v.task: verdicts.head_to_head(v) for v in views}
    answers = [line for v in views for line in verdicts.answers(v, summaries[v.task], h2h[v.task])]
    answers += verdicts.across_tasks(views)
    return Judged(col, runs, views, summaries, h2h, answers, tunes, notes, others)


def tuned(col: Collection) -> tuple[list, pd.DataFrame, list[str]]:
    """The tuned experiments of the collection (grucli tune folders), and the runs the
    generic tables use: of a tuned experiment only its final runs (its trials are what its
    tuned comparison summarises)."""
    from grucli.tune import analysis

    tunes, notes, runs = [], [], col.runs
    for exp in col.experiments:
        if not analysis.is_tuned(exp["path"]):
            continue
        mine = col.runs[col.runs["experiment"] == exp["name"]] if len(col.runs) else col.runs
        t = analysis.load(exp["path"], mine)
        tunes.append(t)
        finals = {r for a in t.arms for r in a.get("final_runs") or []}
        trials = mine[~mine["run_id"].isin(finals)]
        runs = runs[~runs.index.isin(trials.index)]
        notes.append(f"{exp['name']} is a tuned experiment: its {len(trials)} trial run(s) are summarised in "
                     "'Tuned comparison'; the tables and figures below use its final runs only.")
    return tunes, runs, notes
