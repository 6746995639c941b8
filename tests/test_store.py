"""The results folder: atomic writes, run states, what a run folder holds, and a tidy
table that pandas can read without grucli."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from grucli.store import runs as runs_table
from grucli import execute, store
from grucli.store import reader
from grucli.config import RunConfig, load_experiment
from grucli.grid import expand, run_id
from grucli.model import SequenceModel
from grucli.objectives import Regression
from grucli.train import stacked
from grucli.train.loop import RunResult, train_run


@pytest.fixture
def grid_runs(write_yaml, tiny_experiment):
    """Two tiny runs (gru, lstm) on adding."""
    exp = load_experiment(write_yaml(tiny_experiment(name="store", grid={"model.cell": ["gru", "lstm"]})))
    return expand(exp)


def leftovers(folder):
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    store.atomic_write_text(path, "one")
    store.atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "summary.json"
    store.atomic_write_text(path, "old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, fail_at, broken)
    with pytest.raises(OSError, match="disk full"):
        store.atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# --------------------------------------------------------------------------- run states
def test_run_states(tmp_path):
    run_dir = tmp_path / "abc"
    assert store.run_state(run_dir) == "todo"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 0\n")
    assert store.run_state(run_dir) == "partial", "files but no summary"
    (run_dir / "summary.json").write_text('{"status": "ok", "test": {"ms')
    assert store.run_state(run_dir) == "partial", "a truncated summary does not count"
    (run_dir / "summary.json").write_text('{"status": "running"}')
    assert store.run_state(run_dir) == "partial", "an unknown status does not count"
    for status, state in [("ok", "done"), ("failed", "failed"), ("diverged", "diverged")]:
        (run_dir / "summary.json").write_text(json.dumps({"status": status}))
        assert store.run_state(run_dir) == state


def test_plan_retrains_partial_and_todo_runs_only(tmp_path, grid_runs):
    gru, lstm = grid_runs
    (tmp_path / gru.run_id).mkdir()
    (tmp_path / gru.run_id / "history.csv").write_text("epoch\n1\n")
    plan = execute.plan(grid_runs, tmp_path)
    assert plan.states == {gru.run_id: "partial", lstm.run_id: "todo"}
    assert [r.run_id for r in plan.todo] == [gru.run_id, lstm.run_id]
    for run, status in [(gru, "ok"), (lstm, "failed")]:
        store.atomic_write_text(tmp_path / run.run_id / "summary.json", json.dumps({"status": status}))
    assert execute.plan(grid_runs, tmp_path).todo == []
    assert [r.run_id for r in execute.plan(grid_runs, tmp_path, retry_failed=True).todo] == [lstm.run_id]


# --------------------------------------------------------------------------- a run folder
@pytest.fixture
def stored(tmp_path, grid_runs):
    """Both runs trained and written; returns (experiment folder, runs, results)."""
    exp_dir = tmp_path / "results" / "store"
    results = []
    for run in grid_runs:
        result = train_run(run.config)
        store.write_run(exp_dir, run, result, "store")
        results.append(result)
    return exp_dir, grid_runs, results


def test_run_folder_files(stored):
    exp_dir, runs, results = stored
    for run, result in zip(runs, results):
        run_dir = exp_dir / run.run_id
        assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "history.csv", "model.pt", "summary.json"]
        # config.yaml is the fully resolved config: it validates and hashes back to the folder name
        cfg = RunConfig(**yaml.safe_load((run_dir / "config.yaml").read_text()))
        assert cfg == run.config and run_id(cfg) == run.run_id
        history = pd.read_csv(run_dir / "history.csv")
        assert len(history) == len(result.history)
        assert {"epoch", "train_loss", "val_mse", "epoch_time_s", "train_time_s", "wall_time_s"} <= set(history)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["run_id"] == run.run_id
        assert summary["params"] == result.params and summary["test"] == pytest.approx(result.test)
        assert summary["cell"] == run.config.model.cell and summary["config"]["model"]["cell"] == summary["cell"]
        for key in ("metric", "baseline", "timing", "env", "reached_target", "time_to_target_s"):
            assert key in summary
    assert leftovers(exp_dir) == []


def test_saved_weights_rebuild_the_model(stored):
    exp_dir, runs, results = stored
    saved = torch.load(exp_dir / runs[1].run_id / "model.pt", weights_only=True)
    meta, cfg = saved["meta"], saved["config"]
    model = SequenceModel(cfg["model"]["cell"], input_size=meta["input_size"], output_size=meta["output_size"],
                          hidden_size=meta["hidden_size"], head=meta["head"], tokens=meta["tokens"])
    model.load_state_dict(saved["state_dict"])
    assert all(torch.equal(v, results[1].state_dict[k]) for k, v in model.state_dict().items())


def test_failed_and_diverged_runs_are_stored_with_their_status(tmp_path, grid_runs, monkeypatch):
    gru, lstm = grid_runs
    failed = RunResult(status="failed", error="RuntimeError: boom", traceback="Traceback ...\nRuntimeError: boom")
    store.write_run(tmp_path, gru, failed, "store")
    monkeypatch.setattr(Regression, "loss_terms", lambda self, out, y: out * float("nan"))  # (its loss is their mean)
    head_loss = stacked.Stacked.head_loss  # (a stacked step computes it with the output layer, in the kernels)
    monkeypatch.setattr(stacked.Stacked, "head_loss", lambda self, *a: head_loss(self, *a) * float("nan"))
    store.write_run(tmp_path, lstm, train_run(lstm.config), "store")
    assert store.run_state(tmp_path / gru.run_id) == "failed"
    assert store.run_state(tmp_path / lstm.run_id) == "diverged"
    assert not (tmp_path / gru.run_id / "model.pt").exists()
    summary = json.loads((tmp_path / gru.run_id / "summary.json").read_text())
    assert summary["error"] == "RuntimeError: boom" and "Traceback" in summary["traceback"]


# --------------------------------------------------------------------------- the tidy table
def test_load_runs_is_one_flat_row_per_finished_run(stored):
    exp_dir, runs, results = stored
    (exp_dir / "deadbeef0000").mkdir()  # a partial run is not a row
    (exp_dir / "deadbeef0000" / "config.yaml").write_text("seed: 0\n")
    df = runs_table.load_runs(exp_dir)
    assert len(df) == 2
    assert sorted(df["run_id"]) == sorted(r.run_id for r in runs)
    for column in ("config.model.cell", "config.task.seq_len", "test.mse", "timing.epoch_time_s", "params",
                   "status", "seed", "env.torch"):
        assert column in df.columns, column
    assert "traceback" not in df.columns
    row = df.set_index("run_id").loc[runs[1].run_id]
    assert row["config.model.cell"] == "lstm"
    assert row["test.mse"] == pytest.approx(results[1].test["mse"])


def test_load_runs_of_an_empty_folder(tmp_path):
    assert runs_table.load_runs(tmp_path).empty


def test_runs_csv_is_readable_with_pandas_alone(stored):
    exp_dir, runs, results = stored
    path = runs_table.write_runs_table(exp_dir)
    assert path == exp_dir / "runs.csv"
    code = (
        "import json, sys\n"
        "import pandas as pd\n"
        "runs = pd.read_csv(sys.argv[1])\n"
        "assert 'grucli' not in sys.modules and 'torch' not in sys.modules\n"
        "print(json.dumps({r: m for r, m in zip(runs['run_id'], runs['test.mse'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=exp_dir)
    assert out.returncode == 0, out.stderr
    by_id = json.loads(out.stdout)
    assert by_id == pytest.approx({r.run_id: res.test["mse"] for r, res in zip(runs, results)})


def test_a_parquet_failure_is_a_warning_and_runs_csv_is_still_written(stored, monkeypatch):
    """pyarrow present but the write fails (a column it cannot type, a full disk): the grid
    must not stop over an optional copy of runs.csv."""
    import sys
    import types

    import pandas as pd

    exp_dir, runs, results = stored
    monkeypatch.setitem(sys.modules, "pyarrow", types.ModuleType("pyarrow"))

    def broken(self, *args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    (exp_dir / "runs.csv").unlink(missing_ok=True)
    with pytest.warns(RuntimeWarning, match="runs.parquet not written.*no space left"):
        path = runs_table.write_runs_table(exp_dir)
    assert path.is_file() and len(pd.read_csv(path)) == len(runs)


# --------------------------------------------------------------------------- steady-state timing
def test_steady_timing_is_the_median_after_the_first_epoch():
    t = store.steady_timing([0.9, 0.010, 0.030, 0.012], [4, 4, 4, 4], 128)
    assert t == {"epoch_time_s": 0.012, "first_epoch_time_s": 0.9, "epoch_time_steady": True,
                 "throughput_seq_s": pytest.approx(128 / 0.012)}
    # the last epoch cut short by max_steps (1 step of 4) counts as a whole epoch: 0.003 x 4
    assert store.steady_timing([0.9, 0.010, 0.003], [4, 4, 1], 128)["epoch_time_s"] == pytest.approx(0.011)
    one = store.steady_timing([0.5], [4], 128)
    assert one["epoch_time_s"] == one["first_epoch_time_s"] == 0.5 and one["epoch_time_steady"] is False
    assert store.steady_timing([], [], None)["epoch_time_s"] is None


def old_style(run_dir):
    """Make a summary look written before steady-state timing: epoch_time_s the mean over
    every epoch, throughput over all sequences, no first_epoch_time_s nor pack_id."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    times = pd.read_csv(run_dir / "history.csv")["epoch_time_s"]
    t = summary["timing"]
    seqs = 64 * t["epochs"]  # the tiny task: 64 training sequences per epoch
    for key in ("first_epoch_time_s", "epoch_time_steady", "pack_id"):
        t.pop(key)
    t["epoch_time_s"], t["throughput_seq_s"] = float(times.mean()), seqs / t["train_time_s"]
    path.write_text(json.dumps(summary))
    return t


