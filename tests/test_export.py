"""grucli export: a results folder -> TensorBoard and MLflow, read back with each tracker's
own reader (TensorBoard's data provider and hparams plugin, MLflow's client on a SQLite
store). Values equal the run's files; exporting again adds nothing twice; a run trained
again is replaced, not doubled; failed and diverged runs carry their status; a tuned
folder exports its trials and final runs; its tune.db opens as Optuna's own storage."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from synthetic_results import write_run
from typer.testing import CliRunner

from grucli.cli import app

runner = CliRunner()
pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install 'grucli[tensorboard]'")
pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'grucli[mlflow]'")

TINY_TUNE = {
    "name": "tt",
    "task": {"name": "adding", "seq_len": 6, "n_train": 64, "n_val": 32, "n_test": 32},
    "model": {"cell": "gru", "hidden_size": 4},
    "train": {"epochs": 2, "batch_size": 32, "threads": 1, "eval_batch_size": 256},
    "grid": {"model.cell": ["gru"]},
    "search": {"trials": 2, "sampler": "random", "pruner": "none", "final_seeds": 1,
               "space": {"train.lr": {"log_uniform": [1.0e-3, 3.0e-2]}}},
}


def export(*args):
    return runner.invoke(app, ["export", *map(str, args)])


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Each test runs in an empty folder of its own: MLflow puts a new experiment's
    artifacts in ./mlruns when not told otherwise; nothing may land in the checkout."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """A trained compare of 2 runs (gru, lstm), plus a diverged (its last loss NaN), a
    failed and a pruned run in the store's format and a run still in progress (a config,
    no summary)."""
    from conftest import _tiny_experiment

    tmp = tmp_path_factory.mktemp("export")
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(_tiny_experiment(name="tiny", grid={"model.cell": ["gru", "lstm"]})))
    res = runner.invoke(app, ["compare", str(path), "--jobs", "1", "--results", str(tmp / "results")])
    assert res.exit_code == 0, res.output
    exp_dir = tmp / "results" / "tiny"
    diverged = write_run(exp_dir, "d1d1d1d10001", "rnn", 10, 0, experiment="tiny", status="diverged")
    hist = pd.read_csv(diverged / "history.csv")
    hist.loc[2, ["train_loss", "val_mse"]] = [float("nan"), float("inf")]  # where it diverged
    hist.to_csv(diverged / "history.csv", index=False)
    write_run(exp_dir, "f0f0f0f00002", "gru", 10, 1, experiment="tiny", status="failed")
    write_run(exp_dir, "b0b0b0b00004", "lstm", 10, 2, experiment="tiny", status="pruned")
    (exp_dir / "e0e0e0e00003").mkdir()
    (exp_dir / "e0e0e0e00003" / "config.yaml").write_text(yaml.safe_dump({"seed": 3}))
    return exp_dir


def finished(exp_dir: Path) -> dict[str, dict]:
    """run id -> summary of every finished run, straight from the files."""
    out = {}
    for p in sorted(exp_dir.glob("*/summary.json")):
        out[p.parent.name] = json.loads(p.read_text())
    return out


def flat(config: dict, prefix: str = "") -> dict:
    """{"model": {"hidden_size": 4}} -> {"model.hidden_size": 4}, null values left out."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def history(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv")  # parsed as the one reader parses it (pandas' default)


def curve(hist: pd.DataFrame, column: str) -> list[tuple[int, float]]:
    """(epoch, value) of a history column, its non-finite values left out (as exported)."""
    return [(e, v) for e, v in zip(hist["epoch"], hist[column]) if math.isfinite(v)]


