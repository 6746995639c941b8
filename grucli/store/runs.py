"""runs.csv (and runs.parquet): one tidy row per finished run beside the run folders, read
through the one reader (grucli.store.reader), written whole (`write_runs_table`) or kept up
to date while a grid runs (`RunsTable`). `load_runs` gives the same table as a DataFrame."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pandas as pd

from grucli.store import FINISHED, SUMMARY, atomic_write_bytes, atomic_write_text, reader

READER_ONLY = ("run_dir", "key")  # the reader's own bookkeeping columns, not part of runs.csv


def load_runs(exp_dir: Path) -> pd.DataFrame:
    """Every finished run of an experiment as one tidy DataFrame: one row per run, nested
    fields flattened with dots (config.model.cell, test.mse, timing.epoch_time_s), read by
    the one reader (grucli.store.reader) and kept to finished runs."""
    if not any(reader.is_run_dir(p) for p in Path(exp_dir).iterdir()):
        return pd.DataFrame()
    return _tidy(reader.collect([exp_dir], histories=False).runs)


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """The reader's rows as runs.csv has them: finished runs only, without the reader's
    bookkeeping columns and without columns that no finished run fills."""
    if "status" not in runs:
        return pd.DataFrame()
    runs = runs[runs["status"].isin(FINISHED)].drop(columns=[c for c in READER_ONLY if c in runs])
    return runs.dropna(axis=1, how="all").reset_index(drop=True)


class RunsTable:
    """runs.csv kept up to date while a grid runs, at a cost per run that does not grow with
    the grid: the folder's runs are read once, each finished run adds its own row (its
    summary read back, as the reader reads it), and the file is rewritten -- atomically,
    the same table write_runs_table makes -- when `every_s` seconds have passed since the
    last write (or SHARE_OF_TIME times that write's own time, if longer), and at flush().
    Re-reading every summary after every run made a grid O(N^2): 10,000 runs re-read about
    50 million summaries. Writing the whole table still costs O(N) (~0.5 s of CPU at 5,000
    rows), so its interval grows with it: the driver spends at most ~1/SHARE_OF_TIME of its
    time on runs.csv and its cost per run stays flat in N (with a fixed 5 s, a driver starved
    of CPU rewrote the table after almost every run: 36 ms per run at 5,000 runs, 12 at 1,000)."""

    SHARE_OF_TIME = 20

    def __init__(self, exp_dir: Path, every_s: float = 5.0):
        self.exp_dir, self.every = Path(exp_dir), every_s
        self.rows = {p.name: reader.read_row(p, self.exp_dir.name) for p in self.exp_dir.iterdir()
                     if reader.is_run_dir(p)}
        self.changed, self.last, self.took = False, time.monotonic(), 0.0

    def add(self, run_id: str) -> None:
        """A run was stored: its row replaces any earlier one; the file follows when due."""
        self.rows[run_id] = reader.read_row(self.exp_dir / run_id, self.exp_dir.name)
        self.changed = True
        if time.monotonic() - self.last >= max(self.every, self.SHARE_OF_TIME * self.took):
            self.flush()

    def flush(self) -> Path | None:
        """Write runs.csv now if a run was added since the last write, here or by another
        process sharing the folder (one listing; only folders not yet known as finished
        are read)."""
        start = time.monotonic()
        for entry in os.scandir(self.exp_dir):
            row = self.rows.get(entry.name)
            if (row is None or row.get("status") not in FINISHED) and (Path(entry.path) / SUMMARY).is_file():
                self.rows[entry.name] = reader.read_row(Path(entry.path), self.exp_dir.name)
                self.changed = self.changed or self.rows[entry.name].get("status") in FINISHED
        if not self.changed:
            return None
        rows = [self.rows[k] for k in sorted(self.rows) if self.rows[k].get("status") in FINISHED]
        path = _write_table(self.exp_dir, _tidy(pd.DataFrame(rows)))  # (unfinished rows would turn ints into floats)
        self.changed, self.last = False, time.monotonic()
        self.took = self.last - start
        return path


def write_runs_table(exp_dir: Path) -> Path | None:
    """runs.csv (and runs.parquet when pyarrow is importable) beside the run folders, from
    every run folder read afresh."""
    return _write_table(exp_dir, load_runs(exp_dir))


def _write_table(exp_dir: Path, df: pd.DataFrame) -> Path | None:
    if df.empty:
        return None
    path = Path(exp_dir) / "runs.csv"
    atomic_write_text(path, df.to_csv(index=False))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return path  # parquet is optional: pip install -e ".[parquet]"
    try:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(Path(exp_dir) / "runs.parquet", buf.getvalue())
    except Exception as e:  # a column pyarrow cannot type, a full disk: runs.csv is written, the grid goes on
        import warnings

        warnings.warn(f"grucli: {exp_dir}/runs.parquet not written ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:160] if str(e) else ''}); runs.csv is complete", RuntimeWarning,
                      stacklevel=2)
    return path
