"""Fused CPU recurrent layers (model.impl: fused): same models and weights as torch's, faster.

Where nn.GRU's time goes on CPU (issue 6): per-op dispatch (5-11 us per small elementwise op)
and a backward through autograd's many small nodes. Here, per layer and direction, one
autograd Function (GRULayer, LSTMLayer, RNNLayer) whose C++ kernels do:

    forward, per step:  gh = h W_hh^T (one matmul), then one pass over the gates (biases,
                        sigmoid/tanh, state update); gi = x W_ih^T is one matmul per chunk of
                        a few steps, read back from cache
    backward, per step: one pass for the gate gradients, one matmul for dh_prev; per chunk
                        of a few steps, while its gate gradients are in cache: dW_ih, dW_hh,
                        db and dx, one matmul each

Matrix products call the BLAS inside libtorch directly on raw pointers (no ATen op per
step). Measured with `grucli bench benchmarks/bench.yaml` (1 thread): the GRU training step
at H=128, T=100, B=64 went from 0.58x to 0.46x nn.GRU when the weight gradients moved out
of Python into the chunked backward.

The kernels live in grucli/csrc/fused_rnn.cpp, compiled on first use with
torch.utils.cpp_extension.load_inline into a cache folder (~40-90 s once per machine and
torch version; a file lock keeps parallel workers from building at the same time). Without
a compiler the same algorithm runs in plain PyTorch (`python_kernels`): exact, but slower
than torch's own modules, so model.impl=auto then picks torch.

Environment: GRUCLI_FUSED_CACHE (build folder, default ~/.cache/grucli/extensions),
GRUCLI_NO_COMPILE=1 (never compile; use the PyTorch fallback).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from grucli.stack import RecurrentStack

SOURCE = Path(__file__).parent / "csrc" / "fused_rnn.cpp"
FUNCTIONS = ["gru_forward", "gru_backward", "lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward",
             "set_direct_blas"]
# Elements per cache-sized chunk buffer (input projection, gate gradients): the kernels work
# on as many steps at a time as fit. Tests lower it to cross chunk boundaries.
CHUNK = 1 << 17


# --------------------------------------------------------------------------- kernels
def _simd_flags() -> list[str]:
    """Vector width for the gate arithmetic: AVX-512 or AVX2 where /proc/cpuinfo has them
    (Sleef's vector exp/tanh come from libtorch itself), else scalar code."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    if {"avx512f", "avx512dq"} <= flags:
        return ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mprefer-vector-width=512", "-DGRUCLI_AVX512"]
    if {"avx2", "fma"} <= flags:
        return ["-mavx2", "-mfma", "-DGRUCLI_AVX2"]
    return []


def _flags() -> list[str]:
    return ["-O3", "-std=c++17", *_simd_flags()]


def build_dir() -> Path:
    """Where the extension is built and cached: keyed by the source, torch's version, the
    environment (its torch headers) and the compiler flags."""
    key = hashlib.sha256("\n".join([SOURCE.read_text(), torch.__version__, sys.prefix, *_flags()]).encode())
    root = Path(os.environ.get("GRUCLI_FUSED_CACHE", Path.home() / ".cache" / "grucli" / "extensions"))
    return root / f"grucli_fused_{key.hexdigest()[:12]}"


@functools.lru_cache(maxsize=1)
def compiled_kernels():
    """The compiled extension, built once per machine (None if it cannot be built)."""
    if os.environ.get("GRUCLI_NO_COMPILE"):
        return None
    try:
        from filelock import FileLock
        from torch.utils.cpp_extension import load_inline

        source, flags, build = SOURCE.read_text(), _flags(), build_dir()
        name, root = build.name, build.parent
        build.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"{name}.lock")):
            # torch's own build lock is a plain file that a killed build leaves behind, and a
            # later load_inline would wait on it forever. Holding our OS lock, no other grucli
            # process is building here, so such a file is stale.
            (build / "lock").unlink(missing_ok=True)
            return load_inline(name=name, cpp_sources=[source], functions=FUNCTIONS, extra_cflags=flags,
                               build_directory=str(build), verbose=False)
    except Exception as e:  # no compiler, no headers, ...: fall back, but say why once
        warnings.warn(f"grucli.fused: C++ kernels unavailable ({type(e).__name__}: {str(e)[:200]}); "
                      "using the slower pure-PyTorch fallback", RuntimeWarning, stacklevel=2)
        return None


