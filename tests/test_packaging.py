"""What a user who installs grucli from a wheel or an sdist gets: every kernel source and
header (without a header the kernels do not build and model.impl auto silently trains on
torch's modules), and a wheel that trains on the fused kernels from a read-only install
location with the kernel cache elsewhere (GRUCLI_FUSED_CACHE)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import read_only
import yaml

from grucli.cells.fused import build

ROOT = Path(__file__).resolve().parents[1]


def _source_copy(tmp: Path) -> Path:
    """The project as a source distribution sees it (no caches, no build folders), so a
    build never writes into the checkout."""
    src = tmp / "src"
    shutil.copytree(ROOT / "grucli", src / "grucli", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


def _build(src: Path, kind: str, out: Path) -> Path:
    """Build a wheel or an sdist with setuptools' PEP 517 hooks: offline, no isolation."""
    out.mkdir(parents=True, exist_ok=True)
    code = f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


def _data_files(src: Path) -> set[str]:
    """Every file of the package that is not Python (the kernels' sources and headers)."""
    return {p.relative_to(src).as_posix() for p in (src / "grucli").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}


def test_build_lists_every_header_the_kernels_include():
    """build.HEADERS keys the kernel cache: a header missing from it would let an edited
    header reuse a stale build. Every `#include "..."` of the sources must be listed."""
    listed = {h.name for h in build.HEADERS}
    included = set()
    for f in (*build.SOURCES, *build.HEADERS):
        included |= set(re.findall(r'#include\s+"([^"]+)"', f.read_text()))
    assert included, "the sources include grucli's own headers"
    assert included <= listed, f"headers included but not in build.HEADERS: {sorted(included - listed)}"
    on_disk = {p.name for p in build.HERE.iterdir() if p.suffix in (".h", ".cpp")}
    assert on_disk == listed | {s.name for s in build.SOURCES}


def test_wheel_and_sdist_carry_every_kernel_source_and_header(tmp_path):
    src = _source_copy(tmp_path)
    wanted = _data_files(src)
    assert {f"grucli/cells/fused/{h.name}" for h in (*build.SOURCES, *build.HEADERS)} <= wanted
    wheel = _build(src, "wheel", tmp_path / "dist")
    with zipfile.ZipFile(wheel) as z:
        in_wheel = set(z.namelist())
    assert wanted <= in_wheel, f"missing from the wheel: {sorted(wanted - in_wheel)}"
    sdist = _build(src, "sdist", tmp_path / "dist")
    with tarfile.open(sdist) as t:
        in_sdist = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert wanted <= in_sdist, f"missing from the sdist: {sorted(wanted - in_sdist)}"


def _venv_with_this_torch(where: Path) -> Path:
    """A fresh virtual environment whose only packages are those of the environment running
    the tests (torch and grucli's dependencies), reached through a .pth path line. A path
    line adds the folder but does not run its .pth files, so the editable grucli of this
    checkout is not importable there: only the wheel installed next."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    parents = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_parent_packages.pth").write_text("".join(f"{p}\n" for p in parents))
    return python


def _tree(path: Path) -> dict[str, float]:
    return {p.relative_to(path).as_posix(): p.stat().st_mtime for p in path.rglob("*")}


@pytest.mark.slow
def test_installed_wheel_trains_on_the_fused_kernels_from_a_read_only_install(tmp_path, tiny_experiment):
    """Build the wheel, install it into a fresh venv (this machine's torch, --no-deps), make
    the install read-only, put the kernel cache elsewhere, and train one run with
    model.impl fused: it compiles from the installed sources and headers, and the run's
    summary says it trained on grucli's kernels."""
    wheel = _build(_source_copy(tmp_path), "wheel", tmp_path / "dist")
    python = _venv_with_this_torch(tmp_path / "venv")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                           "--no-compile", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PYTHON", "GRUCLI_"))}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "GRUCLI_FUSED_CACHE": str(tmp_path / "kernel-cache")}
    where = subprocess.run([str(python), "-c", "import grucli; print(grucli.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    package = Path(where).parent
    assert package.is_relative_to(tmp_path / "venv"), f"grucli imported from {where}, not from the wheel"
    for h in (*build.SOURCES, *build.HEADERS):
        assert (package / "cells" / "fused" / h.name).is_file()

    exp = tiny_experiment("adding", name="wheel", model={"impl": "fused"}, train={"epochs": 1})
    (work / "exp.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    before = _tree(tmp_path / "venv")
    prefix = read_only.mount_prefix(tmp_path / "venv")
    if prefix is None:  # no private mounts here: at least take write permission away (binding for non-root)
        read_only.without_write_bits(tmp_path / "venv", True)
    try:
        done = subprocess.run([*(prefix or []), str(python), "-m", "grucli", "train", "exp.yaml", "--results",
                               str(work / "results")], cwd=work, env=env, capture_output=True, text=True,
                              timeout=900)
    finally:
        read_only.without_write_bits(tmp_path / "venv", False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "did not build" not in done.stderr
    (summary,) = (work / "results" / "wheel").glob("*/summary.json")
    summary = json.loads(summary.read_text())
    assert summary["status"] == "ok"
    assert summary["impl"] == "fused"
    built = list((tmp_path / "kernel-cache").glob("grucli_fused_*/*.so"))
    assert built, "the kernels were built in GRUCLI_FUSED_CACHE"
    assert f"compiled ({built[0].parent.name}," in summary["kernels"], summary["kernels"]
    assert str(package) not in (built[0].parent / "build.ninja").read_text(), "the build names no install location"
    assert _tree(tmp_path / "venv") == before, "nothing is written into the install location"
