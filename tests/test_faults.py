"""Faults of the results folder's file system: a full disk, a read-only folder, a folder
deleted under a running grid. Each is one line naming the path and the cause, exit code 2,
and what was stored stays: the same command afterwards trains only the missing runs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import read_only
from typer.testing import CliRunner

from grucli import store
from grucli.cli import app
from grucli.execute import local

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def summaries(exp_dir: Path) -> dict[str, int]:
    """run id -> its summary's modification time, for every finished run."""
    return {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob("*/summary.json")}


def assert_cannot_write_read_only(done: subprocess.CompletedProcess, exp_dir: Path) -> None:
    """Exit 2 and one line, `error: cannot write <exp_dir>/...: read-only file system` (or
    permission denied, as the folder was made read-only), no traceback."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {exp_dir}/"), done.stderr
    assert lines[0].endswith(("read-only file system", "permission denied")), lines[0]


def one_error_line(out) -> str:
    assert "Traceback" not in out.output, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_full_disk_is_one_line_and_the_same_command_trains_only_the_missing_runs(
        write_yaml, tiny_experiment, results, monkeypatch, command):
    """The disk fills after the second run is stored: every later write in the results
    folder fails with ENOSPC, injected where the store's atomic writer renames its file."""
    path = write_yaml(tiny_experiment(seeds=[0, 1, 2, 3, 4]))
    exp_dir = results / "tiny_adding"
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).is_relative_to(results) and len(list(exp_dir.glob("*/summary.json"))) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    extra = ["--jobs", "1", "--pack", "1"] if command == "compare" else ["--pack", "1"]
    out = invoke(command, path, "--results", results, *extra)
    assert out.exit_code == 2, out.output
    line = one_error_line(out)
    assert f"cannot write {exp_dir}/" in line and "no space left on device" in line, line
    assert "run the same command again" in line, line
    kept = summaries(exp_dir)
    assert len(kept) == 2
    assert not list(results.rglob("*.tmp")), "the atomic writer removes its temp file"

    monkeypatch.undo()
    again = invoke(command, path, "--results", results, *extra)
    assert again.exit_code == 0, again.output
    after = summaries(exp_dir)
    assert len(after) == 5
    assert {k: after[k] for k in kept} == kept, "the runs stored before the fault are not trained again"
    assert "2 of 5 runs already finished" in again.output or "5 runs, 2 already finished" in again.output


def test_a_results_folder_deleted_under_a_running_grid_is_one_line_and_not_remade(
        write_yaml, tiny_experiment, results, monkeypatch):
    """Deleted while the third run trains: the driver stops instead of re-making a folder
    that would hold only the runs still to come."""
    path = write_yaml(tiny_experiment(seeds=[0, 1, 2, 3]))
    exp_dir = results / "tiny_adding"
    real_train, calls = local.train, []

    def train(runs, *args, **kwargs):
        calls.append(runs)
        if len(calls) == 3:
            shutil.rmtree(exp_dir)
        return real_train(runs, *args, **kwargs)

    monkeypatch.setattr(local, "train", train)
    out = invoke("train", path, "--results", results, "--pack", "1")
    assert out.exit_code == 2, out.output
    line = one_error_line(out)
    assert f"cannot write {exp_dir}: the results folder was deleted while the grid ran" in line, line
    assert not exp_dir.exists(), f"re-made: {sorted(p.name for p in exp_dir.rglob('*'))}"
    assert len(calls) == 3, "no run starts after the fault"

    monkeypatch.undo()
    again = invoke("train", path, "--results", results, "--pack", "1")
    assert again.exit_code == 0, again.output
    assert len(summaries(exp_dir)) == 4