def test_the_reader_recomputes_steady_timing_for_older_summaries(stored):
    exp_dir, runs, results = stored
    gru, lstm = (exp_dir / r.run_id for r in runs)
    (exp_dir / gru.name / "history.csv").write_text(  # a slow first epoch, so the mean and median differ
        pd.read_csv(gru / "history.csv").assign(epoch_time_s=[0.8, 0.01]).to_csv(index=False))
    old_style(gru)
    old_style(lstm)
    (lstm / "history.csv").unlink()
    col = reader.collect([exp_dir], histories=False)
    df = col.runs.set_index("run_id")
    g, l = df.loc[gru.name], df.loc[lstm.name]
    assert (g["timing.epoch_time_s"], g["timing.first_epoch_time_s"]) == (0.01, 0.8)  # 2 epochs: the second's
    assert g["timing.epoch_time_steady"] and g["timing.throughput_seq_s"] == pytest.approx(64 / 0.01)
    assert g["timing.pack_id"] == gru.name  # trained alone: a pack of its own
    assert l["timing.epoch_time_steady"] == False  # noqa: E712 (no history: the mean is kept, and said so)
    assert l["timing.epoch_time_s"] == pytest.approx(sum(r["epoch_time_s"] for r in results[1].history) / 2)
    notes = "\n".join(col.notes)
    assert "store: 1 run(s) timed by an older grucli" in notes and "recomputed from history.csv" in notes
    assert f"without a usable history.csv ({lstm.name})" in notes


