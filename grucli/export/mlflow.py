"""Runs -> MLflow: one MLflow run per grucli run, in an MLflow experiment named after the
results folder (the experiment folder's name), through MLflow's own client.

    params     the flattened config (model.hidden_size, train.lr, ...)
    metrics    every history.csv column per epoch (step = epoch, timestamps from the run's
               own clock), then the summary's final numbers (final/test_<metric>, ...)
    tags       experiment, cell, task, seed, status (ok | diverged | failed | pruned),
               role (trial | final), arm and trial in a tuned folder; grucli.run_id and
               grucli.finished_at identify what was exported
    artifact   the run's summary.json
    status     MLflow's own: FINISHED (ok), FAILED (diverged, failed), KILLED (pruned)

Idempotent: a grucli run already in the experiment (same grucli.run_id and finished_at)
is skipped; one whose summary changed since (trained again) is replaced: the old MLflow
run deleted, the new one logged. An MLflow run left RUNNING (an export killed half way)
is replaced too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from grucli.errors import GrucliError
from grucli.export.runs import RunRecord

RUN_ID_TAG, FINISHED_TAG = "grucli.run_id", "grucli.finished_at"
STATUS = {"ok": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "pruned": "KILLED"}
PER_BATCH = {"params": 100, "tags": 100, "metrics": 1000}  # MLflow's log_batch limits
MAX_TAG = 5000


def write(runs: list[RunRecord], uri: str, artifacts: Path | None = None) -> dict[str, list[str]]:
    """Log each run; returns run keys by what happened: written, replaced, unchanged.
    `artifacts`: where a new MLflow experiment keeps its artifacts (DIR/<experiment>);
    None: the tracking server's default."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        # MLflow's INFO lines ("Creating initial MLflow database tables...") are not the
        # user's business; set after the import, which sets MLflow's own level
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    done: dict[str, list[str]] = {"written": [], "replaced": [], "unchanged": []}
    by_experiment: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    try:
        client = MlflowClient(tracking_uri=uri)
        for name, mine in by_experiment.items():
            exp_id = _experiment(client, name, artifacts)
            present = _present(client, exp_id)
            for run in mine:
                old = present.get(run.run_id, [])
                if any(r.data.tags.get(FINISHED_TAG) == run.finished_at and r.info.status != "RUNNING" for r in old):
                    done["unchanged"].append(run.key)
                    continue
                for r in old:
                    client.delete_run(r.info.run_id)
                _log(client, exp_id, run)
                done["replaced" if old else "written"].append(run.key)
    except (MlflowException, OSError) as e:  # (an OSError: the artifact folder cannot be written)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GrucliError(f"mlflow ({uri}): {first}") from None
    return done


def _experiment(client, name: str, artifacts: Path | None) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = (Path(artifacts) / name).resolve().as_uri() if artifacts else None
        return client.create_experiment(name, artifact_location=location)
    if exp.lifecycle_stage == "deleted":
        raise GrucliError(f"the MLflow experiment {name!r} was deleted: restore it (mlflow experiments restore "
                          f"--experiment-id {exp.experiment_id}) or remove it for good (mlflow gc), then export again")
    return exp.experiment_id


def _present(client, exp_id: str) -> dict[str, list]:
    """The experiment's active MLflow runs that came from grucli, by grucli run id."""
    out: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=f"tags.`{RUN_ID_TAG}` != ''", max_results=1000,
                                  page_token=token)
        for r in page:
            out.setdefault(r.data.tags[RUN_ID_TAG], []).append(r)
        token = page.token
        if not token:
            return out


def _log(client, exp_id: str, run: RunRecord) -> None:
    from mlflow.entities import Metric, Param

    tags = {**{k: v[:MAX_TAG] for k, v in run.tags.items() if v and k != "finished_at"},
            RUN_ID_TAG: run.run_id, FINISHED_TAG: run.finished_at}
    ms = lambda t: int(round(t * 1000))  # noqa: E731
    name = f"{run.tags.get('cell') or 'run'} seed {run.tags.get('seed', '?')} {run.run_id}"
    mlrun = client.create_run(exp_id, start_time=ms(run.start), tags=tags, run_name=name)
    rid = mlrun.info.run_id
    params = [Param(k, str(v)) for k, v in sorted(run.params.items())]
    metrics = [Metric(key, value, ms(run.epoch_times.get(epoch, run.end)), epoch)
               for key, values in run.series.items() for epoch, value in values]
    metrics += [Metric(key, value, ms(run.end), run.last_epoch) for key, value in run.final.items()]
    for i in range(0, len(params), PER_BATCH["params"]):
        client.log_batch(rid, params=params[i:i + PER_BATCH["params"]])
    for i in range(0, len(metrics), PER_BATCH["metrics"]):
        client.log_batch(rid, metrics=metrics[i:i + PER_BATCH["metrics"]])
    if run.summary_path.is_file():
        client.log_artifact(rid, str(run.summary_path))
    client.set_terminated(rid, status=STATUS[run.status], end_time=ms(run.end))

