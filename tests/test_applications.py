"""The applications the course notes teach, on small data the tests make: anomaly detection
by forecasting (csv_anomaly, the bundled aeon series), next-word prediction (word_lm) and
translation with an encoder-decoder (reverse, g2p, csv_translate; attention, beam search)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grucli.cli import app
from grucli.errors import DataError
from grucli.objectives import AnomalyForecast, anomaly_scores
from grucli.tasks.anomaly import AnomalyConfig, CsvAnomalyConfig, build_anomaly, build_csv_anomaly

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(cache_in_tmp):
    """Every test gets its own empty disk cache."""


def fresh(build, cfg):
    return build.__wrapped__(cfg)


# ---------------------------------------------------------------- anomaly detection

@pytest.fixture
def anomaly_csv(tmp_path):
    """A sine of period 20 over 600 rows; rows 450-459 are a spike (+3), labelled 1."""
    t = np.arange(600)
    value = np.sin(2 * np.pi * t / 20)
    label = np.zeros(600, dtype=int)
    value[450:460] += 3.0
    label[450:460] = 1
    path = tmp_path / "series.csv"
    pd.DataFrame({"value": value, "label": label}).to_csv(path, index=False)
    return path


def test_csv_anomaly_trains_on_the_normal_part_and_tests_after_it(anomaly_csv):
    data = fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(anomaly_csv), window=10, normal_frac=0.5))
    # the first 300 rows are normal: windows of 10 give 290 targets, 20 % of them for validation
    assert len(data.train.x) + len(data.val.x) == 290 and len(data.val.x) == 58
    assert data.train.x.shape[1:] == (10, 1) and data.info["test_anomalous_points"] == 10
    # the test split carries the validation windows first as calibration rows (flag 0)
    scored = data.test.y[:, 2]
    assert scored[:58].sum() == 0 and scored[58:].min() == 1 and len(scored) == 58 + 300
    assert data.metric == "pr_auc" and data.select == "mse"
    # the naive forecaster sees the spike's jump: a finite, better-than-chance PR-AUC
    assert 10 / 300 < data.baseline["pr_auc"] <= 1.0


def test_anomaly_threshold_comes_from_the_calibration_errors():
    calibration = np.array([0.1, 0.2, 0.3])
    score = np.array([0.05, 0.25, 0.35, 5.0])
    labels = np.array([0, 0, 1, 1])
    at_max = anomaly_scores(calibration, score, labels, 1.0)  # threshold 0.3: flags the last two
    assert at_max["threshold"] == pytest.approx(0.3)
    assert (at_max["precision"], at_max["recall"], at_max["f1"]) == (1.0, 1.0, 1.0)
    lower = anomaly_scores(calibration, score, labels, 0.5)  # threshold 0.2: also flags 0.25
    assert lower["precision"] == pytest.approx(2 / 3) and lower["recall"] == 1.0
    assert at_max["pr_auc"] == pytest.approx(1.0)  # the anomalies have the two largest scores


def test_anomaly_objective_scores_only_where_calibration_and_scored_rows_meet():
    objective = AnomalyForecast(1.0)
    out = torch.tensor([0.0, 0.0, 0.0, 0.0])
    y = torch.tensor([[0.1, 0, 0], [0.2, 0, 0], [0.1, 0, 1], [3.0, 1, 1]])
    both = objective.metrics(out, y)
    assert both["mse"] == pytest.approx((0.01 + 9.0) / 2)  # on the scored rows only
    assert both["recall"] == 1.0 and both["precision"] == 1.0
    only_normal = objective.metrics(out[:2], y[:2])  # validation: no scored rows -> mse alone
    assert set(only_normal) == {"mse"}


def test_anomaly_data_errors_name_the_problem(tmp_path, anomaly_csv):
    df = pd.read_csv(anomaly_csv)
    df.loc[3, "label"] = 2
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"expected 0 or 1, got 2.* data row 4"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(bad), window=10))
    df.loc[3, "label"] = 0
    df["label"] = 0
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match="no point after the normal part is labelled anomalous"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(bad), window=10))
    with pytest.raises(DataError, match="too few to train"):
        fresh(build_csv_anomaly, CsvAnomalyConfig(path=str(anomaly_csv), window=235, normal_frac=0.4))


def test_bundled_anomaly_series_cut_after_the_training_part():
    pytest.importorskip("aeon")  # the `real` extra; `make env` installs it
    with pytest.raises(DataError, match=r"max_test=300 leaves no anomalous point .*the first is at 2987"):
        fresh(build_anomaly, AnomalyConfig(max_test=300))
    data = fresh(build_anomaly, AnomalyConfig(max_test=3100, window=16))
    assert data.info["test_points"] == 3100 and data.info["test_anomalous_points"] > 0
    assert data.info["normal_points"] == 1200


def test_csv_anomaly_end_to_end_writes_detection_scores(tmp_path, anomaly_csv, write_yaml, results):
    path = write_yaml({"name": "anom", "task": {"name": "csv_anomaly", "path": str(anomaly_csv), "window": 10,
                                                "normal_frac": 0.5},
                       "model": {"cell": "gru", "hidden_size": 4}, "train": {"epochs": 2, "max_steps": 3}})
    result = runner.invoke(app, ["train", str(path), "--results", str(results)])
    assert result.exit_code == 0, result.output
    (summary_path,) = results.glob("anom/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["metric"] == "pr_auc" and summary["selected_on"] == "mse"
    assert math.isfinite(summary["test"]["pr_auc"]) and 0 <= summary["test"]["recall"] <= 1
