"""The fused kernels' own matrix products at a training step's shapes, in GFLOP/s, on each
SIMD build: grucli/cells/fused/gemm.h as it is beside the same file built as it was before
issue 28's third round (GRUCLI_GEMM_BASELINE: every panel's last vector loaded and stored
through a mask, B read in place), timed alternately in one process (best of 15 rounds), with
this core's FMA peak and whether both wrote the same bits (they must: the change moves no
arithmetic).

    python benchmarks/gemm_shapes.py                   # this machine's native build
    python benchmarks/gemm_shapes.py --simd avx2,native

Needs g++ (as the kernels do). Each build is compiled to a temporary folder and run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grucli.cells.fused import build  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simd", default="native", help="comma-separated builds: avx2, native (default native)")
    args = ap.parse_args()
    names = args.simd.split(",")
    unknown = [n for n in names if n != "native" and n not in build.SIMD]
    if unknown:
        ap.error(f"--simd: unknown build {unknown[0]!r} (native, {', '.join(build.SIMD)})")
    source = Path(__file__).with_suffix(".cpp")
    for name in names:
        with build.simd_build(name):
            flags = build.SIMD[build.simd()]  # the build's vector flags, as the kernels are compiled with
        if not any(f.startswith("-DGRUCLI_AVX") for f in flags):
            print(f"{name}: this machine has no SIMD build (gemm.h's tiles are AVX2 or AVX-512)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            exe = Path(tmp) / "gemm_shapes"
            gemm = (ROOT / "grucli" / "cells" / "fused" / "gemm.h").read_text().replace("#pragma once", "")
            (Path(tmp) / "gemm_now.h").write_text(gemm)
            (Path(tmp) / "gemm_baseline.h").write_text("#define GRUCLI_GEMM_BASELINE\n" + gemm)
            subprocess.run(["g++", "-O3", "-std=c++17", *flags, "-I", tmp, str(source), "-o", str(exe)], check=True)
            print(f"== {name} build ({' '.join(flags)})", flush=True)
            subprocess.run([str(exe)], check=True)


if __name__ == "__main__":
    main()
