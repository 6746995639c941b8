"""On-disk cache of prepared task data, so a 50-run grid parses its data set once.

Key: the task config (which, for user files, holds the file's content hash) plus a hash of
the source of grucli's task and objective modules, so editing the preparation code never
serves stale data. Folder: $GRUCLI_CACHE, else `.grucli_cache/` in the working directory.

A cache file holds tensors and JSON text only, and is read with torch.load(weights_only=True):
a file planted in a cloned project cannot run code. A file that is not grucli's, was made for
another key, or does not parse is set aside with one warning line and the data are rebuilt;
it is never trusted. Files are written atomically.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

from grucli import objectives
from grucli.tasks.base import Split, TaskData
from grucli.store import atomic_write_bytes

_PACKAGE = Path(__file__).resolve().parent.parent  # grucli/
FORMAT, VERSION = "grucli-task-cache", 2
SPLITS, FIELDS = ("train", "val", "test"), ("x", "y", "lengths", "score_mask")
OBJECTIVES = {c.__name__: c for c in (objectives.Regression, objectives.Classification, objectives.NextToken,
                                      objectives.NextWord, objectives.Forecast, objectives.AnomalyForecast,
                                      objectives.Transduction, objectives.MultiLabel)}


def cache_dir() -> Path:
    return Path(os.environ.get("GRUCLI_CACHE") or ".grucli_cache")


@functools.cache
def code_hash() -> str:
    """Hash of the code that prepares data: grucli/tasks/*.py and grucli/objectives.py."""
    h = hashlib.sha256()
    for path in sorted([*(_PACKAGE / "tasks").glob("*.py"), _PACKAGE / "objectives.py"]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(cfg) -> str:
    return hashlib.sha256((cfg.model_dump_json() + code_hash()).encode()).hexdigest()[:20]


def cache_path(cfg) -> Path:
    return cache_dir() / f"{cfg.name}-{cache_key(cfg)}.pt"


def encode(data: TaskData, key: str) -> dict:
    """TaskData as tensors and one JSON string (what weights_only loading accepts)."""
    tensors = {f"{s}.{f}": getattr(getattr(data, s), f) for s in SPLITS for f in FIELDS
               if getattr(getattr(data, s), f) is not None}
    obj = data.objective
    if type(obj).__name__ not in OBJECTIVES:
        raise TypeError(f"objective {type(obj).__name__} cannot be cached")
    meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in (*SPLITS, "objective")}
    meta["objective"] = {"class": type(obj).__name__, "args": dict(vars(obj))}
    return {"format": FORMAT, "version": VERSION, "key": key, "tensors": tensors, "meta": json.dumps(meta)}


def decode(blob, key: str) -> TaskData:
    """The TaskData of a cache blob; ValueError when it is not grucli's or not for `key`."""
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError("not a grucli data cache")
    if blob.get("version") != VERSION or blob.get("key") != key:
        raise ValueError("made for another task config or grucli version")
    meta = json.loads(blob["meta"])
    spec = meta.pop("objective")
    if spec["class"] not in OBJECTIVES:
        raise ValueError(f"unknown objective {spec['class']!r}")
    t = blob["tensors"]
    splits = {s: Split(**{f: t.get(f"{s}.{f}") for f in FIELDS}) for s in SPLITS}
    return TaskData(**splits, **meta, objective=OBJECTIVES[spec["class"]](**spec["args"]))


def load(path: Path, key: str) -> TaskData | None:
    """The cached data at `path`, or None (absent, or rejected with a warning line)."""
    if not path.is_file():
        return None
    try:
        return decode(torch.load(path, map_location="cpu", weights_only=True), key)
    except Exception as e:  # foreign, stale, truncated or unsafe: rebuilt, never trusted
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        warnings.warn(f"grucli: ignoring the data cache {path} ({reason}); rebuilding it", RuntimeWarning,
                      stacklevel=3)
        return None


def disk_cached(build: Callable) -> Callable:
    """Decorator for a task's build(cfg): load the prepared TaskData if cached, else build
    and store it. Errors in the data (DataError) are raised before anything is written."""

    @functools.wraps(build)
    def wrapper(cfg):
        path, key = cache_path(cfg), cache_key(cfg)
        data = load(path, key)
        if data is not None:
            return data
        data = build(cfg)
        buf = io.BytesIO()
        try:
            torch.save(encode(data, key), buf)
        except (TypeError, ValueError):  # something that is not plain data: not cached (costs speed only)
            return data
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:  # a read-only folder only costs speed
            pass
        return data

    return wrapper


__all__ = ["disk_cached", "cache_path", "cache_dir", "encode", "decode", "load"]
