"""grucli tune: the search space and its bad inputs, seeded sampling, resuming after a
kill to exactly N counted trials per arm, pruning recorded as such, refusing a study made
from another space, the tuned comparison and its report section, and importance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from grucli.cli import app
from grucli.config import load_experiment

runner = CliRunner()

TINY = {
    "name": "tt",
    "task": {"name": "adding", "seq_len": 6, "n_train": 64, "n_val": 32, "n_test": 32},
    "model": {"hidden_size": 4},
    "train": {"epochs": 4, "batch_size": 32, "threads": 1, "eval_batch_size": 256},
    "grid": {"model.cell": ["gru", "lstm"]},
    "search": {"trials": 3, "sampler": "random", "pruner": "none", "final_seeds": 2,
               "space": {"train.lr": {"log_uniform": [1.0e-3, 3.0e-2]}, "model.hidden_size": {"choice": [4, 6]}}},
}


def write(tmp_path: Path, data: dict | str, name: str = "tt.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def with_search(**changes) -> dict:
    exp = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        if key == "space":
            exp["search"]["space"] = value
        else:
            exp["search"][key] = value
    return exp


def studies(exp_dir: Path) -> dict[str, list]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{exp_dir / 'tune.db'}"
    return {name: optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
            for name in optuna.get_all_study_names(storage=url)}


def tune(path: Path, results: Path, *extra):
    return runner.invoke(app, ["tune", str(path), "--results", str(results), "--jobs", "1", *extra])


# --------------------------------------------------------------------------- the space
@pytest.mark.parametrize("space,message", [
    ({"train.lr": {"normal": [0.1, 0.2]}}, "search.space.train.lr: unknown distribution 'normal'"),
    ({"train.lr": {"uniform": [0.3, 0.2]}}, "search.space.train.lr: uniform: low 0.3 > high 0.2"),
    ({"train.lr": {"log_uniform": [0.0, 0.2]}}, "search.space.train.lr: log_uniform: a log range needs low > 0"),
    ({"train.lrr": {"uniform": [0.1, 0.2]}}, "search.space.train.lrr = 0.1: unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    ({"model.dropout": {"uniform": [0.0, 1.5]}}, "search.space.model.dropout = 1.5: model.dropout"),
    ({"model.cell": {"choice": ["gru", "rnn"]}}, "search.space.model.cell: also a grid axis"),
    ({"lr": {"uniform": [0.1, 0.2]}}, "search.space.lr: searched keys are task.*, model.* or train.* keys"),
    ({}, "search.space: the search space is empty"),
])
def test_a_bad_space_is_one_line_naming_the_key_and_writes_nothing(tmp_path, space, message):
    path = write(tmp_path, with_search(space=space))
    res = tune(path, tmp_path / "results")
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1 and message in res.output, res.output
    assert str(path) in res.output and not (tmp_path / "results").exists()


@pytest.mark.parametrize("changes,message", [
    ({"trials": 0}, "search.trials: Input should be greater than or equal to 1"),
    ({"trails": 3}, "unknown key 'search.trails' (did you mean 'search.trials'?)"),
    ({"sampler": "grid"}, "sampler grid: space.train.lr is a continuous range"),
    ({"pruner": "hyper"}, "search.pruner"),
])
def test_bad_search_settings_are_one_line(tmp_path, changes, message):
    res = tune(write(tmp_path, with_search(**changes)), tmp_path / "results")
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_a_grid_sampler_cannot_run_more_trials_than_its_grid(tmp_path):
    path = write(tmp_path, with_search(sampler="grid", trials=3, space={"model.hidden_size": {"choice": [4, 6]}}))
    res = tune(path, tmp_path / "results")
    assert res.exit_code == 2 and "the grid sampler's space has 2 points" in res.output, res.output


def test_compare_refuses_a_tuned_file_and_tune_a_plain_one(tmp_path):
    res = runner.invoke(app, ["compare", str(write(tmp_path, TINY)), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "run it with `grucli tune" in res.output
    plain = {k: v for k, v in TINY.items() if k != "search"}
    res = tune(write(tmp_path, plain, "plain.yaml"), tmp_path / "r")
    assert res.exit_code == 2 and "no search: section" in res.output


def test_set_reaches_the_search_and_a_set_key_leaves_the_space(tmp_path):
    path = write(tmp_path, TINY)
    exp = load_experiment(path, ["search.trials=5", "search.space.train.weight_decay={uniform: [0.0, 0.1]}"])
    assert exp.search.trials == 5 and set(exp.search.space) == {"train.lr", "model.hidden_size", "train.weight_decay"}
    exp = load_experiment(path, ["train.lr=0.01"])
    assert set(exp.search.space) == {"model.hidden_size"}


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    path = write(tmp, TINY)
    res = tune(path, tmp / "results")
    assert res.exit_code == 0, res.output
    return path, tmp / "results" / "tt", res.output


def test_a_tiny_tune_writes_the_study_trials_and_final_runs(tuned):
    _, exp_dir, output = tuned
    found = studies(exp_dir)
    assert set(found) == {"model.cell=gru", "model.cell=lstm"}
    for trials in found.values():
        assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
        assert all((exp_dir / t.user_attrs["run_id"] / "summary.json").is_file() for t in trials)
    manifest = json.loads((exp_dir / "tune.json").read_text())
    for arm in manifest["arms"]:
        assert arm["trials_done"] == 3 and len(arm["final_runs"]) == 2
        finals = [json.loads((exp_dir / r / "summary.json").read_text()) for r in arm["final_runs"]]
        assert sorted(s["seed"] for s in finals) == [1, 2]  # fresh seeds, never the trials' seed 0
        assert all(s["config"]["train"]["lr"] == arm["best"]["params"]["train.lr"] for s in finals)
    trials = pd.read_csv(exp_dir / "trials.csv")
    assert len(trials) == 6 and set(trials["state"]) == {"ok"} and "param.train.lr" in trials
    assert "Answer" in output and "at an equal budget of 3 trials per cell" in output
    assert "Holm over 1 comparison" in output and ("gru vs lstm" in output or "than" in output or "equivalent" in output)


def test_the_same_seed_proposes_the_same_trials_and_every_arm_the_same_points(tuned, tmp_path):
    path, exp_dir, _ = tuned
    assert tune(path, tmp_path / "again").exit_code == 0
    a, b = pd.read_csv(exp_dir / "trials.csv"), pd.read_csv(tmp_path / "again" / "tt" / "trials.csv")
    cols = ["arm", "trial", "param.train.lr", "param.model.hidden_size", "value"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    gru, lstm = (a[a["arm"] == arm]["param.train.lr"].tolist() for arm in ("model.cell=gru", "model.cell=lstm"))
    assert gru == lstm  # random search: trial k of every arm from the same seed (a paired comparison)


def test_running_again_trains_nothing(tuned):
    path, exp_dir, _ = tuned
    before = sorted(p.name for p in exp_dir.iterdir())
    res = tune(path, exp_dir.parent)
    assert res.exit_code == 0 and "3/3 trials done, 0 to run" in res.output
    assert sorted(p.name for p in exp_dir.iterdir()) == before


def test_dry_run_lists_arms_space_and_progress_and_writes_nothing(tuned, tmp_path):
    path, exp_dir, _ = tuned
    res = tune(path, exp_dir.parent, "--dry-run")
    assert res.exit_code == 0
    assert "arm model.cell=gru: 3/3 trials done" in res.output and "search train.lr: log-uniform" in res.output
    res = tune(path, tmp_path / "fresh", "--dry-run")
    assert "0/3 trials done, 3 to run" in res.output and not (tmp_path / "fresh").exists()
    assert "then 2 final seeds per arm; packs of up to 3 trials of one shape;" in res.output  # auto, one worker
    assert "packs of" not in tune(path, tmp_path / "fresh", "--dry-run", "--pack", "1").output


def test_a_study_made_from_another_space_is_refused(tuned, tmp_path):
    path, exp_dir, _ = tuned
    other = with_search(space={"train.lr": {"log_uniform": [1.0e-4, 1.0e-2]}, "model.hidden_size": {"choice": [4, 6]}})
    res = tune(write(tmp_path, other), exp_dir.parent)
    assert res.exit_code == 2 and "made from another" in res.output and "search.space" in res.output, res.output
    changed = json.loads(json.dumps(TINY))
    changed["task"]["seq_len"] = 7
    res = tune(write(tmp_path, changed, "t2.yaml"), exp_dir.parent)
    assert res.exit_code == 2 and "task.seq_len" in res.output, res.output


def test_report_on_a_tune_folder_has_the_tuned_comparison(tuned, tmp_path):
    _, exp_dir, _ = tuned
    res = runner.invoke(app, ["report", str(exp_dir), "--out", str(tmp_path / "rep"), "--format", "md"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Tuned comparison" in md and "at an equal budget of 3 trials per cell" in md.lower()
    for name in ("tt_tune_best_so_far.png", "tt_tune_sensitivity.png", "tt_tune_importance.png"):
        assert (tmp_path / "rep" / "figures" / name).is_file(), name
    for name in ("tt_tuned_comparison", "tt_tuned_head_to_head", "tt_tuned_importance", "tt_tuned_best_so_far"):
        assert (tmp_path / "rep" / "tables" / f"{name}.csv").is_file(), name
    summary = pd.read_csv(tmp_path / "rep" / "tables" / "summary.csv")
    assert summary["n"].sum() == 4  # the generic tables use the final runs only, not the 6 trials


# --------------------------------------------------------------------------- interruption
@pytest.mark.parametrize("pack", ["1", "auto"])
def test_a_trial_left_running_is_retried_and_every_arm_ends_with_exactly_n(tmp_path, pack):
    """Interrupt the tune inside a trial (after Optuna handed it out, before it ended): the
    study keeps a RUNNING trial, as after kill -9. The same command marks it interrupted,
    trains its parameters again, and each arm ends with exactly `trials` counted trials.
    Packed, the driver had asked for a whole pack of trials: every one of them is retried."""
    from grucli.commands import common

    path = write(tmp_path, TINY)
    started = []

    class Boom(Exception):
        pass

    original = common.ProgressReporter.run_started

    def run_started(self, run):
        started.append(run.run_id)
        original(self, run)
        if len(started) == 3:
            raise KeyboardInterrupt

    common.ProgressReporter.run_started = run_started
    try:
        res = tune(path, tmp_path / "r", "--pack", pack)
    finally:
        common.ProgressReporter.run_started = original
    assert res.exit_code == 130
    exp_dir = tmp_path / "r" / "tt"
    running = [t for ts in studies(exp_dir).values() for t in ts if t.state.name == "RUNNING"]
    assert len(running) == 1 if pack == "1" else len(running) >= 1
    res = tune(path, tmp_path / "r", "--pack", pack)
    assert res.exit_code == 0, res.output
    if pack == "1":
        assert "1 interrupted by a kill: retried with the same parameters" in res.output
    for trials in studies(exp_dir).values():
        states = [t.user_attrs.get("grucli_state") for t in trials]
        assert states.count("ok") == 3 and "running" not in states
    retried = [t for ts in studies(exp_dir).values() for t in ts if "retry_of" in t.user_attrs]
    assert sorted(map(str, (t.params for t in retried))) == sorted(map(str, (t.params for t in running)))


def test_resume_after_sigkill_of_a_parallel_tune(tmp_path):
    """kill -9 the whole process tree of `grucli tune --jobs 2` mid-study: the same command
    finishes it with exactly `trials` counted trials per arm and none RUNNING."""
    exp = json.loads(json.dumps(TINY))
    exp["search"].update(trials=4, pruner="asha", warmup_epochs=1)
    exp["task"]["n_train"] = 600
    exp["train"]["epochs"] = 3
    path = write(tmp_path, exp)
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "grucli", "tune", str(path), "--jobs", "2", "--results", str(results)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    exp_dir = results / "tt"
    deadline = time.time() + 240
    while time.time() < deadline:
        done = list(exp_dir.glob("*/summary.json")) if exp_dir.exists() else []
        if 1 <= len(done) < 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for name, trials in studies(exp_dir).items():
        counted = [t for t in trials if t.user_attrs.get("grucli_state") in ("ok", "pruned", "diverged", "failed")]
        assert len(counted) == 4, (name, [(t.number, t.state.name, t.user_attrs) for t in trials])
        assert not [t for t in trials if t.state.name == "RUNNING"]
    manifest = json.loads((exp_dir / "tune.json").read_text())
    assert all(len(a["final_runs"]) == 2 for a in manifest["arms"] if a["best"])


# --------------------------------------------------------------------------- pruning
def test_a_pruned_trial_is_a_run_folder_with_status_pruned_whose_history_is_a_prefix(tmp_path):
    """ASHA with a warm-up of one epoch prunes most trials of a wide search; each pruned
    trial's run folder says pruned, and its history equals the first epochs of the same
    config trained without a pruner."""
    from grucli.train.loop import train_run

    exp = json.loads(json.dumps(TINY))
    exp["search"].update(trials=6, pruner="asha", warmup_epochs=1, space={"train.lr": {"log_uniform": [1e-4, 0.3]}})
    exp["grid"] = {"model.cell": ["gru"]}
    exp["train"]["epochs"] = 6
    res = tune(write(tmp_path, exp), tmp_path / "r")
    assert res.exit_code == 0, res.output
    exp_dir = tmp_path / "r" / "tt"
    trials = pd.read_csv(exp_dir / "trials.csv")
    pruned = trials[trials["state"] == "pruned"]
    assert len(pruned) >= 1, trials
    row = pruned.iloc[0]
    summary = json.loads((exp_dir / row["run_id"] / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["stopped_by"] == "pruned" and "pruned by asha" in summary["error"]
    history = pd.read_csv(exp_dir / row["run_id"] / "history.csv", float_precision="round_trip")  # exact floats
    assert len(history) < 6
    from grucli.config import RunConfig

    full = train_run(RunConfig(**summary["config"]))
    assert [r["val_mse"] for r in full.history][:len(history)] == history["val_mse"].tolist()


# --------------------------------------------------------------------------- talking with tune.db
def study_record(exp_dir: Path) -> dict:
    """What a finished study holds, timing aside: every trial of every arm (state, value,
    params, user attrs, each epoch's reported value), trials.csv and tune.json."""
    trials = {arm: [(t.number, t.state.name, t.value, t.params, t.user_attrs, t.intermediate_values)
                    for t in found] for arm, found in studies(exp_dir).items()}
    table = pd.read_csv(exp_dir / "trials.csv", float_precision="round_trip").drop(columns="duration_s")
    manifest = json.loads((exp_dir / "tune.json").read_text())
    manifest.pop("updated_at")
    table = table.astype(object).where(table.notna(), None)  # (NaN != NaN)
    return {"trials": trials, "table": table.to_dict("list"), "manifest": manifest}


def test_without_a_pruner_no_worker_opens_the_study_and_it_holds_what_the_workers_reported(tmp_path, monkeypatch):
    """Without a pruner the trials' workers never open tune.db: the driver tells the study
    each epoch's value from the run's history.csv. The study it leaves (each trial's curve
    to the last bit, states, attrs), trials.csv and tune.json are those of the same study
    whose workers reported every epoch as it ended, as they did before."""
    from grucli.tune import run as tuning, study as st

    path = write(tmp_path, TINY)
    opened = set()  # the trials whose worker opened the study
    real = st._Pruning._trial
    monkeypatch.setattr(st._Pruning, "_trial", lambda self: opened.add(self.watch.trial_id) or real(self))
    assert tune(path, tmp_path / "told").exit_code == 0
    assert opened == set()

    def watched(self, state, trial, cfg):  # a watcher for every trial, as without this change
        s = self.tr.search
        return st.TrialWatch(st.storage_url(self.tr.exp_dir), state.arm.label, trial._trial_id, s.pruner,
                             self.warmups[state.arm.index], f"val_{self.tr.select}", cfg.train.epochs,
                             s.plateau, self.tr.select_goal)

    monkeypatch.setattr(tuning._Trials, "_watch", watched)
    monkeypatch.setattr(tuning._Trials, "_reported", lambda self, trial: set(
        self.st.get_trial(trial._trial_id).intermediate_values))
    assert tune(path, tmp_path / "reported").exit_code == 0
    assert len(opened) == 2 * 3, "each trial's worker reported"
    told, reported = study_record(tmp_path / "told" / "tt"), study_record(tmp_path / "reported" / "tt")
    assert all(len(t[-1]) == TINY["train"]["epochs"] for found in told["trials"].values() for t in found)
    assert told == reported


def test_a_seeded_pruned_study_decides_the_same_with_a_study_kept_open_per_worker(tmp_path, monkeypatch):
    """A worker keeps tune.db and Optuna's cache of the study open from run to run (reading
    only what changed), and the study commits to SQLite's write-ahead log: the median pruner
    stops the same trials at the same epochs, and the study holds the same curves, as when
    every run opened a storage and study of its own on tune.db in SQLite's default journal."""
    import optuna

    from grucli.tune import study as st

    exp = json.loads(json.dumps(TINY))
    exp["search"].update(trials=10, pruner="median", plateau="prune", warmup_epochs=1,
                         space={"train.lr": {"log_uniform": [1e-4, 0.3]}})
    exp["grid"] = {"model.cell": ["gru"]}
    exp["train"]["epochs"] = 5
    path = write(tmp_path, exp)
    assert tune(path, tmp_path / "kept").exit_code == 0

    def fresh(url, name, judge):  # each run: its own storage and study, the default journal
        return optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(url), pruner=judge)

    monkeypatch.setattr(st, "_worker_study", fresh)
    monkeypatch.setattr(st, "fast_commits", lambda storage, switch=True: None)
    assert tune(path, tmp_path / "fresh").exit_code == 0
    kept, fresh_ = study_record(tmp_path / "kept" / "tt"), study_record(tmp_path / "fresh" / "tt")
    states = kept["table"]["state"]
    assert "pruned" in states and "ok" in states, states  # the median pruner had something to decide
    assert kept == fresh_


