"""Your own data: `csv_forecast` (one numeric column of a CSV, rows in time order) and
`csv_classify` (one row per example: a label column plus either a text column or numeric
columns read left to right as the steps of a sequence). `path` is relative to the
experiment file; the loader records the file's content hash, so the run id follows the
data, not where the file lives. (`char_lm` with `path:` reads your text files.)"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from grucli.errors import DataError
from grucli.tasks.base import Task, TaskData
from grucli.tasks.cache import disk_cached
from grucli.tasks.forecast import WindowConfig, windowed_forecast
from grucli.tasks.sentiment import TextConfig, text_classification
from grucli.tasks.sources import Missing, UserFileConfig, apply_missing, blank, column, numeric, read_csv
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
    # a row with an empty label, text, or an empty cell inside its sequence: stop with a line
    # naming it (error), or leave the row out and say how many (drop_row)
    missing: Missing = "error"


def check_labels(labels: list[str], rows: np.ndarray, cfg: CsvClassifyConfig) -> None:
    """Labels fit for classification: two or more classes, categories rather than a measured
    quantity, at least two examples of each. `rows`: each label's data row index."""
    where = f"{cfg.path}: column '{cfg.label}'"
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{where} has a single class ({classes[0]!r}); classification needs two or more"
                        if classes else f"{cfg.path}: no rows left to classify", key="label")
    numbers = pd.to_numeric(pd.Series(classes), errors="coerce")
    if numbers.notna().all() and len(classes) > max(20, len(labels) / 10):
        raise DataError(f"{where} holds {len(classes)} distinct numbers in {len(labels)} rows: it looks like a "
                        "quantity to predict (regression), not classes; csv_classify needs a column of categories "
                        "(to forecast a numeric column over time, use csv_forecast)", key="label")
    counts = Counter(labels)
    few = [c for c in classes if counts[c] < 2]
    if few:
        row = int(rows[labels.index(few[0])])
        more = f" ({len(few) - 1} more class(es) have one)" if len(few) > 1 else ""
        raise DataError(f"{where}: class {few[0]!r} has a single example (data row {row + 1}){more}; every class "
                        "needs at least 2, one to train on and one to test: merge or remove it", key="label")


def sequence_columns(df: pd.DataFrame, cfg: CsvClassifyConfig) -> tuple[list[str], np.ndarray, dict]:
    """The numeric step columns -> (names, (N, T) values with NaN for empty cells, problems:
    row -> (key, what) for a row whose sequence has an empty cell before a filled one, or none)."""
    key = "columns" if cfg.columns else None
    names = cfg.columns or [c for c in df.columns if c != cfg.label]
    if not names:
        raise DataError(f"{cfg.path}: no feature columns beside the label '{cfg.label}'", key="label")
    values = np.stack([numeric(column(df, c, cfg.path, key), f"column '{c}'", cfg.path, key) for c in names],
                      axis=1)  # (N, T)
    empty = np.isnan(values)
    filled_after = np.flip(np.cumsum(np.flip(~empty, 1), 1), 1) > 0  # (N, T): a filled cell at or after t
    inner = empty & filled_after
    problems = {}
    for r in np.flatnonzero(empty.all(axis=1)):
        problems[int(r)] = (key or "path", "every sequence cell is empty")
    for r in np.flatnonzero(inner.any(axis=1)):
        t = int(np.flatnonzero(inner[r])[0])
        problems[int(r)] = (key or "path", f"column '{names[t]}' is empty inside the sequence (only trailing "
                                           "empty cells may end a shorter sequence)")
    return names, values, problems


@disk_cached
def build_csv_classify(cfg: CsvClassifyConfig) -> TaskData:
    df = read_csv(cfg.path)
    label_col = column(df, cfg.label, cfg.path, "label")
    problems = {int(r): ("label", f"the label (column '{cfg.label}') is empty") for r in np.flatnonzero(blank(label_col))}
    notes: list[str] = []
    if cfg.text is not None:
        texts = column(df, cfg.text, cfg.path, "text").astype(str)
        for r in np.flatnonzero(texts.str.strip().eq("").to_numpy()):
            problems.setdefault(int(r), ("text", f"the text (column '{cfg.text}') is empty"))
        keep = apply_missing(problems, len(df), cfg.missing, cfg.path, notes)
        labels = label_col.astype(str).str.strip().to_numpy()[keep].tolist()
        check_labels(labels, keep, cfg)
        return text_classification(texts.to_numpy()[keep].tolist(), labels, cfg, cfg.path,
                                   {"label": cfg.label, "text": cfg.text, "notes": notes})
    names, values, gaps = sequence_columns(df, cfg)
    for r, p in gaps.items():
        problems.setdefault(r, p)
    keep = apply_missing(problems, len(df), cfg.missing, cfg.path, notes)
    labels = label_col.astype(str).str.strip().to_numpy()[keep].tolist()
    check_labels(labels, keep, cfg)
    series = [values[i][:, None] for i in keep]  # (T, 1) each; trailing NaN shortens the sequence
    y = np.array(labels)
    classes = sorted(set(labels))
    rest, test_idx = stratified_carve(np.array([classes.index(c) for c in labels]), cfg.test_frac, cfg.data_seed)
    if not len(test_idx) or len(rest) < 2:
        raise DataError(f"{cfg.path}: too few rows ({len(labels)}) for train, validation and test splits")
    return sequence_classification([series[i] for i in rest], list(y[rest]), [series[i] for i in test_idx],
                                   list(y[test_idx]), classes, cfg.val_frac / (1 - cfg.test_frac), cfg.data_seed,
                                   cfg.path, {"label": cfg.label, "columns": len(names), "notes": notes})


CSV_FORECAST = Task("csv_forecast", CsvForecastConfig, build_csv_forecast, "user",
                    "forecast one numeric column of your CSV (RMSE, MAE, MASE on its scale)",
                    source="`path:` your CSV file", sizes="yours", baseline="naive and (with season) seasonal naive")
CSV_CLASSIFY = Task("csv_classify", CsvClassifyConfig, build_csv_classify, "user",
                    "classify the rows of your CSV: a text column, or numeric columns as a sequence",
                    source="`path:` your CSV file", sizes="yours", baseline="majority class of train")
