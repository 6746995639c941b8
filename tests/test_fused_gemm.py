"""grucli's own matrix products (grucli/cells/fused/gemm.h) through the kernels' `matmul`
binding: against torch for shapes that cut tiles, vectors and k-blocks anywhere, in both
layouts of A, and the property packed training relies on: an element of C depends only on
its own row of op(A) and column of B, never on the other rows or columns computed with it."""

from __future__ import annotations

import pytest
import torch

from grucli.cells.fused import build

SHAPES = [  # (M, N, K): tails in every direction, a single row or column, k across blocks of 256
    (1, 1, 1), (5, 3, 2), (50, 96, 32), (17, 33, 70), (13, 65, 300), (96, 2, 1500), (3, 100, 7), (64, 384, 128),
    (29, 17, 513), (130, 45, 300),  # >= 64 rows: B's block is copied before the tiles read it (gemm.h PACK_ROWS)
]
TOL = {torch.float32: 2e-5, torch.float64: 1e-13}  # relative to sqrt(K) * max |a| |b|


def _kernels_on(request, products: str):
    if build.compiler() is None:
        pytest.skip("no C++ compiler on this machine: the fused kernels cannot be built")
    k = build.kernels()
    assert k is not None, build.unavailable_reason()
    was = k.set_products(build.PRODUCTS[products])
    request.addfinalizer(lambda: k.set_products(was))
    return k


@pytest.fixture(params=list(build.PRODUCTS))
def kernels(request):
    """The kernels with their products on grucli's tiles, the BLAS, or ATen."""
    return _kernels_on(request, request.param)


@pytest.fixture
def own(request):
    """The kernels with their products on grucli's tiles (a build without SIMD has none:
    asking for them gives the BLAS)."""
    k = _kernels_on(request, "own")
    if k.set_products(build.PRODUCTS["own"]) != build.PRODUCTS["own"]:
        pytest.skip(f"this build ({build.describe()}) has no SIMD: its products are the BLAS")
    return k


def _operands(M, N, K, at, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*((K, M) if at else (M, K)), generator=g, dtype=dtype)
    return a, torch.randn(K, N, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("at", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_matches_torch(kernels, shape, at, dtype):
    M, N, K = shape
    a, b = _operands(M, N, K, at, dtype)
    ours = kernels.matmul(a, b, at)
    theirs = (a.t() if at else a) @ b
    assert ours.shape == (M, N)
    scale = K**0.5 * a.abs().max() * b.abs().max()
    assert float((ours - theirs).abs().max()) <= TOL[dtype] * float(scale)


@pytest.mark.parametrize("at", [False, True])
def test_matmul_of_nothing(kernels, at):
    a, b = _operands(4, 3, 0, at, torch.float32)
    assert torch.equal(kernels.matmul(a, b, at), torch.zeros(4, 3))
    a, b = _operands(0, 3, 5, at, torch.float32)
    assert kernels.matmul(a, b, at).shape == (0, 3)


@pytest.mark.parametrize("M", [37, 100])  # 100: the whole product copies B's blocks, a few rows alone do not
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("at", [False, True])
def test_each_element_depends_only_on_its_row_and_column(own, at, dtype, M):
    """Rows and columns computed alone equal the same rows and columns of the whole product,
    bit for bit: which tile, vector lane, k-block or path (B read in place or copied; the last
    vector of a row masked or not) an element falls in changes nothing."""
    k = own
    N, K = 70, 600
    a, b = _operands(M, N, K, at, dtype, seed=1)
    whole = k.matmul(a, b, at)
    for lo, hi in [(0, 1), (5, 18), (30, 37), (M - 3, M)]:  # rows
        part = k.matmul(a[:, lo:hi] if at else a[lo:hi], b, at)
        assert torch.equal(part, whole[lo:hi])
    for lo, hi in [(0, 3), (16, 17), (20, 70)]:  # columns (fewer than a vector takes another path when at)
        assert torch.equal(k.matmul(a, b[:, lo:hi], at), whole[:, lo:hi])