def _is_one_plain_sqlite_file(db: Path) -> None:
    """No -wal or -shm beside tune.db, and its journal mode the default (rollback) one."""
    import sqlite3

    assert sorted(p.name for p in db.parent.glob(db.name + "*")) == [db.name]
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        connection.close()


def test_a_finished_study_leaves_tune_db_one_plain_sqlite_file(tuned):
    """The write-ahead log is folded back when the study ends: no tune.db-wal or -shm beside
    it, and its journal mode is the default again (readable in a read-only folder)."""
    _, exp_dir, _ = tuned
    _is_one_plain_sqlite_file(exp_dir / "tune.db")


@pytest.mark.slow
def test_a_pruned_study_on_ray_leaves_tune_db_one_plain_sqlite_file(tmp_path):
    """Ray's workers outlive the study (they keep running until the driver exits): each
    closes its connection to tune.db when its pack ends, so the driver can fold the log
    back (it stayed in WAL mode, with its -wal and -shm files, when they kept one open)."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    exp = json.loads(json.dumps(TINY))
    exp["search"].update(trials=4, pruner="median", warmup_epochs=1, final_seeds=1)
    exp["grid"] = {"model.cell": ["gru"]}
    command = [sys.executable, "-m", "grucli", "tune", str(write(tmp_path, exp)), "--executor", "ray", "--jobs", "2",
               "--results", str(tmp_path / "r")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _is_one_plain_sqlite_file(tmp_path / "r" / "tt" / "tune.db")


# --------------------------------------------------------------------------- importance
def test_importance_ranks_the_one_hyperparameter_that_matters_first(tmp_path):
    """A synthetic study: the value depends on x only, y is noise. fANOVA on it (through the
    report's reader, from trials.csv alone) puts x first, with a spread."""
    import numpy as np

    from grucli.tune import analysis

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 30), rng.uniform(-1, 1, 30)
    value = (x - 0.3) ** 2 + 0.01 * rng.standard_normal(30)
    trials = pd.DataFrame({"arm": "a", "trial": range(30), "state": "ok", "value": value, "param.x": x, "param.y": y})
    (tmp_path / "trials.csv").write_text(trials.to_csv(index=False))
    space = {k: {"kind": "uniform", "low": -1.0, "high": 1.0, "choices": []} for k in ("x", "y")}
    manifest = {"name": "syn", "metric": "mse", "goal": "min", "space": space,
                "arms": [{"label": "a", "final_runs": [], "best": None}],
                "budget": {"trials": 30, "sampler": "random", "pruner": "none", "warmup_epochs": 1, "epochs": 1,
                           "final_seeds": [1]}}
    (tmp_path / "tune.json").write_text(json.dumps(manifest))
    imp = analysis.importance(analysis.load(tmp_path, runs=pd.DataFrame()), resamples=10)
    by = imp.set_index("param")
    assert by.loc["x", "importance"] > 0.8 > by.loc["y", "importance"]
    assert by.loc["x", "lo"] < by.loc["x", "hi"] and by.loc["x", "lo"] > by.loc["y", "hi"]  # a spread, apart


