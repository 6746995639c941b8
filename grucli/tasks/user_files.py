"""Your own data: `csv_forecast` (one numeric column of a CSV, rows in time order) and
`csv_classify` (one row per example: a label column plus either a text column or numeric
columns read left to right as the steps of a sequence; or a long file, one row per step
with an id, a time and one column per channel; or a .ts file). An official split comes from
a `split` column or a `test_path` file. Bad data stop with one line naming the file, row and
column; `missing: drop_row` leaves such rows out instead, and says so in the task's notes.
`path` is relative to the experiment file; the loader records the file's content hash, so
the run id follows the data, not where the file lives. (`char_lm` with `path:` reads your
text files.)"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from grucli.errors import DataError
from grucli.tasks.base import Task, TaskData, stratified_carve
from grucli.tasks.cache import disk_cached
from grucli.tasks.forecast import WindowConfig, windowed_forecast
from grucli.tasks.sentiment import TextConfig, text_classification
from grucli.tasks.sources import (Missing, UserFileConfig, apply_missing, blank, column, numeric, read_csv,
                                  user_file)
from grucli.tasks.uea import parse_ts, sequence_classification


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


PARTS = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}  # split cell -> part


class CsvClassifyConfig(TextConfig, UserFileConfig):
    name: Literal["csv_classify"] = "csv_classify"
    path: str  # CSV file (or a .ts file), relative to the experiment file; one example per row
    label: str | None = None  # the column holding each row's class (a .ts file carries its own)
    text: str | None = None  # a text column to classify (tokenised by `unit`); null = numeric columns
    # numeric columns in step order; null = every column but the label (and split). Empty
    # trailing cells end a shorter sequence.
    columns: list[str] | None = None
    # a row with an empty label, text, or an empty cell inside its sequence: stop with a line
    # naming it (error), or leave the row out and say how many (drop_row)
    missing: Missing = "error"
    # an official split: a column whose cells say train, val or test. With it (or test_path),
    # test_frac is unused and val_frac is the share of the train rows carved for validation
    # when no row says val. null = a stratified split of all rows by val_frac / test_frac.
    split: str | None = None
    test_path: str | None = None  # a separate test file with the same columns (path's rows: train and validation)
    # long format, several channels: `id` names the column saying which sequence a row belongs
    # to (its rows are the steps, `columns` or every other column the channels); `time`
    # orders the steps (numbers or timestamps; null = file order). null = wide: one row per sequence.
    id: str | None = None
    time: str | None = None

    @model_validator(mode="after")
    def _one_split(self):
        if self.label is None and not self.path.lower().endswith(".ts"):
            raise ValueError("label: name the column holding each row's class")
        if self.split is not None and self.test_path is not None:
            raise ValueError("give either split (a column) or test_path (a file), not both")
        if self.id is not None and self.text is not None:
            raise ValueError("id (a long file of numeric channels) and text (a text column) do not go together")
        if self.time is not None and self.id is None:
            raise ValueError("time orders the steps of a long file: give id too (the column naming each sequence)")
        return self


@dataclass
class Rows:
    """The usable rows of one CSV file: examples (texts or (T, 1) arrays), their labels, where
    each came from ('data row 7', for messages) and its part of an official split (or None)."""

    examples: list
    labels: list[str]
    where: list[str]
    parts: list[str] | None


def check_labels(rows: Rows, cfg: CsvClassifyConfig) -> None:
    """Labels fit for classification: two or more classes, categories rather than a measured
    quantity, at least two examples of each."""
    labels = rows.labels
    where = f"{cfg.path}: column '{cfg.label}'" if cfg.label else f"{cfg.path}: @classLabel"
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
        more = f" ({len(few) - 1} more class(es) have one)" if len(few) > 1 else ""
        raise DataError(f"{where}: class {few[0]!r} has a single example ({rows.where[labels.index(few[0])]}){more}; "
                        "every class needs at least 2, one to train on and one to test: merge or remove it", key="label")


def sequence_columns(df: pd.DataFrame, cfg: CsvClassifyConfig, path: str,
                     names: list[str] | None = None) -> tuple[list[str], np.ndarray, dict]:
    """The numeric step columns (`names`, else the config's, else all but label and split) ->
    (names, (N, T) values with NaN for empty cells, problems: row -> (key, what) for a row
    whose sequence is empty or has an empty cell before a filled one)."""
    key = "columns" if cfg.columns else None
    names = names or cfg.columns or [c for c in df.columns if c not in (cfg.label, cfg.split)]
    if not names:
        raise DataError(f"{path}: no feature columns beside the label '{cfg.label}'", key="label")
    values = np.stack([numeric(column(df, c, path, key), f"column '{c}'", path, key) for c in names], axis=1)  # (N, T)
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


def read_rows(path: str, cfg: CsvClassifyConfig, notes: list[str], key: str = "path",
              names: list[str] | None = None) -> tuple[Rows, list[str]]:
    """One CSV file -> its usable Rows (the `missing` policy applied) and the step columns."""
    if path.lower().endswith(".ts"):
        series, labels, _ = parse_ts(user_file(path, key).read_text(encoding="utf-8", errors="replace"), path)
        tag = "" if key == "path" else f" of {path}"
        return Rows(series, labels, [f"case {i + 1}{tag}" for i in range(len(labels))], None), []
    df = read_csv(path, key)
    if cfg.id is not None:
        return read_long(df, path, cfg, notes, key, names)
    label_col = column(df, cfg.label, path, "label")
    problems = {int(r): ("label", f"the label (column '{cfg.label}') is empty") for r in np.flatnonzero(blank(label_col))}
    if cfg.text is not None:
        texts = column(df, cfg.text, path, "text").astype(str)
        for r in np.flatnonzero(texts.str.strip().eq("").to_numpy()):
            problems.setdefault(int(r), ("text", f"the text (column '{cfg.text}') is empty"))
        examples = texts.tolist()
    else:
        names, values, gaps = sequence_columns(df, cfg, path, names)
        for r, p in gaps.items():
            problems.setdefault(r, p)
        examples = [row[:, None] for row in values]  # (T, 1) each; trailing NaN shortens the sequence
    parts = None
    if cfg.split is not None:
        cells = column(df, cfg.split, path, "split").astype(str).str.strip().str.lower()
        for r in np.flatnonzero(blank(cells)):
            problems.setdefault(int(r), ("split", f"the split (column '{cfg.split}') is empty"))
        odd = ~cells.isin(list(PARTS)) & ~blank(cells)
        if odd.any():
            r = int(np.flatnonzero(odd.to_numpy())[0])
            raise DataError(f"{path}: data row {r + 1}: column '{cfg.split}' says {df[cfg.split].iloc[r]!r}; "
                            "expected train, val or test", key="split")
        parts = [PARTS.get(c) for c in cells]
    keep = apply_missing(problems, len(df), cfg.missing, path, notes)
    tag = "" if key == "path" else f" of {path}"
    labels = label_col.astype(str).str.strip().tolist()
    return Rows([examples[i] for i in keep], [labels[i] for i in keep], [f"data row {i + 1}{tag}" for i in keep],
                None if parts is None else [parts[i] for i in keep]), names if cfg.text is None else []


def _steps_order(values: pd.Series) -> np.ndarray:
    """Sort keys of a time column: numbers, else timestamps, else the text."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return num.to_numpy()
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    return stamps.to_numpy() if stamps.notna().all() else values.to_numpy()


def read_long(df: pd.DataFrame, path: str, cfg: CsvClassifyConfig, notes: list[str], key: str,
              names: list[str] | None) -> tuple[Rows, list[str]]:
    """A long file (one row per step of a sequence: id, time, one column per channel) -> one
    (T, C) example per id, in order of first appearance. A sequence's label (and split) must
    be the same on all its rows; a missing value anywhere in it is the sequence's."""
    ids = column(df, cfg.id, path, "id").astype(str).str.strip()
    label_col = column(df, cfg.label, path, "label")
    labels = label_col.astype(str).str.strip()
    skip = {cfg.label, cfg.id, cfg.time, cfg.split}
    names = names or cfg.columns or [c for c in df.columns if c not in skip]
    if not names:
        raise DataError(f"{path}: no channel columns beside {', '.join(repr(c) for c in skip if c)}", key="columns")
    ckey = "columns" if cfg.columns else None
    values = np.stack([numeric(column(df, c, path, ckey), f"column '{c}'", path, ckey) for c in names], axis=1)  # (N, C)
    times = None if cfg.time is None else column(df, cfg.time, path, "time").astype(str).str.strip()
    order = np.arange(len(df)) if times is None else _steps_order(times)
    parts = None
    if cfg.split is not None:
        cells = column(df, cfg.split, path, "split").astype(str).str.strip().str.lower()
        odd = ~cells.isin(list(PARTS))
        if odd.any():
            r = int(np.flatnonzero(odd.to_numpy())[0])
            raise DataError(f"{path}: data row {r + 1}: column '{cfg.split}' says {df[cfg.split].iloc[r]!r}; "
                            "expected train, val or test", key="split")
        parts = cells.map(PARTS)
    examples, seq_labels, where, seq_parts, problems = [], [], [], [], {}
    for i, (name, idx) in enumerate(pd.Series(np.arange(len(df))).groupby(ids.to_numpy(), sort=False)):
        idx = idx.to_numpy()
        idx = idx[np.argsort(order[idx], kind="stable")]
        rows = f"data rows {idx.min() + 1}-{idx.max() + 1}" if len(idx) > 1 else f"data row {idx[0] + 1}"
        where.append(f"sequence {name!r} ({rows})")
        for col, what in ((labels, "label"), (parts, "split")):
            if col is not None and col.iloc[idx].nunique() > 1:
                first = idx[np.flatnonzero(col.iloc[idx].to_numpy() != col.iloc[idx[0]])[0]]
                raise DataError(f"{path}: sequence {name!r}: the {what} changes within it (data row {idx[0] + 1} says "
                                f"{col.iloc[idx[0]]!r}, data row {first + 1} {col.iloc[first]!r}); a sequence has one",
                                key=what)
        gaps = np.argwhere(np.isnan(values[idx]))
        no_time = np.flatnonzero(blank(times.iloc[idx])) if times is not None else []
        if blank(label_col.iloc[idx[:1]]).any():
            problems[i] = ("label", f"the label (column '{cfg.label}') is empty")
        elif len(no_time):
            problems[i] = ("time", f"the time (column '{cfg.time}') is empty in data row {idx[no_time[0]] + 1}")
        elif len(gaps):
            r, c = gaps[0]
            problems[i] = (ckey or "path", f"column '{names[c]}' is empty in data row {idx[r] + 1}")
        examples.append(values[idx])  # (T, C)
        seq_labels.append(labels.iloc[idx[0]])
        seq_parts.append(None if parts is None else parts.iloc[idx[0]])
    keep = apply_missing(problems, len(examples), cfg.missing, path, notes, where, "sequences")
    tag = "" if key == "path" else f" of {path}"
    return Rows([examples[i] for i in keep], [seq_labels[i] for i in keep], [where[i] + tag for i in keep],
                None if parts is None else [seq_parts[i] for i in keep]), names


@disk_cached
def build_csv_classify(cfg: CsvClassifyConfig) -> TaskData:
    notes: list[str] = []
    rows, names = read_rows(cfg.path, cfg, notes)
    if cfg.test_path is not None:
        test, _ = read_rows(cfg.test_path, cfg, notes, "test_path", names or None)
        rows = Rows(rows.examples + test.examples, rows.labels + test.labels, rows.where + test.where,
                    ["train"] * len(rows.labels) + ["test"] * len(test.labels))
    check_labels(rows, cfg)
    classes = sorted(set(rows.labels))
    y = np.array([classes.index(c) for c in rows.labels])
    if rows.parts is None:  # no official split: a stratified one
        rest, test_idx = stratified_carve(y, cfg.test_frac, cfg.data_seed)
        val_idx, val_frac = np.array([], dtype=int), cfg.val_frac / (1 - cfg.test_frac)
    else:
        part = np.array(rows.parts)
        rest, val_idx, test_idx = (np.flatnonzero(part == p) for p in ("train", "val", "test"))
        val_frac = cfg.val_frac
        official = f"column '{cfg.split}'" if cfg.split else f"test_path {cfg.test_path}"
        for p, idx in (("train", rest), ("test", test_idx)):
            if not len(idx):
                raise DataError(f"{cfg.path}: the official split ({official}) has no {p} rows",
                                key="split" if cfg.split else "test_path")
    info = {"label": cfg.label, "notes": notes,
            "split": "stratified by val_frac / test_frac" if rows.parts is None else
            "official" + ("" if len(val_idx) else f" (validation carved from train, val_frac {cfg.val_frac})")}
    if cfg.text is not None:
        return text_classification(rows.examples, rows.labels, cfg, cfg.path, {**info, "text": cfg.text},
                                   parts=(rest, val_idx, test_idx) if rows.parts is not None else None)
    if not len(test_idx) or len(rest) < 2:
        raise DataError(f"{cfg.path}: too few rows ({len(y)}) for train, validation and test splits")
    pick = lambda idx: ([rows.examples[i] for i in idx], [rows.labels[i] for i in idx])  # noqa: E731
    return sequence_classification(*pick(rest), *pick(test_idx), classes, val_frac, cfg.data_seed, cfg.path,
                                   {**info, "columns": len(names)}, val=pick(val_idx) if len(val_idx) else None)


CSV_FORECAST = Task("csv_forecast", CsvForecastConfig, build_csv_forecast, "user",
                    "forecast one numeric column of your CSV (RMSE, MAE, MASE on its scale)",
                    source="`path:` your CSV file", sizes="yours", baseline="naive and (with season) seasonal naive")
CSV_CLASSIFY = Task("csv_classify", CsvClassifyConfig, build_csv_classify, "user",
                    "classify the rows of your CSV: a text column, numeric columns as a sequence, a long file "
                    "(id, time, channels) or a .ts file",
                    source="`path:` your CSV or .ts file (`split:` column or `test_path:` for an official split)", sizes="yours", baseline="majority class of train")
