"""Run a command with a folder read-only: a private read-only bind mount where the system
allows one (unshare -rm; it binds root too), else the folder's write bits taken away (which
binds every user but root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def mount_prefix(path: Path) -> list[str] | None:
    """A command prefix that runs its command with `path` mounted read-only, or None where
    this system does not allow private mounts."""
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{path}" "{path}" && '
                            f'! touch "{path}/.probe" 2>/dev/null'], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return ["unshare", "-rm", "sh", "-c", f'mount --bind -o ro "{path}" "{path}" && exec "$@"', "sh"]


def without_write_bits(path: Path, on: bool) -> None:
    """Take the write bits of `path` and everything under it away (on) or give them back."""
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~0o222 if on else mode | 0o200)


def binds_this_user() -> bool:
    """Whether taking write bits away stops this user (it never stops root)."""
    return os.geteuid() != 0
