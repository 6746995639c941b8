"""Building and loading the fused kernels (fused_rnn.cpp), once per machine.

torch.utils.cpp_extension.load_inline compiles the source into a cache folder keyed by
the source, torch's version, the environment and the compiler flags (~40-90 s the first
time; a file lock keeps parallel workers from building at the same time). Why the kernels
are unavailable is kept apart: no compiler, switched off, or a build that failed (with
the compiler's last lines), so nothing falls back silently.

Environment: GRUCLI_FUSED_CACHE (build folder, default ~/.cache/grucli/extensions),
GRUCLI_NO_COMPILE=1 (never compile: fused is unavailable, auto uses torch's modules),
GRUCLI_SIMD=avx2|none (build a narrower variant than this CPU allows, to test it; inside
one process `simd_build(name)` switches builds: each loads once and both can be used side by
side, as `grucli bench --simd avx2,native` does).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).parent
SOURCES = [HERE / "fused_rnn.cpp", HERE / "step.cpp"]  # compiled as one unit, in this order
HEADERS = [HERE / h for h in ("gemm.h", "products.h", "activations.h")]  # included by the sources
FUNCTIONS = ["gru_forward", "gru_backward", "gru_cho_forward", "gru_cho_backward", "lstm_forward", "lstm_backward",
             "lstm_peephole_forward", "lstm_peephole_backward", "rnn_forward", "rnn_backward", "linear_forward",
             "linear_backward", "optimizer_step", "set_products", "matmul", "activation", "own_products", "mean_per_run",
             "product_profile", "cross_entropy_forward", "cross_entropy_backward", "squared_error_forward",
             "squared_error_backward"]
PRODUCTS = {"own": 0, "blas": 1, "aten": 2}  # set_products(mode): which code runs the kernels' matrix products
_why: list[str] = []  # why the kernels are unavailable, once known


SIMD = {"avx512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mprefer-vector-width=512", "-DGRUCLI_AVX512"],
        "avx2": ["-mavx2", "-mfma", "-DGRUCLI_AVX2"], "none": []}


@functools.lru_cache(maxsize=1)
def native_simd() -> str:
    """The widest build this CPU runs: avx512 or avx2 where /proc/cpuinfo has them, else none."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "none"
    if {"avx512f", "avx512dq"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "none"


def simd() -> str:
    """The build kernels() loads now: GRUCLI_SIMD (avx512 | avx2 | none) where set, else native_simd()."""
    forced = os.environ.get("GRUCLI_SIMD")
    return forced if forced in SIMD else native_simd()


@contextlib.contextmanager
def simd_build(name: str):
    """kernels() loads this build inside the block ("native": the CPU's widest), e.g. to bench
    AVX2 and AVX-512 side by side in one process. Models built inside keep that build's
    kernels (FusedStack holds them); each build has its own cache folder, so both coexist."""
    if name != "native" and name not in SIMD:
        raise ValueError(f"unknown SIMD build {name!r}: native, {', '.join(SIMD)}")
    was = os.environ.get("GRUCLI_SIMD")
    if name == "native":
        os.environ.pop("GRUCLI_SIMD", None)
    else:
        os.environ["GRUCLI_SIMD"] = name
    try:
        yield
    finally:
        if was is None:
            os.environ.pop("GRUCLI_SIMD", None)
        else:
            os.environ["GRUCLI_SIMD"] = was


def _simd_flags() -> list[str]:
    """Vector width for the products and the gate arithmetic: AVX-512 or AVX2 where
    /proc/cpuinfo has them (Sleef's vector exp/tanh come from libtorch itself), else scalar
    code (and the BLAS for the products). GRUCLI_SIMD=avx2|none builds a narrower variant
    (to test the code other machines run)."""
    return SIMD[simd()]


def _flags() -> list[str]:
    # -fno-math-errno (as torch builds): sqrt never sets errno, so loops using it vectorise
    return ["-O3", "-std=c++17", "-fno-math-errno", *_simd_flags()]


def build_dir() -> Path:
    """Where the extension is built and cached."""
    import torch

    sources = [f.read_text() for f in (*SOURCES, *HEADERS)]
    key = hashlib.sha256("\n".join([*sources, torch.__version__, sys.prefix, *_flags()]).encode())
    root = Path(os.environ.get("GRUCLI_FUSED_CACHE", Path.home() / ".cache" / "grucli" / "extensions"))
    return root / f"grucli_fused_{key.hexdigest()[:12]}"


def is_built() -> bool:
    """True when a build for this machine is cached (loading it takes a second, not a minute)."""
    try:
        return any(build_dir().glob("*.so"))
    except OSError:
        return False


def will_compile() -> bool:
    """True when loading the kernels now would compile them first (about a minute)."""
    return not os.environ.get("GRUCLI_NO_COMPILE") and compiler() is not None and not is_built()


def compiler() -> str | None:
    """The C++ compiler torch's extension builder will call (CXX, else c++), if present."""
    return shutil.which(os.environ.get("CXX", "c++"))


def kernels():
    """The compiled extension of the current build (simd(); built on first use), or None:
    see unavailable_reason()."""
    return _kernels(simd())


@functools.lru_cache(maxsize=None)
def _kernels(simd_name: str):  # one loaded extension per build: both can live in one process
    if os.environ.get("GRUCLI_NO_COMPILE"):
        _why.append("GRUCLI_NO_COMPILE is set")
        return None
    if compiler() is None:
        _why.append(f"no C++ compiler: {os.environ.get('CXX', 'c++')} not found (install g++, or set CXX)")
        return None
    try:
        from filelock import FileLock
        from torch.utils.cpp_extension import load_inline

        sources, flags, build = [f.read_text() for f in SOURCES], _flags(), build_dir()
        build.mkdir(parents=True, exist_ok=True)
        with FileLock(str(build.parent / f"{build.name}.lock")):
            # torch's own build lock is a plain file that a killed build leaves behind, and a
            # later load_inline would wait on it forever. Holding our OS lock, no other grucli
            # process is building here, so such a file is stale.
            (build / "lock").unlink(missing_ok=True)
            _copy_headers(build)
            return load_inline(name=build.name, cpp_sources=sources, functions=FUNCTIONS, extra_cflags=flags,
                               extra_include_paths=[str(build)], build_directory=str(build), verbose=False)
    except Exception as e:  # the build failed: say so with the compiler's own last words
        _why.append(f"the build failed: {_last_lines(e)}")
        warnings.warn(f"grucli: the fused CPU kernels did not build ({_why[-1]}); model.impl auto uses torch's "
                      "modules", RuntimeWarning, stacklevel=2)
        return None


kernels.cache_clear = _kernels.cache_clear  # tests: forget what was loaded (or why not)


def _copy_headers(build: Path) -> None:
    """The headers beside the build, included from there: the compile command then names no
    install location, so checkouts and installs with the same sources share one build (with
    -I pointing into each, every one's command differed and ninja rebuilt it in turn), and
    a read-only install is only ever read. A header is rewritten only when it differs (the
    build key hashes their text: the same key, the same text), so ninja sees no change."""
    for header in HEADERS:
        text = header.read_text()
        target = build / header.name
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)


def _last_lines(error: Exception, n: int = 3) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines
    return f"{type(error).__name__}: " + " | ".join(errors[-n:])[:600]


def available() -> bool:
    return kernels() is not None


def describe() -> str:
    """Which kernels this process has: `compiled (grucli_fused_1a2b3c4d5e6f, AVX2)` or
    `unavailable: <why>` -- recorded in every fused run's summary and printed by bench."""
    if not available():
        return f"unavailable: {unavailable_reason()}"
    simd = next((f.removeprefix("-DGRUCLI_") for f in _flags() if f.startswith("-DGRUCLI_")), "scalar")
    return f"compiled ({build_dir().name}, {simd})"


def unavailable_reason() -> str | None:
    """None when the kernels load; else one line saying why not."""
    return None if available() else (_why[-1] if _why else "unknown")
