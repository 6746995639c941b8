"""task.data_seed: per_seed (each run draws its data with its own seed): what each run's data
are, that runs with different data never share a pack (and packing changes no number), how
the results folder records it, and the one-line error for a bad value."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from grucli.store import runs as runs_table
from grucli import execute, store
from grucli.cli import app
from grucli.config import load_experiment
from grucli.train import packing
from grucli.grid import expand
from grucli.store import reader
from grucli.tasks import build_task

runner = CliRunner()


def experiment(write_yaml, tiny_experiment, data_seed="per_seed", **keys) -> list:
    exp = tiny_experiment(**keys)
    exp["task"]["data_seed"] = data_seed
    return expand(load_experiment(write_yaml(exp)))


def same_data(a, b) -> bool:
    return all(torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val", "test"))


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_each_seed_draws_its_own_data_and_a_seed_always_the_same(write_yaml, tiny_experiment, cache_in_tmp, task):
    runs = experiment(write_yaml, tiny_experiment, task=task, seeds=[0, 1])
    again = experiment(write_yaml, tiny_experiment, task=task, seeds=[1])
    d0, d1, d1_again = (build_task(r.config.task) for r in (*runs, *again))
    assert not same_data(d0, d1)
    assert same_data(d1, d1_again)
    fixed = experiment(write_yaml, tiny_experiment, data_seed=0, task=task, seeds=[0, 1])
    assert same_data(*(build_task(r.config.task) for r in fixed))  # an int: one draw for every seed


def test_runs_with_different_data_never_share_a_pack(write_yaml, tiny_experiment):
    runs = experiment(write_yaml, tiny_experiment, seeds=3, grid={"model.cell": ["gru", "lstm"]})
    assert len({packing.key(r.config) for r in runs}) == 6
    assert all(len(p) == 1 for p in packing.packs(runs, 3))
    fixed = experiment(write_yaml, tiny_experiment, data_seed=0, seeds=3, grid={"model.cell": ["gru", "lstm"]})
    assert [len(p) for p in packing.packs(fixed, 3)] == [3, 3]  # (the same grid with one draw packs)


def stored(exp_dir):
    out = {}
    for s in exp_dir.glob("*/summary.json"):
        d = json.loads(s.read_text())
        out[d["run_id"]] = (d["status"], d["test"], d["val"], (s.parent / "history.csv").read_text().count("\n"))
    return out


def test_a_per_seed_grid_packed_stores_what_it_stores_alone(tmp_path, write_yaml, tiny_experiment):
    runs = experiment(write_yaml, tiny_experiment, seeds=3)
    execute.run_grid(runs, tmp_path / "alone", "p", executor="inline", pack=1, threads=1)
    execute.run_grid(runs, tmp_path / "packed", "p", executor="inline", pack=3, threads=1)
    alone, packed = stored(tmp_path / "alone"), stored(tmp_path / "packed")
    assert len(alone) == 3 and alone == packed
    assert len({v[1]["mse"] for v in alone.values()}) == 3
    sizes = [json.loads(p.read_text())["timing"]["pack_size"] for p in (tmp_path / "packed").glob("*/summary.json")]
    assert sizes == [1, 1, 1]  # asked for packs of 3: runs with different data each trained alone


def test_the_results_folder_says_the_data_followed_the_seed(tmp_path, write_yaml, tiny_experiment):
    runs = experiment(write_yaml, tiny_experiment, seeds=2, grid={"model.cell": ["gru", "lstm"]})
    execute.run_grid(runs, tmp_path / "e", "e", executor="inline", pack=1, threads=1)
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "e").glob("*/summary.json")]
    assert {s["data_seed"] for s in summaries} == {"per_seed"}
    assert all(s["config"]["task"]["data_seed"] == s["seed"] for s in summaries)  # config.yaml: resolved
    df = runs_table.load_runs(tmp_path / "e")
    # per_seed is one setting, not one per seed: the concrete data seed is the seed column
    assert set(df["config.task.data_seed"]) == {"per_seed"} and set(df["seed"]) == {0, 1}
    fixed = experiment(write_yaml, tiny_experiment, data_seed=4)
    execute.run_grid(fixed, tmp_path / "f", "f", executor="inline", pack=1, threads=1)
    row = reader.collect([tmp_path / "f"], histories=False).runs.iloc[0]
    assert row["data_seed"] == 4 and row["config.task.data_seed"] == 4


def test_a_bad_data_seed_exits_2_with_one_line(tmp_path, tiny_experiment):
    exp = tiny_experiment()
    exp["task"]["data_seed"] = "banana"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(exp))
    out = runner.invoke(app, ["compare", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    assert out.exit_code == 2
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "task.data_seed" in lines[0] and "per_seed" in lines[0] and "'banana'" in lines[0]
