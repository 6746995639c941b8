"""A real Ray cluster on this machine: a head started with `ray start --head` on loopback
and one more worker node, both with token authentication on (Ray's default since 2.59),
reached with `--executor ray --address 127.0.0.1:PORT`. The grid's results and run ids
equal a local run's, bit for bit. The cluster's processes are the test's own: each `ray
start --block` leads a process group of its own, stopped by that group's id (never `ray
stop`, which would stop every Ray process of this user on the machine)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """`ray start ... --block` in a process group of its own; returns once Ray says it runs."""
    out = open(log, "w")
    proc = subprocess.Popen([RAY, "start", *args, "--block", "--disable-usage-stats"], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start {' '.join(args)} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    """Stop one `ray start --block` and every process it started (its process group)."""
    for sig, wait in ((signal.SIGTERM, 40), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            proc.poll()
            time.sleep(0.5)
        else:
            continue
        break
    proc.wait(timeout=10)


def _grucli(args: list, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grucli", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _runs(exp_dir: Path) -> dict[str, dict]:
    """run id -> what must be equal bit for bit: status, metrics, params, the history's
    losses and metrics (not its times)."""
    out = {}
    for summary_path in exp_dir.glob("*/summary.json"):
        s = json.loads(summary_path.read_text())
        history = pd.read_csv(summary_path.parent / "history.csv")
        history = history[[c for c in history.columns if not c.endswith("time_s")]]
        out[s["run_id"]] = {"status": s["status"], "train": s["train"], "val": s["val"], "test": s["test"],
                            "params": s["params"], "history": history.to_dict("list")}
    return out


def test_token_auth_follows_ray_s_documented_sources(tmp_path, monkeypatch):
    from grucli.errors import GrucliError
    from grucli.execute.cluster import token_auth

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    hint = token_auth("127.0.0.1:1")  # no token anywhere: try as asked, say what to do if it fails
    assert "RAY_AUTH_MODE" not in os.environ and "RAY_AUTH_TOKEN=<token>" in hint
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(GrucliError, match="RAY_AUTH_MODE=token but no Ray token is set"):
        token_auth("127.0.0.1:1")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(GrucliError):
        token_auth("127.0.0.1:1")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.delenv("RAY_AUTH_MODE")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 64)  # the default token file turns token mode on
    assert "~/.ray/auth_token" not in token_auth("127.0.0.1:1") and os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit mode is respected
    token_auth("127.0.0.1:1")
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


@pytest.mark.slow
def test_a_grid_on_a_real_cluster_with_token_auth_equals_the_local_run(tmp_path, tiny_experiment):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTHONPATH"))}
    # the cluster's workers import this checkout's grucli; the kernel cache is the tests' own
    base |= {"PYTHONPATH": str(ROOT), "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    cluster_env = base | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    exp = tiny_experiment("adding", name="cluster", grid={"model.cell": ["gru", "lstm"]}, seeds=[0, 1])
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = Path(tempfile.mkdtemp(prefix="grr", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                             f"--temp-dir={temp}", "--include-dashboard=false"], cluster_env, tmp_path / "head.log"))
        procs.append(_start([f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1"], cluster_env,
                            tmp_path / "worker.log"))

        no_token = _grucli(["compare", path, "--executor", "ray", "--address", address, "--results",
                            tmp_path / "nothing"], base | {"RAY_AUTH_MODE": "token"})
        assert no_token.returncode == 2, no_token.stdout + no_token.stderr
        line = no_token.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: --address {address}: RAY_AUTH_MODE=token but no Ray token is set") and \
            "RAY_AUTH_TOKEN" in line and "ray get-auth-token" in line, no_token.stderr
        assert not (tmp_path / "nothing").exists()

        # the token alone, RAY_AUTH_MODE unset: Ray's client does not turn token mode on for an explicit
        # address (it only warned InvalidAuthToken and failed); grucli does, as `ray start --address` does
        on_cluster = _grucli(["compare", path, "--executor", "ray", "--address", address, "--results",
                              tmp_path / "ray"], base | {"RAY_AUTH_TOKEN": cluster_env["RAY_AUTH_TOKEN"]})
        assert on_cluster.returncode == 0, on_cluster.stdout[-3000:] + on_cluster.stderr[-3000:]
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
    local = _grucli(["compare", path, "--jobs", "1", "--results", tmp_path / "local"], base)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    remote, here = _runs(tmp_path / "ray" / "cluster"), _runs(tmp_path / "local" / "cluster")
    assert len(here) == 4 and sorted(remote) == sorted(here)
    for run_id in here:
        assert remote[run_id] == here[run_id], run_id