# --------------------------------------------------------------------------- TensorBoard
def tensorboard_view(logdir: Path):
    """What TensorBoard's server reads: its multiplexer and data provider, and the hparams
    plugin's experiment (inferred from the sessions, as the HParams dashboard does)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context
    from tensorboard.plugins.hparams import metadata as hp_metadata

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    ctx = context.RequestContext()
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10_000)
    scalars = {run: {tag: [(p.step, p.value) for p in points] for tag, points in tags.items()}
               for run, tags in scalars.items()}
    plugin = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    meta = plugin.hparams_metadata(ctx, "")
    experiment = plugin.experiment_from_metadata(ctx, "", True, meta, plugin.hparams_from_data_provider(ctx, "", 0))
    sessions = {}
    for run, tags in meta.items():
        info = hp_metadata.parse_session_start_info_plugin_data(tags[hp_metadata.SESSION_START_INFO_TAG])
        sessions[run] = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}
    return scalars, sessions, experiment


def test_tensorboard_round_trip(compared, tmp_path):
    res = export(compared, "--to", "tensorboard", tmp_path / "tb")
    assert res.exit_code == 0, res.output
    assert "5 run(s) written" in res.output and "1 diverged, 1 failed, 2 ok, 1 pruned" in res.output, res.output
    assert "1 in progress" in res.output and "not exported" in res.output, res.output
    scalars, sessions, experiment = tensorboard_view(tmp_path / "tb")
    runs = finished(compared)
    assert set(sessions) == {f"tiny/{rid}" for rid in runs}  # one TensorBoard run per finished grucli run
    assert [p.name for p in (tmp_path / "tb" / "tiny").iterdir()] and all(
        len(list(d.iterdir())) == 1 for d in (tmp_path / "tb" / "tiny").iterdir())  # one event file each
    for rid, summary in runs.items():
        run = f"tiny/{rid}"
        hp = sessions[run]
        assert hp["status"] == summary["status"] and hp["experiment"] == "tiny"
        config = flat(summary["config"])
        assert {k: hp[k] for k in config} == config and hp["model.cell"] in ("gru", "lstm", "rnn")
        if summary["status"] == "failed":  # no history is read for a failed run: only what it ended with
            assert not any(t.startswith(("train/", "val/", "time/")) for t in scalars.get(run, {}))
            continue
        hist = history(compared / rid)
        epochs = list(hist["epoch"])
        for column, tag in [("train_loss", "train/loss"), ("val_mse", "val/mse"), ("epoch_time_s", "time/epoch_time_s"),
                            ("step", "train/steps")]:
            assert scalars[run][tag] == curve(hist, column), (run, tag)
        if summary["status"] == "diverged":  # its NaN and inf are left out, the rest is there
            assert len(scalars[run]["train/loss"]) == len(scalars[run]["val/mse"]) == len(epochs) - 1
        assert scalars[run]["final/test_mse"] == [(epochs[-1], summary["test"]["mse"])]
        assert scalars[run]["final/params"] == [(epochs[-1], summary["params"])]
    names = {h.name for h in experiment.hparam_infos}
    assert {"model.cell", "model.hidden_size", "train.lr", "seed", "status", "task.name"} <= names
    assert {"final/test_mse", "val/mse", "train/loss"} <= {m.name.tag for m in experiment.metric_infos}


def test_tensorboard_again_adds_nothing_and_a_retrained_run_is_replaced(compared, tmp_path):
    results = tmp_path / "results" / "tiny"
    shutil.copytree(compared, results)
    tb = tmp_path / "tb"
    assert export(results, "--to", "tensorboard", tb).exit_code == 0
    files = {p: p.read_bytes() for p in tb.rglob("*") if p.is_file()}
    res = export(results.parent, "--to", "tensorboard", tb)  # the results root: the same runs
    assert res.exit_code == 0 and "0 run(s) written, 0 replaced" in res.output and "5 already there" in res.output
    assert {p: p.read_bytes() for p in tb.rglob("*") if p.is_file()} == files
    # a run trained again (new history and summary under the same run id): replaced, not doubled
    rid = next(r for r, s in finished(results).items() if s["status"] == "ok")
    hist = history(results / rid)
    hist["train_loss"] = hist["train_loss"] / 2
    hist.to_csv(results / rid / "history.csv", index=False)
    summary = json.loads((results / rid / "summary.json").read_text())
    summary["finished_at"] = "2027-01-01T00:00:00+00:00"
    (results / rid / "summary.json").write_text(json.dumps(summary))
    res = export(results, "--to", "tensorboard", tb)
    assert res.exit_code == 0 and "0 run(s) written, 1 replaced" in res.output and "4 already there" in res.output
    assert sorted(p.relative_to(tb) for p in tb.rglob("*") if p.is_file()) == sorted(p.relative_to(tb) for p in files)
    scalars, _, _ = tensorboard_view(tb)
    assert [v for _, v in scalars[f"tiny/{rid}"]["train/loss"]] == list(history(results / rid)["train_loss"])


# --------------------------------------------------------------------------- MLflow
@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite tracking store for the module (creating its tables takes seconds)."""
    tmp = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{tmp / 'mlflow.db'}", tmp / "artifacts"


def mlflow_runs(uri: str, experiment: str) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment])


def test_mlflow_round_trip_and_again_adds_nothing(compared, tracking, tmp_path):
    from mlflow.tracking import MlflowClient

    uri, artifacts = tracking
    res = export(compared, "--to", "mlflow", uri, "--artifacts", artifacts)
    assert res.exit_code == 0 and "5 run(s) written" in res.output, res.output
    assert "INFO" not in res.output  # MLflow's own log lines are not the user's business
    found = mlflow_runs(uri, "tiny")  # the MLflow experiment is named after the results folder
    runs = finished(compared)
    assert sorted(found["tags.grucli.run_id"]) == sorted(runs)
    client = MlflowClient(tracking_uri=uri)
    for row in found.to_dict("records"):
        summary = runs[row["tags.grucli.run_id"]]
        assert row["tags.status"] == summary["status"] and row["tags.experiment"] == "tiny"
        assert row["tags.cell"] == summary["config"]["model"]["cell"] and row["tags.task"] == "adding"
        assert row["status"] == {"ok": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
                                 "pruned": "KILLED"}[summary["status"]]
        assert {k: row[f"params.{k}"] for k in flat(summary["config"])} == {
            k: str(v) for k, v in flat(summary["config"]).items()}
        assert row["metrics.final/test_mse"] == summary["test"]["mse"]
        if summary["status"] != "ok":
            assert row["tags.error"] == summary["error"]
        mlrun = row["run_id"]
        local = client.download_artifacts(mlrun, "summary.json", str(tmp_path / mlrun))
        assert json.loads(Path(local).read_text()) == summary
        assert str(artifacts) in row["artifact_uri"]
        if summary["status"] == "failed":
            continue
        hist = history(compared / row["tags.grucli.run_id"])
        for column, key in [("val_mse", "val/mse"), ("train_loss", "train/loss"), ("epoch_time_s", "time/epoch_time_s")]:
            logged = sorted((m.step, m.value) for m in client.get_metric_history(mlrun, key))
            assert logged == curve(hist, column), key
    res = export(compared, "--to", "mlflow", uri)
    assert res.exit_code == 0 and "0 run(s) written, 0 replaced" in res.output and "5 already there" in res.output
    assert len(mlflow_runs(uri, "tiny")) == 5


