"""Every shipped experiment file (and the README's example) loads, validates and expands.
Parametrised over the glob, so a new file is covered without touching this test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grucli.cli import app
from grucli.config import load_experiment
from grucli.grid import expand

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
CORE_TASKS = {"adding", "copy", "temporal_order", "counting", "seq_digits"}


def test_experiments_are_shipped():
    assert len(EXPERIMENTS) >= len(CORE_TASKS)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_loads_and_expands(path):
    runs = expand(load_experiment(path))
    assert runs
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.index for r in runs] == list(range(1, len(runs) + 1))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_starts_with_the_command_that_runs_it(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# grucli ") and f"experiments/{path.name}" in first, first


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_dry_run(path, tmp_path):
    """A dry run of the command the file's first line names (train, compare or tune)."""
    command = path.read_text().split()[2]
    out = CliRunner().invoke(app, [command, str(path), "--dry-run", "--results", str(tmp_path / "results")])
    assert out.exit_code == 0, out.output
    assert not (tmp_path / "results").exists()


def test_every_core_task_has_an_example():
    used = set()
    for path in EXPERIMENTS:
        exp = load_experiment(path)
        used |= {r.config.task.name for r in expand(exp)}
    assert CORE_TASKS <= used, CORE_TASKS - used


def test_readme_yaml_example_loads(tmp_path):
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
              if b.startswith("# grucli ")]  # whole files start with the command that runs them
    assert blocks, "the README shows an experiment file"
    path = tmp_path / "readme.yaml"
    path.write_text(blocks[0])
    runs = expand(load_experiment(path))
    assert runs
