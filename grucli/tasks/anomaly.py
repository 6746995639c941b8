"""Anomaly detection in time series by forecasting: `anomaly` on labelled series that the
aeon package ships (read from its data files; aeon itself is imported only for its
metrics), and `csv_anomaly` on the user's CSV (a value column and a 0/1 label column).

The series' normal prefix (rows known to hold no anomaly) is cut into sliding windows:
the model learns to predict the next value from the last `window` ones (MSE on values
z-scored with the training part's mean and standard deviation). The last `val_frac` of
those windows is validation: it selects the epoch (forecast MSE) and calibrates the alarm
threshold, the `threshold_quantile` of its forecast errors (1.0: the largest error seen on
normal data). The rest of the series is the test: anomaly score = squared forecast error
per step; metrics precision, recall and F1 at the threshold, and threshold-free PR-AUC
(aeon's pr_auc_score) as the primary metric, plus aeon's range-based F1. Baseline: the same
scoring with a naive forecaster (the last value).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator

from grucli.errors import DataError
from grucli.objectives import AnomalyForecast, anomaly_scores
from grucli.tasks.base import Split, Task, TaskConfig, TaskData
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import (Missing, UserFileConfig, apply_missing, check_name, column, numeric,
                                  package_file, read_csv, small_split_note)

# name -> (files inside the aeon package: normal part first, then the part to test; value
# column; label column; what it is). The normal part is the whole first file.
DATASETS = {
    "kdd135": (("datasets/data/KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_TRAIN.csv",
                "datasets/data/KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_TEST.csv"), "value", "is_anomaly",
               "UCR/KDD-TSAD 135 InternalBleeding16: a heart-rate series, 1,200 normal points, then 6,301 to "
               "test with one 12-point anomaly"),
    "ecg": (("datasets/data/UnitTest/ecg-diff-count-3_TRAIN_NA.csv", "datasets/data/UnitTest/ecg-diff-count-3_TEST.csv"),
            "value-0", "is_anomaly", "an ECG excerpt (aeon's ecg-diff-count-3): 10,000 normal points, then 10,000 "
                                     "with three 100-point anomalies (removed from aeon in 1.7)"),
}


class AnomalyWindows(TaskConfig):
    """Keys shared by the anomaly tasks."""

    window: int = Field(64, ge=2)  # past values the forecaster reads
    val_frac: float = Field(0.2, gt=0, lt=0.9)  # share of the normal windows for validation and the threshold
    threshold_quantile: float = Field(1.0, gt=0.5, le=1.0)  # of the validation errors; 1.0 = their maximum


class AnomalyConfig(AnomalyWindows):
    name: Literal["anomaly"] = "anomaly"
    dataset: str = "kdd135"  # see DATASETS / `grucli tasks`
    max_test: int | None = Field(None, ge=10)  # use only the first this-many points of the test part

    @field_validator("dataset")
    @classmethod
    def _known(cls, v):
        return check_name("anomaly dataset", v, DATASETS)


class CsvAnomalyConfig(AnomalyWindows, UserFileConfig):
    name: Literal["csv_anomaly"] = "csv_anomaly"
    column: str = "value"  # the series
    channels: list[str] | None = None  # several value columns, one channel each (forecast together), instead of column
    label: str = "label"  # 0/1, 1 = anomalous point
    normal_frac: float = Field(0.3, gt=0, lt=1)  # the first share of rows trains the forecaster (labelled 1s there are skipped)
    # a row with an empty value or label: stop with a line naming it (error), or leave the row
    # out and say how many (drop_row; the rows around it become neighbours)
    missing: Missing = "error"



def anomaly_windows(values: np.ndarray, labels: np.ndarray, normal_until: int, cfg: AnomalyWindows,
                    source: str, info: dict) -> TaskData:
    """Series and labels -> train / validation windows from the normal part, test windows
    after it (with the validation windows in front, as calibration rows)."""
    W = cfg.window
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels).astype(np.int64)
    values = values[:, None] if values.ndim == 1 else values  # (N, C)
    C = values.shape[1]
    if np.isnan(values).any():
        raise DataError(f"{source}: the series has gaps (empty cells); fill them first", key="path")
    normal_targets = [t for t in range(W, normal_until) if labels[t] == 0 and labels[t - W:t].sum() == 0]
    n_val = int(len(normal_targets) * cfg.val_frac)
    if len(normal_targets) - n_val < 8 or n_val < 4:
        raise DataError(f"{source}: the normal part ({normal_until} points) leaves {len(normal_targets)} windows of "
                        f"{W}: too few to train and calibrate (lower window or give more normal rows)")
    test_targets = list(range(max(W, normal_until), len(values)))
    if not test_targets:
        raise DataError(f"{source}: nothing after the normal part to test")
    if not labels[np.asarray(test_targets)].any():
        raise DataError(f"{source}: no point after the normal part is labelled anomalous; nothing to detect")
    train_targets, val_targets = normal_targets[:-n_val], normal_targets[-n_val:]
    end = train_targets[-1] + 1
    # per channel, each over its own 1-D column (one channel: the same numbers as ever)
    mean = np.array([float(values[:end, c].mean()) for c in range(C)])
    std = np.array([float(values[:end, c].std()) or 1.0 for c in range(C)])
    z = (values - mean) / std  # (N, C)

    def split(targets: list[int], scored: bool) -> Split:
        idx = np.asarray(targets)
        x = np.stack([z[t - W:t] for t in idx])  # (N, W, C)
        y = np.concatenate([z[idx], labels[idx][:, None], np.full((len(idx), 1), float(scored))], axis=1)  # (N, C + 2)
        return Split(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))

    train, val = split(train_targets, False), split(val_targets, False)
    scored = split(test_targets, True)
    test = Split(torch.cat([val.x, scored.x]), torch.cat([val.y, scored.y]))  # calibration rows first
    naive = lambda targets: ((z[np.asarray(targets)] - z[np.asarray(targets) - 1]) ** 2).mean(1)  # noqa: E731
    base = anomaly_scores(naive(val_targets), naive(test_targets), labels[np.asarray(test_targets)],
                          cfg.threshold_quantile)
    base["mse"] = float(naive(test_targets).mean())
    n_anom = int(labels[np.asarray(test_targets)].sum())
    return TaskData(
        train, val, test, input_size=C, output_size=C, head="last", objective=AnomalyForecast(cfg.threshold_quantile),
        metric="pr_auc", goal="max", select="mse", select_goal="min",
        baseline={k: base[k] for k in ("pr_auc", "f1", "precision", "recall", "range_f1", "mse")},
        info={**info, "notes": [*info.get("notes", []), *small_split_note(source, len(val_targets), len(test_targets),
                                                                          "windows", False)],
              "seq_len": W, "source": source, "points": len(values), "normal_points": normal_until,
              "test_points": len(test_targets), "test_anomalous_points": n_anom,
              "baseline_rule": "squared error of the naive last-value forecast, same threshold rule"},
    )


@disk_cached
def build_anomaly(cfg: AnomalyConfig) -> TaskData:
    files, value_col, label_col, summary = DATASETS[cfg.dataset]
    parts = [pd.read_csv(package_file("aeon", f)) for f in files]
    normal, rest = parts
    # kdd135's TRAIN file is the first 1,200 rows of its TEST file: test what follows them
    if len(rest) >= len(normal) and rest[value_col].iloc[:len(normal)].equals(normal[value_col]):
        rest = rest.iloc[len(normal):]
    if cfg.max_test:
        anomalous = np.flatnonzero(rest[label_col].to_numpy())
        if not len(anomalous) or anomalous[0] >= cfg.max_test:
            first = f"the first is at {anomalous[0]}" if len(anomalous) else "it has none"
            raise DataError(f"max_test={cfg.max_test} leaves no anomalous point in {cfg.dataset}'s test part "
                            f"({first}); raise max_test or leave it unset", key="max_test")
        rest = rest.iloc[:cfg.max_test]
    values = np.concatenate([normal[value_col].to_numpy(), rest[value_col].to_numpy()])
    labels = np.concatenate([normal[label_col].to_numpy(), rest[label_col].to_numpy()])
    return anomaly_windows(values, labels, len(normal), cfg, f"aeon {files[1]}", {"dataset": cfg.dataset})


@disk_cached
def build_csv_anomaly(cfg: CsvAnomalyConfig) -> TaskData:
    df = read_csv(cfg.path)
    key, names = ("channels", cfg.channels) if cfg.channels else ("column", [cfg.column])
    values = np.stack([numeric(column(df, c, cfg.path, key), f"column {c!r}", cfg.path, key) for c in names],
                      axis=1)  # (N, C)
    labels = numeric(column(df, cfg.label, cfg.path, "label"), f"column {cfg.label!r}", cfg.path, "label")
    problems = {int(r): ("label", f"the label (column {cfg.label!r}) is empty") for r in np.flatnonzero(np.isnan(labels))}
    for r, c in reversed(np.argwhere(np.isnan(values)).tolist()):  # the first empty channel of each row wins
        problems[int(r)] = (key, f"the value (column {names[c]!r}) is empty")
    notes: list[str] = []
    keep = apply_missing(problems, len(df), cfg.missing, cfg.path, notes)
    values, labels = values[keep], labels[keep]
    bad = ~np.isin(labels, [0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{cfg.path}: label column {cfg.label!r}: expected 0 or 1, got {labels[i]:g} in data row "
                        f"{int(keep[i]) + 1}", key="label")
    return anomaly_windows(values, labels, int(len(values) * cfg.normal_frac), cfg, cfg.path, {"notes": notes})


ANOMALY = Task("anomaly", AnomalyConfig, build_anomaly, "real",
               "time-series anomaly detection by forecasting the normal signal (PR-AUC, F1 at a calibrated threshold)",
               source="labelled series in the aeon wheel (aeon/datasets/data/..., read as files)",
               sizes="kdd135: 7,501 points, one 12-point anomaly; ecg: 20,000 points, three 100-point anomalies",
               baseline="the same score from a naive last-value forecaster")
CSV_ANOMALY = Task("csv_anomaly", CsvAnomalyConfig, build_csv_anomaly, "user file",
                   "anomaly detection on your CSV: a value column and a 0/1 label column",
                   source="`path:` a CSV of yours", baseline="naive last-value forecaster")
