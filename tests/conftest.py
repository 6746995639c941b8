"""Shared fixtures: tiny experiments (a few dozen sequences, 4 hidden units, a handful of
optimiser steps) so end-to-end tests stay fast on 2 shared CPU cores."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from grucli.config import RunConfig

# The smallest sensible config of every registered task. A task added to the registry
# must get an entry here or in NOT_TINY (test_tasks checks), so end-to-end tests cover it.
TINY_TASKS: dict[str, dict] = {
    "adding": {"name": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32},
    "copy": {"name": "copy", "seq_len": 5, "copy_len": 3, "n_symbols": 4, "n_train": 64, "n_val": 32, "n_test": 32},
    "temporal_order": {"name": "temporal_order", "seq_len": 12, "n_train": 64, "n_val": 32, "n_test": 32},
    "counting": {"name": "counting", "max_n_train": 3, "max_n_test": 5, "n_train": 64, "n_val": 32, "n_test": 32},
    "seq_digits": {"name": "seq_digits", "n_val": 32, "n_test": 32},
    "forecast": {"name": "forecast", "window": 8},
    "uea": {"name": "uea"},
    "char_lm": {"name": "char_lm", "seq_len": 20, "max_chars": 3000},
    "anomaly": {"name": "anomaly", "window": 16, "max_test": 3100},
    "word_lm": {"name": "word_lm", "seq_len": 10, "max_words": 3000},
    "reverse": {"name": "reverse", "seq_len": 5, "min_len": 2, "n_symbols": 4, "n_train": 64, "n_val": 32, "n_test": 32},
    "g2p": {"name": "g2p", "n_train": 64, "n_val": 32, "n_test": 32, "max_letters": 6},
    "polyphonic": {"name": "polyphonic", "max_pieces": 6, "max_len": 12},
}
# Registered tasks without a tiny config, and why (their own test modules cover them).
NOT_TINY: dict[str, str] = {
    "sentiment": "building its vocabulary takes seconds",
    "csv_forecast": "needs a user CSV file",
    "csv_classify": "needs a user CSV file",
    "csv_anomaly": "needs a user CSV file (tests/test_applications.py makes one)",
    "csv_translate": "needs a user CSV file (tests/test_applications.py makes one)",
}
TINY_MODEL = {"cell": "gru", "hidden_size": 4}
TINY_TRAIN = {"epochs": 2, "batch_size": 32, "max_steps": 4, "threads": 1, "eval_batch_size": 256}


def _tiny_experiment(task: str = "adding", name: str | None = None, **sections) -> dict:
    """An experiment as a dict: the tiny task/model/train, each section updated (not
    replaced) by the keyword of the same name; other keywords (grid, seeds, ...) are set."""
    exp = {"name": name or f"tiny_{task}", "task": copy.deepcopy(TINY_TASKS[task]),
           "model": dict(TINY_MODEL), "train": dict(TINY_TRAIN)}
    for key, value in sections.items():
        if key in ("task", "model", "train"):
            exp[key].update(value)
        else:
            exp[key] = value
    return exp


def _tiny_run(task: str = "adding", seed: int = 0, **sections) -> RunConfig:
    """A resolved tiny RunConfig (validated the same way grid points are)."""
    exp = _tiny_experiment(task, **sections)
    return RunConfig(task=exp["task"], model=exp["model"], train=exp["train"], seed=seed)


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml(data, name="exp.yaml") -> Path. `data` is a dict (dumped as YAML) or raw
    YAML text (for malformed-file tests)."""

    def write(data: dict | str, name: str = "exp.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def results(tmp_path) -> Path:
    """Where CLI runs write (it does not exist until something is written)."""
    return tmp_path / "results"


@pytest.fixture
def tiny_experiment():
    """tiny_experiment(task="adding", name=None, task={...}, model={...}, grid={...}, ...) -> dict"""
    return _tiny_experiment


@pytest.fixture
def tiny_run():
    """tiny_run(task="adding", seed=0, model={...}, train={...}) -> RunConfig"""
    return _tiny_run


@pytest.fixture
def tiny_tasks() -> dict[str, dict]:
    """The tiny config of every task, by registry name."""
    return TINY_TASKS


@pytest.fixture
def not_tiny() -> dict[str, str]:
    """Registered tasks deliberately left out of the tiny end-to-end tests, with the reason."""
    return NOT_TINY


@pytest.fixture
def cache_in_tmp(tmp_path, monkeypatch) -> Path:
    """An empty data cache of the test's own (GRUCLI_CACHE)."""
    monkeypatch.setenv("GRUCLI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def lstm_runs_fail(monkeypatch):
    """Every lstm run fails as its model is built (RuntimeError "lstm optimiser broke", a
    crash inside training); runs of other cells train as usual."""
    from grucli.train import loop

    real = loop.build_model

    def fails_for_lstm(cfg, data):
        if cfg.model.cell == "lstm":
            raise RuntimeError("lstm optimiser broke")
        return real(cfg, data)

    monkeypatch.setattr(loop, "build_model", fails_for_lstm)
