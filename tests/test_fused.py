"""Fused layers (model.impl: fused) against torch: outputs, final states, gradients; the
hand-written backward by gradcheck; and impl switching on a tiny training run.

The C++ kernels are built once per machine into a shared cache (the first test run waits
~40 s for the build); every test here also runs the pure-PyTorch fallback kernels."""

from __future__ import annotations

import pytest
import torch
from rnn_compare import compare

from grucli import fused
from grucli.train import train_run

FUSED = {"rnn": fused.RNN, "rnn_relu": fused.RNNReLU, "gru": fused.GRU, "lstm": fused.LSTM}
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
KERNELS = ["compiled", "compiled-chunked", "compiled-aten", "python"]


@pytest.fixture(params=KERNELS)
def kernels(request, monkeypatch):
    """Run the test with the compiled kernels; with them on chunks of one and two steps (the
    weight gradients are accumulated chunk by chunk, the first step's h_prev is h0); with
    their matrix products through ATen instead of the BLAS symbols; and with the
    pure-PyTorch fallback."""
    if request.param == "python":
        monkeypatch.setattr(fused, "kernels", lambda: fused.python_kernels)
        return request.param
    if not fused.compiled_available():
        pytest.skip("no C++ compiler: fused runs on its PyTorch fallback")
    k = fused.compiled_kernels()
    if request.param == "compiled-chunked":
        monkeypatch.setattr(fused, "CHUNK", 1)  # one step per chunk
    if request.param == "compiled-aten":
        k.set_direct_blas(False)
        request.addfinalizer(lambda: k.set_direct_blas(True))
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", list(FUSED))
def test_fused_matches_torch(kernels, cell, layers, bidirectional, dtype):
    err = compare(cell, FUSED[cell], layers=layers, bidirectional=bidirectional, dtype=dtype, H=9, I=3, T=7)
    assert err < TOL[dtype]


@pytest.mark.parametrize("cell", list(FUSED))
def test_fused_matches_torch_on_packed_sequences(kernels, cell):
    err = compare(cell, FUSED[cell], layers=2, bidirectional=True, dtype=torch.float64, packed=True, B=4)
    assert err < TOL[torch.float64]


def _layer(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, reverse):
    k = fused.kernels()
    if cell == "gru":
        return fused.GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, k)
    if cell == "lstm":
        return fused.LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, reverse, k)
    return fused.RNNLayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, cell == "rnn_relu", k)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_fused_backward_passes_gradcheck(kernels, cell, reverse, masked):
    gen = torch.Generator().manual_seed(1)
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    T, B, H, I = 4, 3, 5, 2
    d = dict(dtype=torch.float64, generator=gen)
    x = torch.randn(B, T, I, **d).transpose(0, 1).requires_grad_()  # (T, B, I), batch-first storage
    h0, c0 = torch.randn(B, H, **d).requires_grad_(), torch.randn(B, H, **d).requires_grad_()
    w_ih, w_hh = (0.5 * torch.randn(G * H, I, **d)).requires_grad_(), (0.5 * torch.randn(G * H, H, **d)).requires_grad_()
    b_ih, b_hh = torch.randn(G * H, **d).requires_grad_(), torch.randn(G * H, **d).requires_grad_()
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool) if masked else None
    f = lambda *a: _layer(cell, *a, mask, reverse)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, h0, c0, w_ih, w_hh, b_ih, b_hh))


@pytest.mark.parametrize("steps", [2, 3])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_chunks_of_several_steps_give_the_same_gradients(monkeypatch, cell, steps):
    """T=5 in chunks of 2 (2+2+1) or 3 (3+2): chunks that mix the h0 step with stored states,
    both directions, padded steps included; against the one-chunk result."""
    if not fused.compiled_available():
        pytest.skip("no C++ compiler: fused runs on its PyTorch fallback")
    gen = torch.Generator().manual_seed(2)
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    T, B, H, I = 5, 3, 4, 2
    d = dict(dtype=torch.float64, generator=gen)
    args = [torch.randn(T, B, I, **d), torch.randn(B, H, **d), torch.randn(B, H, **d), 0.5 * torch.randn(G * H, I, **d),
            0.5 * torch.randn(G * H, H, **d), torch.randn(G * H, **d), torch.randn(G * H, **d)]
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    for reverse in (False, True):
        grads = []
        for budget in (steps * B * G * H, 10**6):
            monkeypatch.setattr(fused, "CHUNK", budget)
            leaves = [a.clone().requires_grad_() for a in args]
            outs = _layer(cell, *leaves, mask, reverse)
            sum((o * torch.linspace(-1, 2, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs).backward()
            grads.append([a.grad for a in leaves if a.grad is not None])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_switching_impl_changes_no_metric(tiny_run, cell):
    results = {impl: train_run(tiny_run(model={"cell": cell, "hidden_size": 6, "impl": impl},
                                        train={"epochs": 2, "max_steps": 4}))
               for impl in ["torch", "fused", "reference"]}
    base = results["torch"]
    for impl, r in results.items():
        assert r.status == "ok", r.error
        assert r.params == base.params
        for split in ("train", "val", "test"):
            for key, value in base.__dict__[split].items():
                assert r.__dict__[split][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (impl, split, key)


def test_fused_falls_back_without_a_compiler(monkeypatch):
    monkeypatch.setenv("GRUCLI_NO_COMPILE", "1")
    fused.compiled_kernels.cache_clear()
    try:
        assert fused.compiled_kernels() is None and fused.kernels() is fused.python_kernels
        from grucli.models import CELLS

        assert CELLS["gru"].resolve_impl("auto") == "torch"  # the fallback is exact but slower than torch
    finally:
        monkeypatch.delenv("GRUCLI_NO_COMPILE")
        fused.compiled_kernels.cache_clear()


def test_a_stale_torch_build_lock_does_not_hang_the_next_load(tmp_path):
    """A build killed with -9 leaves torch's plain `lock` file; the next load must not wait on it."""
    import subprocess
    import sys

    from grucli import fused

    if fused.compiled_kernels() is None:
        pytest.skip("no compiler here: the fused kernels are not built")
    stale = fused.build_dir() / "lock"
    stale.write_text("")
    code = "from grucli import fused; assert fused.compiled_kernels() is not None"
    done = subprocess.run([sys.executable, "-c", code], timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
