"""Forecasting real series with sliding windows: `forecast` on series shipped by
statsmodels (read from its data files, no download), and the windowing shared with
`csv_forecast` (grucli.tasks.user_files).

Split: chronological by target position (train | val | test), so no target of an earlier
split lies later than one of a later split. Scaling is fitted on the train part only.
Gaps: inputs are filled by linear interpolation (`gaps: interpolate`) and windows whose
targets fall on a gap are skipped, or every window touching a gap is dropped (`gaps: drop`).
Metrics rmse, mae, mase on the original scale beside the naive (last value) and
seasonal-naive (value one season earlier) baselines on the test windows."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator

from grucli.errors import DataError
from grucli.objectives import Forecast, forecast_errors
from grucli.tasks.base import Split, Task, TaskConfig, TaskData
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import check_name, package_file, rows_text, small_split_note


class WindowConfig(TaskConfig):
    """Keys shared by every forecasting task."""

    window: int = Field(52, ge=1)  # input steps per example
    horizon: int = Field(1, ge=1)  # steps predicted after each window (one output each)
    stride: int = Field(1, ge=1)  # steps between the starts of consecutive windows
    val_frac: float = Field(0.15, gt=0, lt=0.5)  # share of the series (by time) for validation
    test_frac: float = Field(0.15, gt=0, lt=0.5)  # the last share of the series, for test
    # window: values relative to each window's last one (follows trends); global: minus the
    # train mean. Both divide by the train standard deviation.
    scaling: Literal["window", "global"] = "window"
    # missing values: interpolate inputs and skip windows whose targets hit a gap, or drop
    # every window touching a gap
    gaps: Literal["interpolate", "drop"] = "interpolate"


def _fill(series: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN (ends: nearest value)."""
    ok = ~np.isnan(series)
    idx = np.arange(len(series))
    return np.interp(idx, idx[ok], series[ok])


def windowed_forecast(series: np.ndarray, cfg: WindowConfig, season: int | None, source: str,
                      info: dict | None = None) -> TaskData:
    """Series (NaN = gap) -> sliding windows, chronological split, scaling, baselines."""
    series = np.asarray(series, dtype=np.float64)
    n, W, H = len(series), cfg.window, cfg.horizon
    if np.isnan(series).all():
        raise DataError(f"{source}: the series has no values")
    gap = np.isnan(series)
    filled = _fill(series)
    b1 = int(round(n * (1 - cfg.val_frac - cfg.test_frac)))
    b2 = int(round(n * (1 - cfg.test_frac)))
    starts = np.arange(0, max(n - W - H + 1, 0), cfg.stride)
    first = starts + W  # index of each window's first target
    gap_sum = np.concatenate([[0], np.cumsum(gap)])
    scored_from = first if cfg.gaps == "interpolate" else starts  # where a gap disqualifies a window
    in_gap = gap_sum[first + H] - gap_sum[scored_from] > 0
    parts = {"train": (first + H <= b1), "val": (first >= b1) & (first + H <= b2), "test": first >= b2}
    need = {"train": b1, "val": b2 - b1, "test": n - b2}
    picked = {}
    for part, mask in parts.items():
        picked[part] = starts[mask & ~in_gap]
        if len(picked[part]) == 0:
            raise DataError(f"{source}: {n} rows are too few for window {W} + horizon {H}: the {part} part "
                            f"({need[part]} rows) holds no complete window; use a smaller window or a longer series")
    train_vals = series[:b1][~gap[:b1]]
    mean, scale = float(train_vals.mean()), float(train_vals.std()) or 1.0
    steps = np.abs(np.diff(series[:b1]))
    mase_scale = float(np.nanmean(steps)) if np.isfinite(steps).any() else 1.0
    mase_scale = mase_scale or 1.0

    def make(s: np.ndarray) -> Split:
        idx = s[:, None] + np.arange(W)  # (N, W)
        anchor = filled[s + W - 1] if cfg.scaling == "window" else np.full(len(s), mean)  # (N,)
        x = (filled[idx] - anchor[:, None]) / scale  # (N, W)
        future = filled[(s + W)[:, None] + np.arange(H)]  # (N, H)
        y = np.concatenate([future, anchor[:, None]], axis=1)  # (N, H + 1)
        return Split(torch.tensor(x, dtype=torch.float32).unsqueeze(-1), torch.tensor(y, dtype=torch.float32))

    train, val, test = (make(picked[p]) for p in ("train", "val", "test"))
    notes = []
    if gap.any():
        how = ("`gaps: interpolate` fills them linearly in the inputs and scores no window whose target is one"
               if cfg.gaps == "interpolate" else "`gaps: drop` leaves out every window that touches one")
        notes.append(f"{source}: {int(gap.sum())} empty cell(s) ({rows_text(np.flatnonzero(gap))}): {how}")
    notes += small_split_note(source, len(picked["val"]), len(picked["test"]), "windows", False)
    s = picked["test"]
    targets = (s + W)[:, None] + np.arange(H)  # (N, H) series index of every test target
    true = torch.tensor(filled[targets])
    naive = torch.tensor(np.repeat(filled[s + W - 1][:, None], H, axis=1))
    baseline = forecast_errors(naive, true, mase_scale)
    m = season or 1
    if m > 1:
        lag = m * np.ceil((np.arange(H) + 1) / m).astype(int)  # (H,) most recent same-season value before the origin
        if (targets - lag).min() < 0:
            raise DataError(f"{source}: season {m} reaches back before the first row for the earliest test "
                            f"targets ({n} rows); use a shorter season or a longer series", key="season")
        snaive = torch.tensor(filled[targets - lag])
        baseline.update({f"snaive_{k}": v for k, v in forecast_errors(snaive, true, mase_scale).items()})
    return TaskData(
        train, val, test, input_size=1, output_size=H, head="last", objective=Forecast(scale, mase_scale),
        metric="rmse", goal="min", baseline=baseline,
        info={"seq_len": W, "points": n, "gaps": int(gap.sum()), "season": m, "source": source,
              "windows": {p: len(picked[p]) for p in picked},
              "baseline_rule": "naive: last value; snaive: one season earlier", "notes": notes,
              **(info or {})},
    )


