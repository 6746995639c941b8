"""Fused layers (model.impl: fused) against torch: outputs, final states, gradients; the
hand-written backward by gradcheck; and impl switching on a tiny training run.

The C++ kernels are built once per machine into a shared cache (the first test run waits
~40 s for the build). Where a C++ compiler exists, a kernel build that fails fails these
tests: it is never skipped."""

from __future__ import annotations

import pytest
import torch
from rnn_compare import compare

from grucli import cells
from grucli.cells import CELLS
from grucli.cells import fused
from grucli.cells.fused import build
from grucli.train.loop import train_run

FUSED = [c for c in CELLS if CELLS[c].fused]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
KERNELS = ["compiled", "compiled-chunked", "compiled-blas", "compiled-aten"]


def built_kernels():
    """The compiled kernels; skip only where there is no compiler at all."""
    if build.compiler() is None:
        pytest.skip("no C++ compiler on this machine: the fused kernels cannot be built")
    k = build.kernels()
    assert k is not None, f"the fused kernels did not build: {build.unavailable_reason()}"
    return k


@pytest.fixture(params=KERNELS)
def kernels(request, monkeypatch):
    """Run the test with the compiled kernels; with them on chunks of one step (the weight
    gradients are accumulated chunk by chunk, the first step's h_prev is h0); and with
    their matrix products through the BLAS symbols or ATen instead of grucli's own."""
    k = built_kernels()
    if request.param == "compiled-chunked":
        monkeypatch.setattr(fused, "CHUNK", 1)  # one step per chunk
    for name in ("blas", "aten"):
        if request.param == f"compiled-{name}":
            was = k.set_products(build.PRODUCTS[name])
            request.addfinalizer(lambda: k.set_products(was))
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", FUSED)
def test_fused_matches_torch(kernels, cell, layers, bidirectional, dtype):
    against = "torch" if CELLS[cell].torch_module else "reference"
    err = compare(cell, "fused", against=against, layers=layers, bidirectional=bidirectional, dtype=dtype,
                  H=9, I=3, T=7)
    assert err < TOL[dtype]


@pytest.mark.parametrize("cell", FUSED)
def test_fused_matches_torch_on_packed_sequences(kernels, cell):
    against = "torch" if CELLS[cell].torch_module else "reference"
    err = compare(cell, "fused", against=against, layers=2, bidirectional=True, dtype=torch.float64, packed=True, B=4)
    assert err < TOL[torch.float64]


def _layer(cell, x, h0, c0, w, mask, reverse):
    """One fused layer call; returns its outputs (out and final states)."""
    module = cells.make(CELLS[cell], x.shape[-1], h0.shape[-1], impl="fused")
    state = (h0, c0)[:len(CELLS[cell].states)]
    out, final = module.run(x, state, w, mask, reverse)
    return (out, *final)


