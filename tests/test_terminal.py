"""Terminal habits: shell completion installs and completes, the overall progress count
(k of N, elapsed, ETA, failures so far) as plain lines when the output is not a terminal,
and tune's two phases under headings, with its trials shown on validation only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from grucli.cli import app
from grucli.commands.common import Count

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
APP = "import sys; from grucli.cli import app; sys.argv[0] = 'grucli'; app(prog_name='grucli')"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_install_completion_writes_the_script_and_it_completes_commands_and_options(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HOME": str(tmp_path), "SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = subprocess.run([sys.executable, "-c", APP, "--install-completion", "bash"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    script = tmp_path / ".bash_completions" / "grucli.sh"
    assert "_GRUCLI_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    for words, cword, expected in (("grucli com", "1", "compare"), ("grucli compare --exec", "2", "--executor")):
        done = subprocess.run([sys.executable, "-c", APP], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=env | {"_GRUCLI_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                         "COMP_CWORD": cword})
        assert done.returncode == 0 and done.stdout.split() == [expected], (words, done.stdout, done.stderr)


def test_count_line_has_k_of_n_elapsed_eta_and_failures():
    count = Count(4)
    count.start = 100.0
    count.add("ok")
    count.add("failed")
    assert count.line(130.0) == "runs 2/4 (50%), elapsed 0:00:30, eta 0:00:30, 1 failed"
    count.add("diverged")
    count.add("ok")
    assert count.line(160.0) == "runs 4/4 (100%), elapsed 0:01:00, 1 failed, 1 diverged"


def test_a_grid_in_a_log_ends_with_the_overall_count_and_its_failures(write_yaml, tiny_experiment, results,
                                                                       lstm_runs_fail):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["gru", "lstm", "rnn"]}))
    out = invoke("compare", path, "--results", results, "--jobs", "1", "--pack", "1")
    counts = [line for line in out.output.splitlines() if line.startswith("runs ")]
    assert counts and re.fullmatch(r"runs 3/3 \(100%\), elapsed \d+:\d\d:\d\d, 1 failed", counts[-1]), out.output


def test_tune_heads_its_phases_and_shows_trials_on_validation_only(tmp_path):
    exp = {"name": "tt", "task": {"name": "adding", "seq_len": 6, "n_train": 64, "n_val": 32, "n_test": 32},
           "model": {"hidden_size": 4}, "train": {"epochs": 2, "batch_size": 32, "threads": 1},
           "grid": {"model.cell": ["gru", "lstm"]},
           "search": {"trials": 2, "sampler": "random", "pruner": "none", "final_seeds": 2,
                      "space": {"train.lr": {"log_uniform": [1.0e-3, 3.0e-2]}}}}
    path = tmp_path / "tt.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    out = invoke("tune", path, "--results", tmp_path / "results", "--jobs", "1")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    trials_at = lines.index("trials: 4 to run (validation metrics only)")
    finals_at = lines.index("final runs: each arm's best configuration on 2 fresh seeds (4 to run)")
    trial_lines = [ln for ln in lines[trials_at:finals_at] if ln.strip().startswith("ok #")]
    final_lines = [ln for ln in lines[finals_at:] if ln.strip().startswith("ok #")]
    assert len(trial_lines) == 4 and len(final_lines) == 4, out.output
    assert all(" val mse " in ln and "test" not in ln and "baseline" not in ln for ln in trial_lines), trial_lines
    assert all(" test mse " in ln for ln in final_lines), final_lines


def test_a_pruned_trials_line_says_its_value_is_the_best_before_pruning(tiny_run):
    """The study records a pruned trial's value at the epoch it was pruned (trials.csv); the
    run's own val metric is its best epoch's. The line says which it shows."""
    from grucli.commands.common import run_line
    from grucli.grid import Run
    from grucli.train.loop import RunResult

    run = Run(index=7, config=tiny_run(), varied={"model.cell": "gru"}, run_id="abc")
    lines = {status: run_line(run, RunResult(status=status, params=10, metric="mse", goal="min", val={"mse": 0.5},
                                             timing={"train_time_s": 1.0}), split="val")
             for status in ("ok", "pruned")}
    assert "  val mse 0.5  " in lines["ok"] and "best val" not in lines["ok"]
    assert "  best val mse 0.5  " in lines["pruned"]
