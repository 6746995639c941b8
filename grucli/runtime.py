"""Process-level runtime settings grucli applies wherever it trains."""

from __future__ import annotations

import os

import torch

# glibc malloc settings for worker processes grucli starts: never hand big blocks back to
# the kernel between steps (measured: LSTM at T=1000 spent 0.7 of wall time in page faults).
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from grucli.errors import GrucliError

        raise GrucliError("train.device: cuda requested but torch sees no CUDA device (use auto or cpu)")
    return torch.device(device)


def configure(threads: int | None, device: torch.device) -> int:
    """Set torch's intra-op thread count deliberately and flush denormals on CPU (long
    sequences with the loss on the last step produce denormal gradients; flushing them
    made T=1000 training steps 2-3x faster here). Returns the thread count in force."""
    n = threads or usable_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    return n