def compiled_available() -> bool:
    return compiled_kernels() is not None


def kernels():
    return compiled_kernels() or python_kernels


# ------------------------------------------------------------------ PyTorch fallback
def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _keep(mask, t, new, old):
    return new if mask is None else torch.where(mask[t][:, None], new, old)


def _previous(out, h0, reverse):
    if out.shape[0] == 1:
        return h0[None]
    return torch.cat([out[1:], h0[None]]) if reverse else torch.cat([h0[None], out[:-1]])


def _py_gru_forward(x, w_ih, h0, w_hh, b_ih, b_hh, mask, reverse, save=True, budget=CHUNK):
    gi = x @ w_ih.t()
    T, H = gi.shape[0], h0.shape[1]
    out, gates, ghn = gi.new_empty(T, *h0.shape), gi.new_empty(gi.shape), gi.new_empty(T, *h0.shape)
    h = h0
    for t in _order(T, reverse):
        x, gh = gi[t] + b_ih, torch.addmm(b_hh, h, w_hh.t())
        rz = torch.sigmoid(x[:, :2 * H] + gh[:, :2 * H])
        n = torch.tanh(x[:, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
        z = rz[:, H:]
        h = _keep(mask, t, (1 - z) * n + z * h, h)
        out[t], gates[t, :, :2 * H], gates[t, :, 2 * H:], ghn[t] = h, rz, n, gh[:, 2 * H:]
    return [out, h.clone(), gates, ghn]


def _py_gru_backward(grad_out, grad_h, gates, ghn, out, h0, x, w_ih, w_hh, mask, reverse, need_dx, budget=CHUNK):
    T, B, H = out.shape
    dgi, dgh = out.new_zeros(T, B, 3 * H), out.new_zeros(T, B, 3 * H)
    dh = grad_h.clone() if grad_h is not None else out.new_zeros(B, H)
    prev = _previous(out, h0, reverse)
    for t in reversed(list(_order(T, reverse))):
        if grad_out is not None:
            dh = dh + grad_out[t]
        r, z, n = gates[t].split(H, dim=1)
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (prev[t] - n) * z * (1 - z)
        dr = dn * ghn[t] * r * (1 - r)
        di, dg = torch.cat([dr, dz, dn], 1), torch.cat([dr, dz, dn * r], 1)
        direct = dh * z
        if mask is not None:
            keep = mask[t][:, None]
            di, dg, direct = di * keep, dg * keep, torch.where(keep, direct, dh)
        dgi[t], dgh[t] = di, dg
        dh = torch.addmm(direct, dg, w_hh)
    dx, *w = _weight_grads(dgh, dgi, x, out, h0, w_ih, reverse, need_dx)
    return [dx, dh, *w]


def _py_lstm_forward(x, w_ih, h0, c0, w_hh, b_ih, b_hh, mask, reverse, save=True, budget=CHUNK):
    gi = x @ w_ih.t()
    T, H = gi.shape[0], h0.shape[1]
    out, cs, tcs, gates = (gi.new_empty(T, *h0.shape), gi.new_empty(T, *h0.shape), gi.new_empty(T, *h0.shape),
                           gi.new_empty(gi.shape))
    h, c = h0, c0
    for t in _order(T, reverse):
        g = (gi[t] + b_ih) + torch.addmm(b_hh, h, w_hh.t())
        i, f, gg, o = torch.sigmoid(g[:, :H]), torch.sigmoid(g[:, H:2 * H]), torch.tanh(g[:, 2 * H:3 * H]), \
            torch.sigmoid(g[:, 3 * H:])
        c_new = f * c + i * gg
        tc = torch.tanh(c_new)
        h, c = _keep(mask, t, o * tc, h), _keep(mask, t, c_new, c)
        out[t], cs[t], tcs[t], gates[t] = h, c, tc, torch.cat([i, f, gg, o], 1)
    return [out, h.clone(), c.clone(), gates, cs, tcs]


def _py_lstm_backward(grad_out, grad_h, grad_c, gates, cs, tcs, out, h0, c0, x, w_ih, w_hh, mask, reverse, need_dx,
                      budget=CHUNK):
    T, B, H = out.shape
    dG = out.new_zeros(T, B, 4 * H)
    dh = grad_h.clone() if grad_h is not None else out.new_zeros(B, H)
    dc = grad_c.clone() if grad_c is not None else out.new_zeros(B, H)
    cprev = _previous(cs, c0, reverse)
    for t in reversed(list(_order(T, reverse))):
        if grad_out is not None:
            dh = dh + grad_out[t]
        i, f, gg, o = gates[t].split(H, dim=1)
        tc = tcs[t]
        dct = dc + dh * o * (1 - tc * tc)
        dg = torch.cat([dct * gg * i * (1 - i), dct * cprev[t] * f * (1 - f), dct * i * (1 - gg * gg),
                        dh * tc * o * (1 - o)], 1)
        dc_new, direct = dct * f, torch.zeros_like(dh)
        if mask is not None:
            keep = mask[t][:, None]
            dg, dc_new, direct = dg * keep, torch.where(keep, dc_new, dc), torch.where(keep, direct, dh)
        dG[t], dc = dg, dc_new
        dh = torch.addmm(direct, dg, w_hh)
    dx, *w = _weight_grads(dG, dG, x, out, h0, w_ih, reverse, need_dx)
    return [dx, dh, dc, *w]


def _py_rnn_forward(x, w_ih, h0, w_hh, b_ih, b_hh, mask, reverse, relu, budget=CHUNK):
    gi = x @ w_ih.t()
    act = torch.relu if relu else torch.tanh
    out, h = gi.new_empty(gi.shape[0], *h0.shape), h0
    for t in _order(gi.shape[0], reverse):
        h = _keep(mask, t, act((gi[t] + b_ih) + torch.addmm(b_hh, h, w_hh.t())), h)
        out[t] = h
    return [out, h.clone()]


def _py_rnn_backward(grad_out, grad_h, out, h0, x, w_ih, w_hh, mask, reverse, relu, need_dx, budget=CHUNK):
    T, B, H = out.shape
    dG = out.new_zeros(T, B, H)
    dh = grad_h.clone() if grad_h is not None else out.new_zeros(B, H)
    for t in reversed(list(_order(T, reverse))):
        if grad_out is not None:
            dh = dh + grad_out[t]
        dg = dh * (out[t] > 0) if relu else dh * (1 - out[t] * out[t])
        direct = torch.zeros_like(dh)
        if mask is not None:
            keep = mask[t][:, None]
            dg, direct = dg * keep, torch.where(keep, direct, dh)
        dG[t] = dg
        dh = torch.addmm(direct, dg, w_hh)
    dx, *w = _weight_grads(dG, dG, x, out, h0, w_ih, reverse, need_dx)
    return [dx, dh, *w]


def _weight_grads(dgh, dgi, x, out, h0, w_ih, reverse, need_dx):
    """dx, dW_ih, dW_hh, db_ih, db_hh from dgh (T, B, G*H), the gradient of h W_hh^T, and
    dgi, that of x W_ih^T (the same tensor for LSTM and RNN)."""
    T, B, GH = dgh.shape
    H = out.shape[2]
    x2d, dgh2d, dgi2d = x.reshape(T * B, -1), dgh.reshape(T * B, GH), dgi.reshape(T * B, GH)
    prev = _previous(out, h0, reverse).reshape(T * B, H)
    dx = (dgi2d @ w_ih).view(T, B, -1) if need_dx else None
    return dx, dgi2d.t() @ x2d, dgh2d.t() @ prev, dgi2d.sum(0), dgh2d.sum(0)


python_kernels = SimpleNamespace(
    gru_forward=_py_gru_forward, gru_backward=_py_gru_backward, lstm_forward=_py_lstm_forward,
    lstm_backward=_py_lstm_backward, rnn_forward=_py_rnn_forward, rnn_backward=_py_rnn_backward)


# --------------------------------------------------------------- autograd Functions
# Each Function covers one layer and direction: input projection, recurrence, and all weight
# gradients, in one kernel call each way. Gradients of outputs nobody used arrive as None
# (not materialised zeros), and the kernels skip them.
def _c(t):
    return None if t is None else t.contiguous()


class GRULayer(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (out (T, B, H), h_n (B, H))."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, k):
        x, h0, w_ih, w_hh = x.contiguous(), h0.contiguous(), w_ih.contiguous(), w_hh.contiguous()
        out, h_n, gates, ghn = k.gru_forward(x, w_ih, h0, w_hh, b_ih.contiguous(), b_hh.contiguous(), mask, reverse,
                                             any(ctx.needs_input_grad), CHUNK)
        ctx.save_for_backward(x, gates, ghn, out, h0, w_ih, w_hh)
        ctx.mask, ctx.reverse, ctx.k = mask, reverse, k
        ctx.set_materialize_grads(False)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        x, gates, ghn, out, h0, w_ih, w_hh = ctx.saved_tensors
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = ctx.k.gru_backward(
            _c(grad_out), _c(grad_h), gates, ghn, out, h0, x, w_ih, w_hh, ctx.mask, ctx.reverse,
            ctx.needs_input_grad[0], CHUNK)
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None


class LSTMLayer(torch.autograd.Function):
    """(x (T, B, I), h0, c0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (out (T, B, H), h_n, c_n)."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, reverse, k):
        x, h0, c0, w_ih, w_hh = x.contiguous(), h0.contiguous(), c0.contiguous(), w_ih.contiguous(), w_hh.contiguous()
        out, h_n, c_n, gates, cs, tcs = k.lstm_forward(x, w_ih, h0, c0, w_hh, b_ih.contiguous(), b_hh.contiguous(),
                                                       mask, reverse, any(ctx.needs_input_grad), CHUNK)
        ctx.save_for_backward(x, gates, cs, tcs, out, h0, c0, w_ih, w_hh)
        ctx.mask, ctx.reverse, ctx.k = mask, reverse, k
        ctx.set_materialize_grads(False)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c):
        x, gates, cs, tcs, out, h0, c0, w_ih, w_hh = ctx.saved_tensors
        dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh = ctx.k.lstm_backward(
            _c(grad_out), _c(grad_h), _c(grad_c), gates, cs, tcs, out, h0, c0, x, w_ih, w_hh, ctx.mask, ctx.reverse,
            ctx.needs_input_grad[0], CHUNK)
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, None, None, None


class RNNLayer(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (out (T, B, H), h_n (B, H))."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, relu, k):
        x, h0, w_ih, w_hh = x.contiguous(), h0.contiguous(), w_ih.contiguous(), w_hh.contiguous()
        out, h_n = k.rnn_forward(x, w_ih, h0, w_hh, b_ih.contiguous(), b_hh.contiguous(), mask, reverse, relu, CHUNK)
        ctx.save_for_backward(x, out, h0, w_ih, w_hh)
        ctx.mask, ctx.reverse, ctx.relu, ctx.k = mask, reverse, relu, k
        ctx.set_materialize_grads(False)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        x, out, h0, w_ih, w_hh = ctx.saved_tensors
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = ctx.k.rnn_backward(
            _c(grad_out), _c(grad_h), out, h0, x, w_ih, w_hh, ctx.mask, ctx.reverse, ctx.relu,
            ctx.needs_input_grad[0], CHUNK)
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None, None


# --------------------------------------------------------------------------- modules
class _Fused(RecurrentStack):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kernels()  # build (or load) the extension now, not inside the first training step

    @staticmethod
    def _check(x):
        if x.device.type != "cpu":
            raise RuntimeError("model.impl=fused runs on CPU only; use impl torch (or auto) on GPUs")


class GRU(_Fused):
    """torch.nn.GRU's model (reset gate after the hidden matmul), fused kernels."""

    gates, mode = 3, "GRU"

    def run(self, x, state, weights, mask, reverse):
        self._check(x)
        out, h_n = GRULayer.apply(x, state[0], *weights, mask, reverse, kernels())
        return out, (h_n,)


class LSTM(_Fused):
    """torch.nn.LSTM's model, fused kernels."""

    gates, states, mode = 4, 2, "LSTM"

    def run(self, x, state, weights, mask, reverse):
        self._check(x)
        out, h_n, c_n = LSTMLayer.apply(x, state[0], state[1], *weights, mask, reverse, kernels())
        return out, (h_n, c_n)


class RNN(_Fused):
    """torch.nn.RNN's model (tanh), fused kernels."""

    mode, relu = "RNN_TANH", False

    def run(self, x, state, weights, mask, reverse):
        self._check(x)
        out, h_n = RNNLayer.apply(x, state[0], *weights, mask, reverse, self.relu, kernels())
        return out, (h_n,)


class RNNReLU(RNN):
    """torch.nn.RNN's model (relu), fused kernels."""

    mode, relu = "RNN_RELU", True