# --------------------------------------------------------------------------- bundled series
def _co2() -> np.ndarray:
    df = pd.read_csv(package_file("statsmodels", "datasets/co2/co2.csv"))
    return pd.to_numeric(df["co2"], errors="coerce").to_numpy(float)  # weekly, gaps are empty cells


def _sunspots() -> np.ndarray:
    return pd.read_csv(package_file("statsmodels", "datasets/sunspots/sunspots.csv"))["SUNACTIVITY"].to_numpy(float)


def _elnino() -> np.ndarray:
    df = pd.read_csv(package_file("statsmodels", "datasets/elnino/elnino.csv"))
    return df.drop(columns="YEAR").to_numpy(float).reshape(-1)  # (years, 12) -> monthly


# name -> (reader, season, description)
SERIES = {
    "co2": (_co2, 52, "statsmodels co2: Mauna Loa CO2, weekly 1958-2001, 2,284 points (59 gaps)"),
    "sunspots": (_sunspots, 11, "statsmodels sunspots: yearly sunspot activity 1700-2008, 309 points"),
    "elnino": (_elnino, 12, "statsmodels elnino: monthly sea surface temperature 1950-2010, 732 points"),
}


class ForecastConfig(WindowConfig):
    name: Literal["forecast"] = "forecast"
    dataset: str = "co2"  # bundled series: co2 (weekly), sunspots (yearly), elnino (monthly)
    horizon: int = Field(4, ge=1)  # steps predicted after each window (4 weeks of co2)

    @field_validator("dataset")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_name("forecast data set", v, SERIES)


@disk_cached
def build_forecast(cfg: ForecastConfig) -> TaskData:
    read, season, about = SERIES[cfg.dataset]
    return windowed_forecast(read(), cfg, season, f"forecast data set {cfg.dataset}", {"about": about})


FORECAST = Task("forecast", ForecastConfig, build_forecast, "real",
                "forecast a real series from sliding windows (RMSE, MAE, MASE on the original scale)",
                source="statsmodels package data files (pip install 'grucli[real]')",
                sizes="co2 2,284 weekly (59 gaps); sunspots 309 yearly; elnino 732 monthly",
                baseline="naive (last value) and seasonal naive")
