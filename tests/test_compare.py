"""compare: parallel and Ray execution, resume after SIGKILL, locking, failure isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grucli.store import runs as runs_table
from grucli import execute, store
from grucli.cli import app
from grucli.config import load_experiment
from grucli.grid import expand

runner = CliRunner()

TINY = """
name: tiny
task: {{name: adding, seq_len: 8, n_train: {n_train}, n_val: 32, n_test: 32}}
model: {{cell: gru, hidden_size: 6}}
train: {{epochs: {epochs}, batch_size: 16, lr: 1.0e-2}}
grid:
  model.cell: [rnn, gru, lstm]
seeds: 2
"""


def write_exp(tmp_path: Path, n_train=64, epochs=2, extra="") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(n_train=n_train, epochs=epochs) + extra)
    return path


def metrics_by_id(exp_dir: Path) -> dict[str, tuple]:
    df = runs_table.load_runs(exp_dir)
    return {r.run_id: (r.status, r._asdict().get("test.mse")) for r in df.itertuples(index=False)} if not df.empty \
        else {}


def by_id(exp_dir: Path) -> dict[str, tuple]:
    out = {}
    for run_dir in exp_dir.iterdir():
        summary = store.read_summary(run_dir)
        if summary:
            out[summary["run_id"]] = (summary["status"], summary["test"].get("mse"), summary["params"])
    return out


def test_parallel_matches_sequential(tmp_path):
    exp = write_exp(tmp_path)
    one = runner.invoke(app, ["compare", str(exp), "--jobs", "1", "--results", str(tmp_path / "a")])
    assert one.exit_code == 0, one.output
    two = runner.invoke(app, ["compare", str(exp), "--jobs", "2", "--results", str(tmp_path / "b")])
    assert two.exit_code == 0, two.output
    a, b = by_id(tmp_path / "a" / "tiny"), by_id(tmp_path / "b" / "tiny")
    assert len(a) == 6 and a == b  # same run ids, statuses and bit-identical metrics
    assert (tmp_path / "b" / "tiny" / "runs.csv").is_file()
    # the comparison table names every cell, and --show reprints it without training
    shown = runner.invoke(app, ["compare", str(exp), "--show", "--results", str(tmp_path / "b")])
    assert shown.exit_code == 0 and all(c in shown.output for c in ("rnn", "gru", "lstm"))
    again = runner.invoke(app, ["compare", str(exp), "--results", str(tmp_path / "b")])
    assert "0 to run" in again.output
    # a narrower version of the grid shows only its own runs and counts the others
    only_gru = runner.invoke(app, ["compare", str(exp), "--show", "--results", str(tmp_path / "b"),
                                   "--set", "model.cell=gru"])
    assert only_gru.exit_code == 0 and "gru" in only_gru.output
    assert "lstm" not in only_gru.output and "rnn" not in only_gru.output.replace("runs", "")
    assert "4 other run(s)" in only_gru.output
    nothing = runner.invoke(app, ["compare", str(exp), "--show", "--results", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "no results of 'tiny'" in nothing.output and "Traceback" not in nothing.output


def test_dry_run_lists_states(tmp_path):
    exp = write_exp(tmp_path)
    results = tmp_path / "r"
    runner.invoke(app, ["compare", str(exp), "--jobs", "1", "--results", str(results),
                        "--set", "model.cell=gru", "--set", "seeds=[0]"])
    out = runner.invoke(app, ["compare", str(exp), "--dry-run", "--results", str(results)])
    lines = [ln for ln in out.output.splitlines() if ln.startswith("#")]
    assert len(lines) == 6
    assert sum("done" in ln for ln in lines) == 1 and sum("to run" in ln for ln in lines) == 5


def test_failure_isolation_inline(tmp_path, monkeypatch):
    """One run raises, one diverges: both recorded with their status, the rest complete."""
    import grucli.train.loop as train_mod

    real_build = train_mod.build_model

    def build(cfg, *args):
        if cfg.model.cell == "rnn" and cfg.seed == 0:
            raise RuntimeError("boom")
        return real_build(cfg, *args)

    monkeypatch.setattr(train_mod, "build_model", build)
    exp = write_exp(tmp_path, extra="include:\n  - {model.cell: lstm, train.lr: 1.0e+9, train.grad_clip: null, "
                                     "train.optimizer: sgd}\n")
    res = runner.invoke(app, ["compare", str(exp), "--jobs", "1", "--results", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    statuses = sorted(s for s, _, _ in by_id(tmp_path / "r" / "tiny").values())
    assert statuses.count("failed") == 1 and statuses.count("diverged") == 2 and statuses.count("ok") == 5
    failed = [json.loads(p.read_text()) for p in (tmp_path / "r" / "tiny").glob("*/summary.json")]
    assert any(s["status"] == "failed" and "boom" in s["error"] for s in failed)
    # --retry-failed re-runs exactly the failed and diverged runs
    monkeypatch.setattr(train_mod, "build_model", real_build)
    dry = runner.invoke(app, ["compare", str(exp), "--dry-run", "--retry-failed", "--results", str(tmp_path / "r")])
    assert "3 to run" in dry.output


def test_divergence_in_pool_is_recorded(tmp_path):
    exp = write_exp(tmp_path, extra="include:\n  - {model.cell: lstm, train.lr: 1.0e+9, train.grad_clip: null, "
                                     "train.optimizer: sgd}\n")
    res = runner.invoke(app, ["compare", str(exp), "--jobs", "2", "--results", str(tmp_path / "r"),
                              "--set", "seeds=[0]"])
    assert res.exit_code == 0, res.output
    statuses = sorted(s for s, _, _ in by_id(tmp_path / "r" / "tiny").values())
    assert statuses == ["diverged", "ok", "ok", "ok"]


def test_lock_held_elsewhere_is_skipped(tmp_path):
    """A run locked by another driver is not trained twice."""
    from filelock import FileLock

    exp = load_experiment(write_exp(tmp_path), ["seeds=[0]", "model.cell=gru"])
    runs = expand(exp)
    exp_dir = tmp_path / "r" / "tiny"
    (exp_dir / execute.LOCK_DIR).mkdir(parents=True)
    other = FileLock(str(exp_dir / execute.LOCK_DIR / f"{runs[0].run_id}.lock"))
    other.acquire()
    try:
        # a separate process holds the same lock file -> flock conflict even across processes
        code = ("import sys; from filelock import FileLock, Timeout\n"
                f"l = FileLock({str(exp_dir / execute.LOCK_DIR / (runs[0].run_id + '.lock'))!r})\n"
                "try:\n    l.acquire(timeout=0); sys.exit(0)\nexcept Timeout:\n    sys.exit(3)\n")
        assert subprocess.run([sys.executable, "-c", code]).returncode == 3
        outcome = execute.run_grid(runs, exp_dir, "tiny", executor="inline")
    finally:
        other.release()
    assert outcome.skipped == 1 and not outcome.finished
    assert store.run_state(exp_dir / runs[0].run_id) == "todo"


def test_two_drivers_share_a_grid(tmp_path):
    """Two compare processes on the same folder: every run trained exactly once."""
    exp = write_exp(tmp_path, n_train=256)
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "grucli", "compare", str(exp), "--jobs", "1", "--results", str(results),
           "--set", "seeds=[0]"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = sum(o.count("      ok ") for o in outs)
    assert trained == 3, outs
    assert len(by_id(results / "tiny")) == 3


def test_resume_after_sigkill(tmp_path):
    """Kill the whole process tree mid-grid; the same command completes it, and the metrics
    equal an uninterrupted run's. No temp file is left or read as a result."""
    exp = write_exp(tmp_path, n_train=800, epochs=2)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [sys.executable, "-m", "grucli", "compare", str(exp), "--jobs", "2"]
    proc = subprocess.Popen([*cmd, "--results", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    exp_dir = killed / "tiny"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until at least one run finished and another started
        finished = list(exp_dir.glob("*/summary.json")) if exp_dir.exists() else []
        if finished and len(finished) < 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list(exp_dir.glob("*/summary.json")))
    assert 0 < n_before < 6
    resumed = subprocess.run([*cmd, "--results", str(killed)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{n_before} already finished" in resumed.stdout
    # the uninterrupted reference, in this process: one thread per run, as in the pool workers
    reference = load_experiment(exp)
    execute.run_grid(expand(reference), clean / "tiny", "tiny", executor="inline", threads=1)
    assert by_id(exp_dir) == by_id(clean / "tiny")
    assert not [p for p in exp_dir.rglob("*") if p.name.endswith(".tmp")]


def test_ray_executor(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    exp = write_exp(tmp_path)
    res = runner.invoke(app, ["compare", str(exp), "--executor", "ray", "--jobs", "2", "--results", str(tmp_path / "ray"),
                              "--set", "seeds=[0]"])
    assert res.exit_code == 0, res.output
    local = runner.invoke(app, ["compare", str(exp), "--jobs", "1", "--results", str(tmp_path / "loc"),
                                "--set", "seeds=[0]"])
    assert local.exit_code == 0
    # the driver wrote the same store; same metrics as the local executor
    assert by_id(tmp_path / "ray" / "tiny") == by_id(tmp_path / "loc" / "tiny")


def test_unknown_executor_is_a_clean_error(tmp_path):
    res = runner.invoke(app, ["compare", str(write_exp(tmp_path)), "--executor", "dask", "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown executor" in res.output
    assert not (tmp_path / "r").exists()


def test_longest_runs_start_first(tmp_path):
    exp = load_experiment(write_exp(tmp_path), ["seeds=[0]", "model.cell=gru"],)
    exp = exp.model_copy(update={"spec": exp.spec.model_copy(update={"grid": {"task.seq_len": [5, 50, 20]}})})
    order = sorted(expand(exp), key=execute.estimated_cost, reverse=True)
    assert [r.config.task.seq_len for r in order] == [50, 20, 5]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    """A temp file named for a dead process on this host goes; a live writer's stays."""
    exp_dir = tmp_path / "exp"
    (exp_dir / "abc").mkdir(parents=True)
    store.atomic_write_text(exp_dir / "runs.csv", "x\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = store._host()
    stale = [exp_dir / f".runs.csv.{host}.{dead.pid}.k2j3.tmp", exp_dir / "abc" / f".summary.json.{host}.{dead.pid}.x.tmp"]
    live = exp_dir / f".runs.csv.{host}.{os.getpid()}.zz.tmp"
    for p in [*stale, live]:
        p.write_text("half")
    assert store.remove_stale_temps(exp_dir) == 2
    assert live.exists() and not any(p.exists() for p in stale)
    assert (exp_dir / "runs.csv").read_text() == "x\n"


def test_address_without_ray_and_missing_cuda_are_clean_errors(tmp_path):
    exp = write_exp(tmp_path)
    for extra in (["--address", "127.0.0.1:1"], ["--device", "cuda"]):
        import torch

        if extra[0] == "--device" and torch.cuda.is_available():
            continue
        res = runner.invoke(app, ["compare", str(exp), "--results", str(tmp_path / "r"), *extra])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "r").exists()


def test_report_builds_from_a_real_compare_run(tmp_path):
    """compare writes, report reads: the tables and figures of a tiny real grid."""
    exp = write_exp(tmp_path)
    exp.write_text(exp.read_text().replace("  model.cell: [rnn, gru, lstm]\n",
                                           "  model.cell: [rnn, gru, lstm]\n  task.seq_len: [6, 10]\n"))
    results = tmp_path / "r"
    res = runner.invoke(app, ["compare", str(exp), "--jobs", "2", "--results", str(results)])
    assert res.exit_code == 0, res.output
    rep = runner.invoke(app, ["report", str(results / "tiny"), "--format", "both"])
    assert rep.exit_code == 0, rep.output
    out = results / "tiny" / "report"
    md = (out / "report.md").read_text()
    assert all(cell in md for cell in ("rnn", "gru", "lstm")) and "gru vs lstm" in md
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert any("difficulty" in name for name in figures)  # seq_len varies -> the difficulty plot
    assert (out / "report.html").stat().st_size > 10_000


def test_workers_train_with_the_drivers_grucli_not_one_in_the_working_directory(tmp_path):
    """Run from inside another checkout (a ./grucli package that is not the installed one),
    the pool's workers must still run the driver's code."""
    import shutil
    import subprocess
    import sys

    import grucli

    script = Path(sys.executable).parent / "grucli"
    if not script.is_file():
        pytest.skip("no grucli console script next to this interpreter")
    stale = tmp_path / "grucli"
    shutil.copytree(Path(grucli.__file__).parent, stale, ignore=shutil.ignore_patterns("__pycache__"))
    with open(stale / "train" / "loop.py", "a") as f:  # what a worker would train with, were it the stale copy
        f.write("\n\ndef train_pack(*args, **kwargs):\n"
                "    raise RuntimeError('trained by the stale checkout')\n")
    exp = write_exp(tmp_path, n_train=32, epochs=1)
    done = subprocess.run([str(script), "compare", str(exp), "--jobs", "2", "--set", "model.cell=gru",
                           "--results", str(tmp_path / "r")],  # 2 runs: the process pool
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stale checkout" not in done.stdout + done.stderr
    assert by_id(tmp_path / "r" / "tiny")  # the run was recorded
    assert all(status == "ok" for status, *_ in by_id(tmp_path / "r" / "tiny").values())


def test_reused_runs_made_by_other_code_are_pointed_out(tmp_path):
    exp = write_exp(tmp_path, n_train=32, epochs=1)
    args = ["compare", str(exp), "--jobs", "1", "--set", "model.cell=gru", "--set", "seeds=[0]",
            "--results", str(tmp_path / "r")]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert "other grucli code" not in again.output  # same code: nothing to say
    (summary,) = (tmp_path / "r" / "tiny").glob("*/summary.json")
    data = json.loads(summary.read_text())
    data["env"]["git_commit"] = "0123456789abcdef"
    summary.write_text(json.dumps(data))
    later = runner.invoke(app, args)
    assert later.exit_code == 0 and "1 finished run(s) of this grid were made by other grucli code: git 01234567" \
        in " ".join(later.output.split())


def test_a_workers_result_travels_by_value_not_as_open_file_descriptors():
    """multiprocessing's pickler sends torch tensors as shared-memory file descriptors, and
    those stayed open in the worker (~2 per run: a 10,000-run grid died at ~8,000 runs with
    'Too many open files'). The worker's results go by value, and come back equal."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch

    from grucli.execute.local import ByValue
    from grucli.train.loop import RunResult

    result = RunResult(status="ok", state_dict={"w": torch.randn(3, 2), "b": torch.randn(2)})
    assert b"rebuild_storage_fd" in bytes(ForkingPickler.dumps(result)), "(what multiprocessing alone does)"
    sent = bytes(ForkingPickler.dumps(ByValue(result)))
    assert b"rebuild_storage_fd" not in sent
    back = pickle.loads(sent)
    assert isinstance(back, RunResult) and back.status == "ok"
    assert all(torch.equal(back.state_dict[k], v) for k, v in result.state_dict.items())