def test_a_read_only_results_folder_is_one_line_and_resumes_once_writable(write_yaml, tiny_experiment, results,
                                                                          tmp_path):
    """Really read-only (a read-only bind mount, or no write bits for a user that is not
    root): two runs are stored, the grid grows to four, the folder turns read-only."""
    exp = tiny_experiment(seeds=[0, 1])
    assert invoke("train", write_yaml(exp), "--results", results, "--pack", "1").exit_code == 0
    exp_dir = results / "tiny_adding"
    kept = summaries(exp_dir)
    path = write_yaml({**exp, "seeds": [0, 1, 2, 3]})
    prefix = read_only.mount_prefix(results)
    if prefix is None and not read_only.binds_this_user():
        pytest.skip("neither a private read-only mount nor file permissions can make a folder read-only here")
    if prefix is None:
        read_only.without_write_bits(results, True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run([*(prefix or []), sys.executable, "-m", "grucli", "train", str(path), "--results",
                               str(results), "--pack", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        if prefix is None:
            read_only.without_write_bits(results, False)
    assert_cannot_write_read_only(done, exp_dir)
    assert summaries(exp_dir) == kept

    again = invoke("train", path, "--results", results, "--pack", "1")
    assert again.exit_code == 0, again.output
    after = summaries(exp_dir)
    assert len(after) == 4 and {k: after[k] for k in kept} == kept


def test_store_error_is_an_os_error_so_optional_writers_go_on(tmp_path, monkeypatch):
    """A data cache treats a failed write as a lost speed-up (`except OSError`): the
    store's one-line error keeps that working, with the errno of the cause."""
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as caught:
        store.atomic_write_text(tmp_path / "a" / "x.json", json.dumps({}))
    assert isinstance(caught.value, store.StoreError) and caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"cannot write {tmp_path / 'a' / 'x.json'}: no space left on device"
    assert not list((tmp_path / "a").iterdir()), "no temp file left behind"


# --------------------------------------------------------------------------- writers outside the run folders
def read_only_prefix(folder: Path) -> list[str] | None:
    """A command prefix that runs with `folder` read-only (a private read-only mount), or []
    with its write bits taken away (the caller gives them back), or skip."""
    prefix = read_only.mount_prefix(folder)
    if prefix is None and not read_only.binds_this_user():
        pytest.skip("neither a private read-only mount nor file permissions can make a folder read-only here")
    return prefix


def run_read_only(folder: Path, *args) -> subprocess.CompletedProcess:
    """`python -m grucli ARGS` with `folder` read-only."""
    prefix = read_only_prefix(folder)
    if prefix is None:
        read_only.without_write_bits(folder, True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONDONTWRITEBYTECODE": "1"}
    try:
        return subprocess.run([*(prefix or []), sys.executable, "-m", "grucli", *map(str, args)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        if prefix is None:
            read_only.without_write_bits(folder, False)


def tiny_study(tiny_experiment, trials: int) -> dict:
    exp = tiny_experiment(name="tiny_tune")
    exp["search"] = {"trials": trials, "sampler": "random", "pruner": "none",
                     "space": {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, "final_seeds": 2}
    return exp


def test_tune_db_on_a_full_disk_is_one_line_and_the_study_resumes(write_yaml, tiny_experiment, results, monkeypatch):
    """SQLite's own error for a full disk ('database or disk is full', through SQLAlchemy and
    Optuna as they wrap it) once three trials are stored: every later write to tune.db fails."""
    import sqlite3

    import optuna

    path = write_yaml(tiny_study(tiny_experiment, 6))
    exp_dir = results / "tiny_tune"
    real_init = optuna.storages.RDBStorage.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        dialect = self.engine.dialect
        real_execute = dialect.do_execute

        def execute(cursor, statement, parameters, context=None):
            if len(summaries(exp_dir)) >= 3 and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
                raise sqlite3.OperationalError("database or disk is full")
            return real_execute(cursor, statement, parameters, context)

        dialect.do_execute = execute

    monkeypatch.setattr(optuna.storages.RDBStorage, "__init__", init)
    out = invoke("tune", path, "--results", results, "--jobs", "1", "--pack", "1")
    assert out.exit_code == 2, out.output
    line = one_error_line(out)
    assert line == (f"error: cannot write {exp_dir / 'tune.db'}: no space left on device; finished trials are kept "
                    "(tune.db and their run folders): run the same command again to resume"), line
    kept = summaries(exp_dir)
    assert len(kept) == 3

    monkeypatch.undo()
    again = invoke("tune", path, "--results", results, "--jobs", "1", "--pack", "1")
    assert again.exit_code == 0, again.output
    after = summaries(exp_dir)
    assert {k: after[k] for k in kept} == kept, "the trials stored before the fault are not trained again"
    assert len(after) == 6 + 2, "every trial and the final runs"


def test_tune_into_a_read_only_results_folder_is_one_line_and_resumes(write_yaml, tiny_experiment, results):
    assert invoke("tune", write_yaml(tiny_study(tiny_experiment, 2)), "--results", results, "--jobs", "1",
                  "--pack", "1").exit_code == 0
    exp_dir = results / "tiny_tune"
    kept = summaries(exp_dir)
    path = write_yaml(tiny_study(tiny_experiment, 3))
    done = run_read_only(results, "tune", path, "--results", results, "--jobs", "1", "--pack", "1")
    assert_cannot_write_read_only(done, exp_dir)
    assert summaries(exp_dir) == kept

    again = invoke("tune", path, "--results", results, "--jobs", "1", "--pack", "1")
    assert again.exit_code == 0, again.output
    after = summaries(exp_dir)
    assert {k: after[k] for k in kept} == kept and len(after) == len(kept) + 1


def test_a_study_killed_in_its_write_ahead_log_is_one_line_in_a_read_only_folder_and_resumes(
        write_yaml, tiny_experiment, results):
    """A study commits to SQLite's write-ahead log while it runs and folds it back at its end;
    one killed before that leaves tune.db in WAL mode, which SQLite cannot open in a read-only
    folder: one line naming tune.db, and once writable the same command resumes."""
    import sqlite3

    assert invoke("tune", write_yaml(tiny_study(tiny_experiment, 2)), "--results", results, "--jobs", "1",
                  "--pack", "1").exit_code == 0
    exp_dir = results / "tiny_tune"
    connection = sqlite3.connect(exp_dir / "tune.db")  # as a killed study leaves it
    assert connection.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    connection.close()
    kept = summaries(exp_dir)
    path = write_yaml(tiny_study(tiny_experiment, 3))
    done = run_read_only(results, "tune", path, "--results", results, "--dry-run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {exp_dir / 'tune.db'}: cannot be opened"), \
        done.stderr

    again = invoke("tune", path, "--results", results, "--jobs", "1", "--pack", "1")
    assert again.exit_code == 0, again.output
    after = summaries(exp_dir)
    assert {k: after[k] for k in kept} == kept and len(after) == len(kept) + 1
    connection = sqlite3.connect(exp_dir / "tune.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    connection.close()


def test_a_report_into_a_read_only_folder_is_one_line(write_yaml, tiny_experiment, results):
    assert invoke("train", write_yaml(tiny_experiment(seeds=[0, 1])), "--results", results).exit_code == 0
    exp_dir = results / "tiny_adding"
    done = run_read_only(results, "report", exp_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {exp_dir}/"), done.stderr
    assert "read-only file system" in lines[0] or "permission denied" in lines[0], lines[0]
    assert not (exp_dir / "report").exists()


def test_a_report_on_a_full_disk_is_one_line_and_the_previous_report_stays(write_yaml, tiny_experiment, results,
                                                                          monkeypatch):
    assert invoke("train", write_yaml(tiny_experiment(seeds=[0, 1])), "--results", results).exit_code == 0
    exp_dir = results / "tiny_adding"
    assert invoke("report", exp_dir, "--format", "md").exit_code == 0
    before = {p: p.read_bytes() for p in (exp_dir / "report").rglob("*") if p.is_file()}
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) > 3:  # a few of the new report's files are written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = invoke("report", exp_dir, "--format", "md")
    assert out.exit_code == 2, out.output
    line = one_error_line(out)
    assert line.startswith(f"error: cannot write {exp_dir}/") and "no space left on device" in line, line
    assert "nothing was trained or changed in the results" in line
    monkeypatch.undo()
    after = {p: p.read_bytes() for p in (exp_dir / "report").rglob("*") if p.is_file()}
    assert after == before, "the previous report is untouched"
    assert not [p for p in exp_dir.iterdir() if p.name.startswith(".report.partial")]


def test_a_file_fault_no_writer_names_is_still_one_line(monkeypatch, tmp_path):
    """The CLI's boundary: an OSError of a full disk or a refused permission that reached it
    raw is one line naming the file; any other OSError stays a traceback (a bug)."""
    import grucli.report

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "x.csv"))

    monkeypatch.setattr(grucli.report, "build_report", refused)
    out = invoke("report", tmp_path)
    assert out.exit_code == 2
    assert one_error_line(out) == f"error: cannot access {tmp_path / 'x.csv'}: permission denied"

    def other(*args, **kwargs):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(tmp_path / "x.csv"))

    monkeypatch.setattr(grucli.report, "build_report", other)
    out = invoke("report", tmp_path)
    assert out.exit_code != 0 and isinstance(out.exception, OSError)
