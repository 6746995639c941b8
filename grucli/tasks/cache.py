"""On-disk cache of prepared task data, so a 50-run grid parses its data set once.

Key: the task config (which, for user files, holds the file's content hash) plus a hash of
the source of grucli's task and objective modules, so editing the preparation code never
serves stale data. Folder: $GRUCLI_CACHE, else `.grucli_cache/` in the working directory.
Files are written atomically; a corrupt or unreadable entry is rebuilt."""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import torch

_PACKAGE = Path(__file__).resolve().parent.parent  # grucli/


def cache_dir() -> Path:
    return Path(os.environ.get("GRUCLI_CACHE") or ".grucli_cache")


@functools.cache
def code_hash() -> str:
    """Hash of the code that prepares data: grucli/tasks/*.py and grucli/objectives.py."""
    h = hashlib.sha256()
    for path in sorted([*(_PACKAGE / "tasks").glob("*.py"), _PACKAGE / "objectives.py"]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def cache_path(cfg) -> Path:
    key = hashlib.sha256((cfg.model_dump_json() + code_hash()).encode()).hexdigest()[:20]
    return cache_dir() / f"{cfg.name}-{key}.pt"


def disk_cached(build: Callable) -> Callable:
    """Decorator for a task's build(cfg): load the prepared TaskData if cached, else build
    and store it. Errors in the data (DataError) are raised before anything is written."""

    @functools.wraps(build)
    def wrapper(cfg):
        path = cache_path(cfg)
        if path.is_file():
            try:
                return torch.load(path, weights_only=False)
            except Exception:  # corrupt or from an incompatible version: rebuild
                pass
        data = build(cfg)
        buf = io.BytesIO()
        torch.save(data, buf)
        try:
            from grucli.store import atomic_write_bytes

            atomic_write_bytes(path, buf.getvalue())
        except OSError:  # a read-only folder only costs speed
            pass
        return data

    return wrapper
