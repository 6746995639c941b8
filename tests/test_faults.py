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
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {exp_dir}/"), done.stderr
    assert lines[0].endswith(("read-only file system", "permission denied")), lines[0]
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