def test_mlflow_replaces_a_run_trained_again_and_one_an_export_left_running(compared, tracking, tmp_path):
    from mlflow.tracking import MlflowClient

    uri, _ = tracking
    results = tmp_path / "again"
    shutil.copytree(compared, results)
    assert export(results, "--to", "mlflow", uri).exit_code == 0
    rid = next(r for r, s in finished(results).items() if s["status"] == "ok")
    summary = json.loads((results / rid / "summary.json").read_text())
    summary["finished_at"] = "2027-01-01T00:00:00+00:00"
    (results / rid / "summary.json").write_text(json.dumps(summary))
    client = MlflowClient(tracking_uri=uri)
    other = next(r for r in mlflow_runs(uri, "again").to_dict("records") if r["tags.grucli.run_id"] != rid)
    client.update_run(other["run_id"], status="RUNNING")  # as an export killed half way leaves it
    res = export(results, "--to", "mlflow", uri)
    assert res.exit_code == 0 and "0 run(s) written, 2 replaced" in res.output and "3 already there" in res.output
    found = mlflow_runs(uri, "again")
    assert sorted(found["tags.grucli.run_id"]) == sorted(finished(results))  # each once
    assert found.set_index("tags.grucli.run_id").loc[rid, "tags.grucli.finished_at"] == summary["finished_at"]


# --------------------------------------------------------------------------- a tuned folder
def test_a_tuned_folder_exports_trials_and_final_runs_and_its_study_opens_in_optuna(tmp_path, tracking):
    import optuna

    path = tmp_path / "tt.yaml"
    path.write_text(yaml.safe_dump(TINY_TUNE))
    res = runner.invoke(app, ["tune", str(path), "--jobs", "1", "--results", str(tmp_path / "results")])
    assert res.exit_code == 0, res.output
    exp_dir = tmp_path / "results" / "tt"
    finals = {r for arm in json.loads((exp_dir / "tune.json").read_text())["arms"] for r in arm["final_runs"]}
    url = f"sqlite:///{exp_dir / 'tune.db'}"  # what the README gives optuna-dashboard
    (name,) = optuna.get_all_study_names(storage=url)
    numbers = {t.user_attrs["run_id"]: str(t.number) for t in optuna.load_study(study_name=name, storage=url).get_trials()}
    trials = set(numbers)
    assert len(trials) == 2 and len(finals) == 1 and name == "model.cell=gru"

    uri, _ = tracking
    assert export(exp_dir, "--to", "mlflow", uri).exit_code == 0
    found = mlflow_runs(uri, "tt")
    roles = dict(zip(found["tags.grucli.run_id"], found["tags.role"]))
    assert roles == {**{r: "trial" for r in trials}, **{r: "final" for r in finals}}
    assert set(found["tags.arm"]) == {name}  # the arm's label, as the study is named
    assert {r: n for r, n in zip(found["tags.grucli.run_id"], found["tags.trial"]) if r in trials} == numbers
    assert export(exp_dir, "--to", "tensorboard", tmp_path / "tb").exit_code == 0
    _, sessions, _ = tensorboard_view(tmp_path / "tb")
    assert {run.split("/")[1]: hp["role"] for run, hp in sessions.items()} == roles
    assert {run.split("/")[1]: hp["trial"] for run, hp in sessions.items() if "trial" in hp} == numbers


# --------------------------------------------------------------------------- bad input
def test_bad_arguments_are_one_line_exit_2(compared, tmp_path):
    cases = [
        ((compared, "--to", "wandb", tmp_path / "x"), "--to wandb: unknown tracker; expected one of tensorboard, mlflow"),
        ((tmp_path / "nothing", "--to", "tensorboard", tmp_path / "x"), "no such results folder"),
        ((compared, "--to", "tensorboard", tmp_path / "x", "--artifacts", tmp_path), "--artifacts is not an option"),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append(((empty, "--to", "tensorboard", tmp_path / "x"), "no runs here"))
    for args, message in cases:
        res = export(*args)
        assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("to", ["tensorboard", "mlflow"])
def test_a_missing_extra_is_one_line_naming_the_pip_command(compared, tmp_path, monkeypatch, to):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == to else find_spec(name, *a))
    res = export(compared, "--to", to, tmp_path / "x")
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: grucli export --to {to} needs the {to} package: pip install 'grucli[{to}]'"