def _weights(cell, I, H, d):
    spec = CELLS[cell]
    from types import SimpleNamespace

    return SimpleNamespace(**{p.name: (0.5 * torch.randn(*p.shape(I, H), **d)).requires_grad_() for p in spec.params})


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("cell", FUSED)
def test_fused_backward_passes_gradcheck(kernels, cell, reverse, masked):
    gen = torch.Generator().manual_seed(1)
    T, B, H, I = 4, 3, 5, 2
    d = dict(dtype=torch.float64, generator=gen)
    x = torch.randn(B, T, I, **d).transpose(0, 1).requires_grad_()  # (T, B, I), batch-first storage
    h0, c0 = torch.randn(B, H, **d).requires_grad_(), torch.randn(B, H, **d).requires_grad_()
    w = _weights(cell, I, H, d)
    names = [p.name for p in CELLS[cell].params]
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool) if masked else None
    used_c = len(CELLS[cell].states) > 1

    def f(x, h0, c0, *ws):
        from types import SimpleNamespace

        return _layer(cell, x, h0, c0, SimpleNamespace(**dict(zip(names, ws))), mask, reverse)

    inputs = (x, h0, c0 if used_c else c0.detach(), *[getattr(w, n) for n in names])
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("steps", [2, 3])
@pytest.mark.parametrize("cell", FUSED)
def test_chunks_of_several_steps_give_the_same_gradients(monkeypatch, cell, steps):
    """T=5 in chunks of 2 (2+2+1) or 3 (3+2): chunks that mix the h0 step with stored states,
    both directions, padded steps included; against the one-chunk result."""
    built_kernels()
    gen = torch.Generator().manual_seed(2)
    T, B, H, I = 5, 3, 4, 2
    d = dict(dtype=torch.float64, generator=gen)
    spec = CELLS[cell]
    GH = spec.params[0].shape(I, H)[0]
    args = [torch.randn(T, B, I, **d), torch.randn(B, H, **d), torch.randn(B, H, **d)]
    ws = [0.5 * torch.randn(*p.shape(I, H), **d) for p in spec.params]
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.bool)
    from types import SimpleNamespace

    for reverse in (False, True):
        grads = []
        for budget in (steps * B * GH, 10**6):
            monkeypatch.setattr(fused, "CHUNK", budget)
            leaves = [a.clone().requires_grad_() for a in args + ws]
            w = SimpleNamespace(**{p.name: t for p, t in zip(spec.params, leaves[3:])})
            outs = _layer(cell, *leaves[:3], w, mask, reverse)
            sum((o * torch.linspace(-1, 2, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs).backward()
            grads.append([a.grad for a in leaves if a.grad is not None])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", FUSED)
def test_switching_impl_changes_no_metric(tiny_run, cell):
    impls = CELLS[cell].impls
    results = {impl: train_run(tiny_run(model={"cell": cell, "hidden_size": 6, "impl": impl},
                                        train={"epochs": 2, "max_steps": 4}))
               for impl in impls}
    base = results[impls[-1]]
    for impl, r in results.items():
        assert r.status == "ok", r.error
        assert r.params == base.params
        for split in ("train", "val", "test"):
            for key, value in base.__dict__[split].items():
                assert r.__dict__[split][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (impl, split, key)


def test_without_kernels_auto_is_torch_and_fused_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GRUCLI_NO_COMPILE", "1")
    build.kernels.cache_clear()
    try:
        assert build.kernels() is None and build.unavailable_reason() == "GRUCLI_NO_COMPILE is set"
        assert cells.resolve_impl(CELLS["gru"], "auto") == "torch"
        assert cells.resolve_impl(CELLS["lstm_peephole"], "auto") == "reference"  # torch has no module for it
        from grucli.errors import GrucliError

        with pytest.raises(GrucliError, match="fused.*unavailable.*GRUCLI_NO_COMPILE"):
            cells.make(CELLS["gru"], 3, 4, impl="fused")
    finally:
        monkeypatch.delenv("GRUCLI_NO_COMPILE")
        build.kernels.cache_clear()


def test_a_stale_torch_build_lock_does_not_hang_the_next_load(tmp_path):
    """A build killed with -9 leaves torch's plain `lock` file; the next load must not wait on it."""
    import subprocess
    import sys

    built_kernels()
    stale = build.build_dir() / "lock"
    stale.write_text("")
    code = "from grucli.cells.fused import build; assert build.kernels() is not None"
    done = subprocess.run([sys.executable, "-c", code], timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()


def test_auto_picks_the_fused_lstm_peephole_where_it_picks_the_fused_lstm():
    from grucli.cells.fused import FusedLayers
    from grucli.model import SequenceModel

    built_kernels()
    assert cells.resolve_impl(CELLS["lstm"], "auto") == "fused"
    assert cells.resolve_impl(CELLS["lstm_peephole"], "auto") == "fused"
    model = SequenceModel("lstm_peephole", input_size=3, output_size=2, hidden_size=5, head="last")
    assert model.impl == "fused" and isinstance(model.rnn, FusedLayers)


def _peephole_pair(peep_scale, dtype=torch.float64):
    """A fused lstm and a fused lstm_peephole with the same torch-layout weights; the peepholes
    set to peep_scale * N(0, 1)."""
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(0)
    plain = cells.make(CELLS["lstm"], 3, 8, 2, True, impl="fused").to(dtype)
    peep = cells.make(CELLS["lstm_peephole"], 3, 8, 2, True, impl="fused").to(dtype)
    peep.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        for name, p in peep.named_parameters():
            if name.startswith("weight_peep"):
                p.copy_(peep_scale * torch.randn(p.shape, generator=gen, dtype=dtype))
    return plain, peep


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_peephole_with_zero_peepholes_is_the_fused_lstm_bit_for_bit(kernels, masked):
    """The peephole path adds p * c to the gate pre-activations and p * d(pre) to dc: with
    p = 0 it must give the plain LSTM's numbers exactly (its arithmetic is the same); with
    p != 0 it must not (the peepholes are read)."""
    from rnn_compare import run

    x = torch.randn(5, 6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    lengths = torch.tensor([6, 2, 1, 6, 4]) if masked else None
    plain, peep = _peephole_pair(0.0)
    a, b = run(plain, x, lengths), run(peep, x, lengths)
    assert torch.equal(a[0], b[0]) and all(torch.equal(u, v) for u, v in zip(a[1], b[1]))
    assert all(torch.equal(a[2][n], b[2][n]) for n in a[2])
    assert any(b[2][n].abs().max() > 0 for n in b[2] if n.startswith("weight_peep"))  # they would learn
    plain, peep = _peephole_pair(0.5)
    assert not torch.allclose(run(plain, x, lengths)[0], run(peep, x, lengths)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_lstm_peephole_matches_the_reference_away_from_init(kernels, dtype):
    """Every weight, the peepholes included, of the size of trained ones (init draws them in
    +-1/sqrt(H)), two layers, both directions, padded sequences."""
    gen = torch.Generator().manual_seed(6)
    ref = cells.make(CELLS["lstm_peephole"], 4, 6, 2, True, impl="reference").to(dtype)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=gen, dtype=dtype))
    ours = cells.make(CELLS["lstm_peephole"], 4, 6, 2, True, impl="fused").to(dtype)
    ours.load_state_dict(ref.state_dict())
    from rnn_compare import run

    x = torch.randn(5, 8, 4, generator=gen, dtype=dtype)
    lengths = torch.tensor([8, 3, 1, 8, 5])
    a, b = run(ref, x, lengths), run(ours, x, lengths)
    rel = lambda u, v: ((u - v).abs().max() / u.abs().max().clamp_min(1e-12)).item()  # noqa: E731
    errs = [rel(a[0], b[0])] + [rel(u, v) for u, v in zip(a[1], b[1])] + [rel(a[2][n], b[2][n]) for n in a[2]]
    assert max(errs) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", FUSED)
def test_the_inference_forward_equals_the_training_forward(cell, dtype):
    """Without gradients the kernels keep the gates of one step only (save=false): the same
    outputs and final states bit for bit, padded sequences and both directions included."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    built_kernels()
    torch.manual_seed(0)
    module = cells.make(CELLS[cell], 4, 10, 2, True, impl="fused").to(dtype)
    x = torch.randn(5, 9, 4, generator=torch.Generator().manual_seed(7), dtype=dtype)
    lengths = torch.tensor([9, 3, 1, 9, 6])
    packed = lambda: pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)  # noqa: E731
    out, state = module(packed())
    with torch.no_grad():
        out2, state2 = module(packed())
    assert torch.equal(pad_packed_sequence(out, batch_first=True)[0], pad_packed_sequence(out2, batch_first=True)[0])
    pairs = zip(state, state2) if isinstance(state, tuple) else [(state, state2)]  # (h, c) or h
    assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("cell", FUSED)
def test_fused_matches_at_a_realistic_size(cell):
    """H=128, T=200 in float64, default chunking: the vectorised gate loops (H a multiple of
    the SIMD width), several chunks of steps and the BLAS path all run, as in real use."""
    built_kernels()
    against = "torch" if CELLS[cell].torch_module else "reference"
    err = compare(cell, "fused", against=against, layers=1, bidirectional=False, dtype=torch.float64,
                  H=128, T=200, I=16, B=6, packed=True)
    assert err < 1e-10


@pytest.mark.parametrize("cxx,reason", [("/nonexistent/g++", "no C++ compiler: /nonexistent/g++ not found"),
                                        ("false", "the build failed: ")])
def test_no_compiler_and_a_failed_build_are_different_loud_reasons(tmp_path, cxx, reason):
    """Run in a fresh process with an empty build cache: a missing compiler and a compiler
    that fails give different reasons; a failed build also warns with its last lines; auto
    then uses torch and says why, bench leaves fused out."""
    import shutil
    import subprocess
    import sys

    compiler = shutil.which(cxx) or cxx
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from grucli.cells.fused import build; from grucli import cells\n"
            "print('KERNELS', build.kernels()); print('WHY', build.unavailable_reason())\n"
            "print('AUTO', cells.resolve_impl(cells.CELLS['gru'], 'auto')); print('DESCRIBE', build.describe())\n")
    env = {**__import__("os").environ, "CXX": compiler, "GRUCLI_FUSED_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "KERNELS None" in done.stdout and f"WHY {reason}" in done.stdout and "AUTO torch" in done.stdout
    assert "DESCRIBE unavailable: " + reason in done.stdout
    if "failed" in reason:
        assert "did not build" in done.stderr  # the warning, with the compiler's words


@pytest.mark.parametrize("which,exact", [(0, torch.sigmoid), (1, torch.tanh)], ids=["sigmoid", "tanh"])
def test_gate_nonlinearities_are_accurate_and_keep_nan(which, exact):
    """The kernels' own float sigmoid and tanh: within 4 ulp of the exact value (float64
    reference; 2 ulp are 2 float32 epsilons of the value) over a dense range and its
    extremes, lengths that leave a masked tail, and NaN stays NaN (a diverging run must
    stay non-finite)."""
    k = built_kernels()
    x = torch.cat([torch.linspace(-30, 30, 200_001), torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-8, 0.6249, 0.6251,
                                                                   -0.625, 88.0, -88.0, 200.0, -200.0])])
    for n in (len(x), 1, 7, 17):
        ours = k.activation(x[:n], which)
        ref = exact(x[:n].double())
        f32 = torch.finfo(torch.float32)  # below the smallest normal float an absolute error of one is allowed
        assert bool(((ours.double() - ref).abs() <= 4 * f32.eps * ref.abs() + f32.tiny).all())
    special = torch.tensor([float("nan"), float("inf"), -float("inf")])
    out = k.activation(special, which)
    low = 0 if which == 0 else -1  # sigmoid(-inf) may come out below the smallest normal float (flushed in training)
    assert out[0].isnan() and out[1] == 1 and abs(float(out[2]) - low) <= torch.finfo(torch.float32).tiny