def test_the_study_records_are_not_rewritten_after_every_trial(write_yaml, tiny_experiment, tmp_path, monkeypatch):
    """trials.csv and tune.json are rebuilt from every trial of the study: rewritten after
    each trial, a study cost O(N^2). While trials run they are rewritten every few seconds
    (RECORDS_EVERY_S), and always once the trials are done; the files are complete."""
    from grucli.tune import run as tuning

    exp = tiny_experiment(name="tt")
    exp["search"] = {"trials": 6, "sampler": "random", "pruner": "none",
                     "space": {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, "final_seeds": 1}
    real, calls = tuning.write_records, []
    monkeypatch.setattr(tuning, "write_records", lambda *a: (calls.append(1), real(*a)))
    monkeypatch.setattr(tuning, "RECORDS_EVERY_S", 3600.0)
    tuning.run(write_yaml(exp), results=tmp_path / "r", executor="inline", pack=1)
    assert len(calls) == 3, "at the start, after the trials, after the final runs: not per trial"
    trials = pd.read_csv(tmp_path / "r" / "tt" / "trials.csv")
    assert len(trials) == 6 and set(trials["state"]) == {"ok"}


@pytest.mark.parametrize("changes,message", [
    ({"grid": {"model.cell": ["gru", "lstmm"]}}, "tt.yaml [grid point model.cell=lstmm]: model.cell: unknown cell 'lstmm'"),
    ({"model": {"hidden_size": 4, "dropot": 0.1}}, "tt.yaml:10: unknown key 'model.dropot'"),
])
def test_an_arm_s_own_mistake_is_not_blamed_on_the_search_space(tmp_path, changes, message):
    """(A new user's `model.cell: [gru, lstmm]` was reported as 'search.space.train.lr = 0.001: ...'.)"""
    path = write(tmp_path, {**TINY, **changes})
    res = tune(path, tmp_path / "results")
    assert res.exit_code == 2 and message in res.output and "search.space" not in res.output, res.output
    assert not (tmp_path / "results").exists()
