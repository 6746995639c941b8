"""`grucli export`: finished runs of a results folder -> an experiment tracker, read from
the folder (the results folder stays the interface; nothing is trained or re-run).

    runs.py          what every tracker receives of a run (params, per-epoch series,
                     final numbers, tags), read through store.reader
    tensorboard.py   one event file per run, the hparams plugin's session
    mlflow.py        one MLflow run per grucli run, the summary as an artifact

A tracker is one entry in TARGETS: its module, the package it needs and the extra that
installs it. Exporting again adds nothing twice: each tracker keys what it wrote by the
grucli run id, skips what is unchanged and replaces a run trained again.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from grucli.errors import GrucliError
from grucli.export.runs import finished_runs


@dataclass(frozen=True)
class Target:
    module: str  # grucli.export.<module>: write(runs, dest, **options) -> {"written"|"replaced"|"unchanged": [keys]}
    package: str  # the package it imports
    dest: str  # what DEST is, for messages
    options: tuple[str, ...] = ()  # keyword options its write takes


TARGETS = {
    "tensorboard": Target("grucli.export.tensorboard", "tensorboard", "a log folder"),
    "mlflow": Target("grucli.export.mlflow", "mlflow", "a tracking URI", ("artifacts",)),
}


@dataclass
class Exported:
    to: str
    dest: str
    written: list[str] = field(default_factory=list)  # run keys (experiment/run_id) new in the tracker
    replaced: list[str] = field(default_factory=list)  # trained again since the last export: replaced whole
    unchanged: list[str] = field(default_factory=list)  # already there as they are
    statuses: dict[str, int] = field(default_factory=dict)  # finished runs by status
    experiments: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def target(to: str) -> Target:
    """The tracker named `to`, checked to be installed (one line naming the extra if not)."""
    if to not in TARGETS:
        raise GrucliError(f"--to {to}: unknown tracker; expected one of {', '.join(TARGETS)}")
    t = TARGETS[to]
    if importlib.util.find_spec(t.package) is None:
        raise GrucliError(f"grucli export --to {to} needs the {t.package} package: pip install 'grucli[{to}]'")
    return t


def export(results: list[Path], to: str, dest: str, **options) -> Exported:
    """Every finished run (ok, diverged, failed, pruned; a tuned folder's trials and final
    runs) of the experiment folders in `results` -> the tracker `to` at `dest`.
    `options` go to the tracker (mlflow: artifacts=DIR)."""
    t = target(to)
    for name, value in options.items():
        if value is not None and name not in t.options:
            raise GrucliError(f"--{name} is not an option of --to {to}")
    options = {k: v for k, v in options.items() if v is not None}
    found = finished_runs(results)
    module = importlib.import_module(t.module)
    done = module.write(found.runs, dest, **options)
    statuses: dict[str, int] = {}
    for run in found.runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    return Exported(to, str(dest), done["written"], done["replaced"], done["unchanged"], statuses,
                    list(dict.fromkeys(r.experiment for r in found.runs)), found.notes)
