"""Both kernel builds, AVX2 and the CPU's native one, loaded side by side in one process (as
`grucli bench --simd avx2,native` loads them): each against torch at the tolerance of
tests/test_fused.py, each keeping its own code (a build's tables are its own: gemm.h's
GRUCLI_BUILD namespace), and a stacked pack bit-identical to its runs alone on each build.

The AVX2 build compiles once into the cache (a minute or more): slow."""

from __future__ import annotations

import pytest
import torch
from rnn_compare import compare

from grucli.cells import CELLS
from grucli.cells.fused import build

pytestmark = pytest.mark.slow
FUSED = [c for c in CELLS if CELLS[c].fused]
BUILDS = ["avx2", "native"]


@pytest.fixture(scope="module")
def builds():
    if build.compiler() is None:
        pytest.skip("no C++ compiler: the fused kernels cannot be built")
    if build.native_simd() not in ("avx2", "avx512"):
        pytest.skip("this CPU has no AVX2")
    loaded = {}
    for name in BUILDS:
        with build.simd_build(name):
            loaded[name] = build.kernels()
            assert loaded[name] is not None, build.unavailable_reason()
    return loaded


def test_each_build_is_its_own_module(builds):
    with build.simd_build("avx2"):
        assert "AVX2" in build.describe()
    assert (builds["avx2"] is builds["native"]) == (build.native_simd() == "avx2")


@pytest.mark.parametrize("cell", FUSED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_builds_match_torch_in_one_process(builds, cell, dtype):
    """Interleaved: native, avx2, native -- a build loaded second must not use the first's code.
    Against torch's module, or the cell's reference where torch has none (lstm_peephole)."""
    tol = {torch.float32: 1e-5, torch.float64: 1e-10}[dtype]
    against = "torch" if CELLS[cell].torch_module else "reference"
    for name in ["native", "avx2", "native"]:
        with build.simd_build(name):
            err = compare(cell, "fused", against=against, layers=2, bidirectional=True, dtype=dtype, H=37, T=9, I=5,
                          B=19)
        assert err < tol, (name, err)


@pytest.mark.parametrize("cell", ["lstm", "lstm_peephole"])
@pytest.mark.parametrize("task", ["adding", "copy"])  # the squared error and the cross-entropy (step.cpp)
@pytest.mark.parametrize("name", BUILDS)
def test_a_pack_is_bit_identical_to_its_runs_alone_on_each_build(builds, name, tiny_run, task, cell):
    from grucli.train.loop import train_pack

    cfgs = [tiny_run(task, seed=s, model={"cell": cell, "impl": "fused"}, train={"epochs": 2}) for s in (0, 1, 2)]
    with build.simd_build(name):
        packed = train_pack(cfgs)
        alone = [train_pack([c])[0] for c in cfgs]
    for p, a in zip(packed, alone):
        assert p.timing["step"] == "stacked"
        assert name == "native" or "AVX2" in p.model_meta["kernels"]
        assert (p.status, p.val, p.test) == (a.status, a.val, a.test)
        assert [r["train_loss"] for r in p.history] == [r["train_loss"] for r in a.history]
