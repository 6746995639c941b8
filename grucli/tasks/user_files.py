"""Your own data: `csv_forecast` (one numeric column of a CSV, rows in time order) and
`csv_classify` (one row per example: a label column plus either a text column or numeric
columns read left to right as the steps of a sequence). `path` is relative to the
experiment file; the loader records the file's content hash, so the run id follows the
data, not where the file lives. (`char_lm` with `path:` reads your text files.)"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from grucli.errors import DataError
from grucli.tasks.base import Task, TaskData
from grucli.tasks.cache import disk_cached
from grucli.tasks.forecast import WindowConfig, windowed_forecast
from grucli.tasks.sentiment import TextConfig, text_classification
from grucli.tasks.sources import UserFileConfig, column, numeric, read_csv
from grucli.tasks.uea import sequence_classification, stratified_carve


class CsvForecastConfig(WindowConfig, UserFileConfig):
    name: Literal["csv_forecast"] = "csv_forecast"
    path: str  # CSV file, relative to the experiment file; rows in time order
    column: str  # the numeric column to forecast; empty cells are gaps
    season: int | None = Field(None, ge=2)  # rows per season (12 for monthly data): adds the seasonal-naive baseline


@disk_cached
def build_csv_forecast(cfg: CsvForecastConfig) -> TaskData:
    df = read_csv(cfg.path)
    series = numeric(column(df, cfg.column, cfg.path, "column"), f"column '{cfg.column}'", cfg.path, "column")
    return windowed_forecast(series, cfg, cfg.season, cfg.path, {"column": cfg.column})


class CsvClassifyConfig(TextConfig, UserFileConfig):
    name: Literal["csv_classify"] = "csv_classify"
    path: str  # CSV file, relative to the experiment file; one example per row
    label: str  # the column holding each row's class
    text: str | None = None  # a text column to classify (tokenised by `unit`); null = numeric columns
    # numeric columns in step order; null = every column but the label. Empty trailing
    # cells end a shorter sequence.
    columns: list[str] | None = None


@disk_cached
def build_csv_classify(cfg: CsvClassifyConfig) -> TaskData:
    df = read_csv(cfg.path)
    labels = column(df, cfg.label, cfg.path, "label").astype(str).str.strip().tolist()
    if cfg.text is not None:
        texts = column(df, cfg.text, cfg.path, "text").astype(str).tolist()
        return text_classification(texts, labels, cfg, cfg.path, {"label": cfg.label, "text": cfg.text})
    names = cfg.columns or [c for c in df.columns if c != cfg.label]
    if not names:
        raise DataError(f"{cfg.path}: no feature columns beside the label '{cfg.label}'")
    values = np.stack([numeric(column(df, c, cfg.path), f"column '{c}'", cfg.path) for c in names], axis=1)  # (N, T)
    series = [row[:, None] for row in values]  # (T, 1) each; trailing NaN shortens the sequence
    y = np.array(labels)
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{cfg.path}: the label column '{cfg.label}' has a single class ({classes[0]!r}); "
                        "classification needs two or more", key="label")
    rest, test_idx = stratified_carve(np.array([classes.index(c) for c in labels]), cfg.test_frac, cfg.data_seed)
    if not len(test_idx) or len(rest) < 2:
        raise DataError(f"{cfg.path}: too few rows ({len(labels)}) for train, validation and test splits")
    return sequence_classification([series[i] for i in rest], list(y[rest]), [series[i] for i in test_idx],
                                   list(y[test_idx]), classes, cfg.val_frac / (1 - cfg.test_frac), cfg.data_seed,
                                   cfg.path, {"label": cfg.label, "columns": len(names)})


CSV_FORECAST = Task("csv_forecast", CsvForecastConfig, build_csv_forecast, "user",
                    "forecast one numeric column of your CSV (RMSE, MAE, MASE on its scale)",
                    source="`path:` your CSV file", sizes="yours", baseline="naive and (with season) seasonal naive")
CSV_CLASSIFY = Task("csv_classify", CsvClassifyConfig, build_csv_classify, "user",
                    "classify the rows of your CSV: a text column, or numeric columns as a sequence",
                    source="`path:` your CSV file", sizes="yours", baseline="majority class of train")
