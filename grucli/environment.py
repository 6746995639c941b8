"""Facts about where a run executed, recorded in every summary."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from pathlib import Path

import torch

import grucli


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    return {
        "grucli": grucli.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "host": socket.gethostname(),
        "git_commit": _git_commit(),
    }


def describe(device: torch.device, threads: int) -> dict:
    return {**_static(), "device": str(device), "threads": threads}


def code_label(env: dict) -> str | None:
    """`git 1a2b3c4d` (or `grucli 0.1.0` without git) from a run's recorded env."""
    if env.get("git_commit"):
        return f"git {env['git_commit'][:8]}"
    return f"grucli {env['grucli']}" if env.get("grucli") else None


def describe_code() -> str | None:
    """This process's code, labelled like code_label."""
    return code_label(_static())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(grucli.__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