def test_new_summaries_are_read_as_written(stored):
    exp_dir, runs, results = stored
    col = reader.collect([exp_dir], histories=False)
    df = col.runs.set_index("run_id")
    for run, result in zip(runs, results):
        for key in ("epoch_time_s", "first_epoch_time_s", "throughput_seq_s", "pack_id", "pack_size", "step"):
            assert df.loc[run.run_id, f"timing.{key}"] == result.timing[key], key
    assert not any("older grucli" in n for n in col.notes)


# --------------------------------------------------------------------------- runs.csv while a grid runs
def test_runs_table_kept_run_by_run_equals_the_table_read_afresh(stored, tmp_path):
    """RunsTable (a row added per stored run) writes the very file write_runs_table writes
    from every run folder, and only when due or flushed."""
    exp_dir, runs, results = stored
    fresh = runs_table.write_runs_table(exp_dir).read_text()
    (exp_dir / "runs.csv").unlink()
    partial = exp_dir / "deadbeef0000"  # a killed run's leftovers are no row
    partial.mkdir()
    (partial / "config.yaml").write_text("seed: 0\n")
    (exp_dir / runs[1].run_id / "summary.json").rename(tmp_path / "held")  # as if still training
    table = runs_table.RunsTable(exp_dir, every_s=3600)
    (tmp_path / "held").rename(exp_dir / runs[1].run_id / "summary.json")
    table.add(runs[1].run_id)
    assert not (exp_dir / "runs.csv").exists(), "not due yet"
    assert table.flush() == exp_dir / "runs.csv"
    assert (exp_dir / "runs.csv").read_text() == fresh
    assert table.flush() is None, "nothing new: not rewritten"


