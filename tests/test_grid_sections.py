"""Grids over whole sections (`grid: {task: [{name: adding, ...}, {name: copy, ...}]}`)."""

from __future__ import annotations

import pytest

from grucli.config import load_experiment
from grucli.errors import ConfigError
from grucli.grid import describe, expand

EXP = """
name: mixed
task: {name: adding, seq_len: 12, n_train: 40, n_val: 8, n_test: 8}
model: {cell: gru, hidden_size: 4}
grid:
  task:
    - {name: adding, seq_len: 10}
    - {name: copy, seq_len: 5, copy_len: 3}
  model.cell: [gru, lstm]
"""


def load(tmp_path, text=EXP, overrides=()):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return expand(load_experiment(path, list(overrides)))


def test_section_values_switch_tasks_and_keep_shared_keys(tmp_path):
    runs = load(tmp_path)
    assert len(runs) == 4
    copy = [r.config.task for r in runs if r.config.task.name == "copy"]
    assert len(copy) == 2 and copy[0].seq_len == 5 and copy[0].copy_len == 3
    assert copy[0].n_train == 40  # shared key from the base section
    adding = [r.config.task for r in runs if r.config.task.name == "adding"]
    assert adding[0].seq_len == 10 and adding[0].n_train == 40
    assert "task=copy(seq_len=5,copy_len=3)" in describe([r for r in runs if r.config.task.name == "copy"][0])


def test_set_of_a_subkey_overrides_section_values(tmp_path):
    runs = load(tmp_path, overrides=["task.seq_len=7"])
    assert {r.config.task.seq_len for r in runs} == {7}


def test_set_of_a_whole_section_drops_its_axes(tmp_path):
    runs = load(tmp_path, overrides=["task={name: adding, seq_len: 3}"])
    assert len(runs) == 2 and {r.config.task.seq_len for r in runs} == {3}


def test_invalid_key_in_a_section_value_names_the_point(tmp_path):
    bad = EXP.replace("copy_len: 3", "copy_length: 3")
    with pytest.raises(ConfigError, match=r"grid point task=copy.*unknown key 'task.copy_length'.*task.copy_len"):
        load(tmp_path, bad)


def test_section_value_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="grid.task: a grid value for 'task' must be a mapping"):
        load(tmp_path, EXP.replace("- {name: adding, seq_len: 10}", "- adding"))


def test_zip_pairs_whole_sections_and_merges_each_onto_the_base(tmp_path):
    """The demo's form: each task with its own training budget."""
    text = """
name: zipped
task: {name: adding, n_train: 40, n_val: 8, n_test: 8}
model: {cell: gru, hidden_size: 4}
train: {batch_size: 8, epochs: 2, lr: 0.005}
zip:
  - task: [{name: adding, seq_len: 10}, {name: copy, seq_len: 5, copy_len: 3}]
    train: [{epochs: 3}, {epochs: 7, lr: 0.01}]
grid:
  model.cell: [gru, lstm]
"""
    runs = load(tmp_path, text)
    assert len(runs) == 4
    pairs = {(r.config.task.name, r.config.train.epochs, r.config.train.lr, r.config.train.batch_size) for r in runs}
    assert pairs == {("adding", 3, 0.005, 8), ("copy", 7, 0.01, 8)}


def test_set_of_a_subkey_overrides_zipped_section_values(tmp_path):
    """--set train.epochs=1 must shorten every run, also where a zipped train section set its own."""
    text = """
name: zipped
task: {name: adding, n_train: 40, n_val: 8, n_test: 8}
model: {cell: gru, hidden_size: 4}
train: {epochs: 2, lr: 0.005}
zip:
  - task: [{name: adding, seq_len: 10}, {name: copy, seq_len: 5, copy_len: 3}]
    train: [{epochs: 3}, {epochs: 7, lr: 0.01}]
"""
    runs = load(tmp_path, text, overrides=["train.epochs=1"])
    assert [(r.config.task.name, r.config.train.epochs, r.config.train.lr) for r in runs] == \
        [("adding", 1, 0.005), ("copy", 1, 0.01)]
    assert "epochs" not in describe(runs[0]) + describe(runs[1])
