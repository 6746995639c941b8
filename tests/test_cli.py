"""The command line, end to end through typer's CliRunner: tiny grids per task, resuming,
dry runs, clean one-line errors that write nothing, and help text on every command."""

from __future__ import annotations

import re

import json
import math
import subprocess
import sys

import click
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from grucli.cli import app
from grucli.config import load_experiment
from grucli.grid import expand
from grucli.cells import CELLS
from grucli.model import model_params
from grucli.tasks import TASKS

runner = CliRunner()
RUN_FILES = ["config.yaml", "history.csv", "model.pt", "summary.json"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder):
    """Every file under `folder` with its modification time (to prove nothing was rewritten)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def run_dirs(exp_dir):
    return sorted(p for p in exp_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def temp_files(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("task", sorted(TASKS))
def test_tiny_grid_on_each_task_writes_complete_run_folders_then_resumes(write_yaml, tiny_experiment, tiny_tasks,
                                                                         results, task):
    if task not in tiny_tasks:
        pytest.skip(f"no tiny config for {task}")
    path = write_yaml(tiny_experiment(task, name=f"e2e_{task}", grid={"model.cell": ["rnn", "gru", "lstm"]}))
    first = invoke("train", path, "--results", results)
    assert first.exit_code == 0, first.output
    exp_dir = results / f"e2e_{task}"
    dirs = run_dirs(exp_dir)
    assert sorted(d.name for d in dirs) == sorted(r.run_id for r in expand(load_experiment(path)))
    cells = set()
    for d in dirs:
        assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == RUN_FILES
        summary = json.loads((d / "summary.json").read_text())
        assert summary["status"] == "ok", summary.get("error")
        assert summary["task"] == task and math.isfinite(summary["test"][summary["metric"]])
        cells.add(summary["cell"])
        assert len(pd.read_csv(d / "history.csv")) >= 1
    assert cells == {"rnn", "gru", "lstm"}
    assert len(pd.read_csv(exp_dir / "runs.csv")) == 3
    assert json.loads((exp_dir / "experiment.json").read_text())["name"] == f"e2e_{task}"
    assert temp_files(results) == []

    before = snapshot(exp_dir)
    second = invoke("train", path, "--results", results)
    assert second.exit_code == 0, second.output
    assert snapshot(exp_dir) == before, "a second invocation trains and writes nothing"


def test_partial_run_is_retrained_and_finished_ones_are_kept(write_yaml, tiny_experiment, results):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["gru", "lstm"]}))
    assert invoke("train", path, "--results", results).exit_code == 0
    exp_dir = results / "tiny_adding"
    partial, kept = run_dirs(exp_dir)
    (partial / "summary.json").unlink()  # as if the process died before the summary
    (partial / "history.csv").write_text("garbage")
    kept_before = snapshot(kept)
    out = invoke("train", path, "--results", results)
    assert out.exit_code == 0, out.output
    assert json.loads((partial / "summary.json").read_text())["status"] == "ok"
    assert "epoch" in pd.read_csv(partial / "history.csv").columns
    assert snapshot(kept) == kept_before


def test_failed_run_is_recorded_and_the_grid_goes_on(write_yaml, tiny_experiment, results, lstm_runs_fail,
                                                     monkeypatch):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["lstm", "gru"]}))
    out = invoke("train", path, "--results", results)
    assert out.exit_code == 1  # some run failed
    assert "Traceback" not in out.output and "lstm optimiser broke" in out.output
    summaries = {json.loads((d / "summary.json").read_text())["cell"]: json.loads((d / "summary.json").read_text())
                 for d in run_dirs(results / "tiny_adding")}
    assert summaries["lstm"]["status"] == "failed" and "lstm optimiser broke" in summaries["lstm"]["error"]
    assert summaries["gru"]["status"] == "ok", "the run after the failed one still trained"

    dry = [line for line in invoke("train", path, "--results", results, "--dry-run").output.splitlines()
           if line.startswith("#")]
    assert sorted(line.split()[-1] for line in dry) == ["done", "failed"], "a failed run is not retried by default"
    monkeypatch.undo()
    retry = invoke("train", path, "--results", results, "--retry-failed")
    assert retry.exit_code == 0, retry.output
    lstm_dir = next(d for d in run_dirs(results / "tiny_adding")
                    if json.loads((d / "summary.json").read_text())["cell"] == "lstm")
    assert json.loads((lstm_dir / "summary.json").read_text())["status"] == "ok"


# --------------------------------------------------------------------------- dry run
def test_dry_run_lists_one_line_per_run_and_marks_finished_ones(write_yaml, tiny_experiment, results):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru", "lstm"]}, seeds=2))
    ids = [r.run_id for r in expand(load_experiment(path))]

    before = invoke("train", path, "--results", results, "--dry-run")
    assert before.exit_code == 0, before.output
    assert not results.exists(), "a dry run writes nothing"
    lines = [line for line in before.output.splitlines() if line.startswith("#")]
    assert len(lines) == 6
    for n, (line, rid) in enumerate(zip(lines, ids), start=1):
        assert line.startswith(f"#{n} ") and rid in line and "to run" in line
    assert "model.cell=gru" in lines[2] and "seed=0" in lines[2] and "seed=1" in lines[3]

    assert invoke("train", path, "--results", results, "--set", "model.cell=gru").exit_code == 0  # 2 of the 6
    after = invoke("train", path, "--results", results, "--dry-run")
    lines = [line for line in after.output.splitlines() if line.startswith("#")]
    done = [line for line in lines if line.rstrip().endswith("done")]
    assert len(lines) == 6 and len(done) == 2 and all("model.cell=gru" in line for line in done)


def test_dry_run_with_set_on_a_grid_axis(write_yaml, tiny_experiment, results):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru", "lstm"]}))
    out = invoke("train", path, "--results", results, "--dry-run", "--set", "model.cell=lstm")
    assert out.exit_code == 0
    assert len([line for line in out.output.splitlines() if line.startswith("#")]) == 1


# --------------------------------------------------------------------------- bad input
def _set_model(key, value):
    return lambda exp: exp["model"].update({key: value})


BAD_INPUT = [
    ("unknown key", _set_model("hiden_size", 4), []),
    ("wrong type", _set_model("hidden_size", "big"), []),
    ("hidden_size 0", _set_model("hidden_size", 0), []),
    ("dropout 1.5", _set_model("dropout", 1.5), []),
    ("unknown cell", _set_model("cell", "gruu"), []),
    ("unknown task", lambda exp: exp["task"].update(name="addin"), []),
    ("both sizes", _set_model("param_budget", 500), []),
    ("zip of unequal lists", lambda exp: exp.update(zip=[{"model.cell": ["gru", "lstm"], "task.seq_len": [8]}]), []),
    ("grid emptied by exclude", lambda exp: exp.update(grid={"model.cell": ["gru"]},
                                                       exclude=[{"model.cell": "gru"}]), []),
    ("unknown grid key", lambda exp: exp.update(grid={"model.cel": ["gru"]}), []),
    ("bad value late in the grid", lambda exp: exp.update(grid={"model.dropout": [0.0, 1.5]}), []),
    ("--set without =", None, ["--set", "model.cell"]),
    ("--set unknown key", None, ["--set", "model.hiden_size=3"]),
    ("--set impossible value", None, ["--set", "model.hidden_size=0"]),
    ("--set malformed value", None, ["--set", "model.cell=[gru"]),
    ("--threads 0", None, ["--threads", "0"]),
    ("--threads abc", None, ["--threads", "abc"]),
    ("an unknown option", None, ["--bogus"]),
    ("param_budget below the smallest model", lambda exp: exp["model"].update(hidden_size=None, param_budget=3), []),
    ("digits splits leave no training data", lambda exp: exp.update(task={"name": "seq_digits", "n_val": 1000,
                                                                          "n_test": 1000}), []),
]


@pytest.mark.parametrize("change,extra", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(write_yaml, tiny_experiment, results, change, extra):
    exp = tiny_experiment()
    if change:
        change(exp)
    out = invoke("train", write_yaml(exp), "--results", results, *extra)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr
    assert not results.exists(), f"wrote {list(results.rglob('*'))}"


def test_compare_jobs_0_is_one_line(write_yaml, tiny_experiment, results):
    out = invoke("compare", write_yaml(tiny_experiment()), "--results", results, "--jobs", "0")
    assert out.exit_code == 2 and out.stderr.strip() == "error: --jobs 0: must be at least 1", out.stderr
    assert not results.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_one_line_exit_2_and_writes_nothing(write_yaml, tiny_experiment, results):
    out = invoke("train", write_yaml(tiny_experiment()), "--results", results, "--device", "cuda")
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1 and "cuda" in out.stderr
    assert not results.exists(), f"wrote {list(results.rglob('*'))}"


@pytest.mark.parametrize("command", ["train", "compare", "tune", "report"])
def test_command_line_mistakes_are_grucli_s_one_line_not_a_usage_block(write_yaml, tiny_experiment, results, command):
    out = invoke(command, write_yaml(tiny_experiment()), "--jobs" if command in ("compare", "tune") else "--bogus", "abc")
    assert out.exit_code == 2 and "Usage:" not in out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(rf"error: \S+ {command}: .* \(see \S+ {command} --help\)$", lines[0]), lines
    assert not results.exists()


def test_param_budget_below_the_smallest_model_names_that_count(write_yaml, tiny_experiment, results):
    exp = tiny_experiment(model={"cell": "lstm", "hidden_size": None, "param_budget": 3})
    out = invoke("train", write_yaml(exp), "--results", results)
    smallest = model_params("lstm", 1, input_size=2, output_size=1)  # the adding task: 2 features in, 1 out
    assert out.exit_code == 2 and f"model.param_budget: 3 is below the smallest lstm for this task: {smallest} " \
        "parameters" in out.stderr, out.stderr


def test_a_binary_experiment_file_is_one_line(tmp_path, results):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    for command in ("train", "compare", "tune"):
        out = invoke(command, path, "--results", results)
        assert out.exit_code == 2 and "Traceback" not in out.output
        assert out.stderr.strip().splitlines() == [f"error: {path}: not a text (UTF-8) file: byte 128 is 0x80; "
                                                   "an experiment file is YAML text"]
    assert not results.exists()


def test_a_run_summary_says_which_kernels_computed_it(write_yaml, tiny_experiment, results):
    import json

    out = invoke("train", write_yaml(tiny_experiment(grid={"model.impl": ["torch", "reference"]})), "--results", results)
    assert out.exit_code == 0, out.output
    kernels = {json.loads(p.read_text())["impl"]: json.loads(p.read_text())["kernels"]
               for p in results.glob("*/*/summary.json")}
    assert kernels == {"torch": "torch's own module", "reference": "the cell's Python step (reference)"}


def test_malformed_yaml_and_missing_file(write_yaml, results, tmp_path):
    for path in (write_yaml("name: t\ntask: {name: adding\n", "broken.yaml"), tmp_path / "missing.yaml"):
        out = invoke("train", path, "--results", results)
        assert out.exit_code == 2
        assert len(out.stderr.strip().splitlines()) == 1 and str(path) in out.stderr
        assert "Traceback" not in out.output
    assert not results.exists()


# --------------------------------------------------------------------------- catalogues and help
def test_tasks_and_cells_list_the_registries():
    tasks, cells = invoke("tasks"), invoke("cells")
    assert tasks.exit_code == cells.exit_code == 0
    for name in TASKS:
        assert name in tasks.output
    for name in CELLS:
        assert name in cells.output


def _commands(group: click.Command, path=()):
    """Every (path, command) of the app, sub-groups included."""
    for name, cmd in getattr(group, "commands", {}).items():
        yield (*path, name), cmd
        yield from _commands(cmd, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_app_has_commands():
    assert {"train", "tasks", "cells"} <= {p[0] for p, _ in COMMANDS}


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, cmd):
    assert cmd.help and cmd.help.strip(), f"{' '.join(path)} has no help text"
    assert "Example" in cmd.help, f"{' '.join(path)}: help has no Example block"
    for param in cmd.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{' '.join(path)}: {param.name} has no help text"
    out = invoke(*path, "--help")
    assert out.exit_code == 0 and cmd.help.strip().splitlines()[0][:40] in " ".join(out.output.split())


def test_root_help_and_python_dash_m():
    assert invoke("--help").exit_code == 0
    out = subprocess.run([sys.executable, "-m", "grucli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "train" in out.stdout


def test_version_names_grucli_and_torch():
    import torch

    import grucli

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and f"grucli {grucli.__version__}" in res.output and torch.__version__ in res.output


def test_help_does_not_import_torch():
    """`grucli --help` answers in a fraction of a second: the command modules import torch,
    pandas and scipy only when a command runs (it took ~3.5 s before)."""
    code = ("import sys, grucli.cli; heavy = [m for m in ('torch', 'pandas', 'scipy', 'matplotlib', 'tensorboard', "
            "'mlflow') if m in sys.modules]; assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