def test_runs_table_waits_longer_between_writes_the_longer_a_write_takes(stored):
    """Writing the whole table costs O(N): a fixed interval made a driver starved of CPU
    rewrite it after almost every run (its cost per run grew with N). The interval is at
    least SHARE_OF_TIME times the last write's own time."""
    exp_dir, runs, results = stored
    (exp_dir / "runs.csv").unlink(missing_ok=True)
    table = runs_table.RunsTable(exp_dir, every_s=0.0)
    table.add(runs[0].run_id)
    assert (exp_dir / "runs.csv").exists() and table.took > 0, "written at once, and timed"
    (exp_dir / "runs.csv").unlink()
    table.took = 3600.0 / table.SHARE_OF_TIME  # as if the last write had taken that long
    table.add(runs[0].run_id)
    assert not (exp_dir / "runs.csv").exists(), "not due: the last write took long"
    table.took = 0.0
    table.add(runs[0].run_id)
    assert (exp_dir / "runs.csv").exists(), "due at every_s once writes are quick"


def test_runs_table_takes_in_runs_another_process_stored(stored, tmp_path):
    """Two drivers share a results folder: each one's last write must hold the other's
    runs too, though it only added its own."""
    exp_dir, runs, results = stored
    (exp_dir / runs[1].run_id).rename(tmp_path / "elsewhere")
    table = runs_table.RunsTable(exp_dir, every_s=3600)
    (tmp_path / "elsewhere").rename(exp_dir / runs[1].run_id)  # stored by the other driver meanwhile
    assert table.flush() == exp_dir / "runs.csv"
    assert sorted(pd.read_csv(exp_dir / "runs.csv")["run_id"]) == sorted(r.run_id for r in runs)


def test_the_driver_reads_each_summary_once_not_every_summary_after_every_run(write_yaml, tiny_experiment,
                                                                            tmp_path, monkeypatch):
    """The driver's cost per run must not grow with the grid: storing run k used to re-read
    all k summaries for runs.csv (O(N^2) over a grid). Now the folder is read once when the
    grid starts and each stored run adds its own row; the file is complete at the end."""
    from grucli.store import reader

    path = write_yaml(tiny_experiment(seeds=[0, 1, 2, 3, 4, 5]))
    runs = expand(load_experiment(path))
    exp_dir = tmp_path / "results" / "tiny_adding"
    real, reads = reader._read_run, []

    def counted(run_dir, *args):
        reads.append(run_dir.name)
        return real(run_dir, *args)

    monkeypatch.setattr(reader, "_read_run", counted)
    execute.run_grid(runs[:2], exp_dir, "tiny_adding", executor="inline", pack=1)
    assert sorted(reads) == sorted(r.run_id for r in runs[:2])
    reads.clear()
    execute.run_grid(runs[2:], exp_dir, "tiny_adding", executor="inline", pack=1)  # resumed: 2 there, 4 more
    assert len(reads) == 2 + 4 and len(set(reads)) == 6
    monkeypatch.undo()
    table = pd.read_csv(exp_dir / "runs.csv")
    assert sorted(table["run_id"]) == sorted(r.run_id for r in runs)
    assert (exp_dir / "runs.csv").read_text() == runs_table.write_runs_table(exp_dir).read_text()
