"""Fused CPU recurrent layers (model.impl: fused): same models and weights as torch's, faster.

Where nn.GRU's time goes on CPU (issue 6): per-op dispatch (5-11 us per small elementwise op)
and a backward through autograd's many small nodes. Here, per layer and direction:

    gi = x W_ih^T + b_ih                      one matmul for all T steps (autograd does its backward)
    out, h_n = Recurrence.apply(gi, h0, W_hh, b_hh)
        forward, per step:  gh = h W_hh^T + b_hh (one matmul), then one C++ pass over the gates
        backward, per step: one C++ pass for the gate gradients, one matmul for dh_prev;
                            dW_hh as one (G*H, T*B) x (T*B, H) matmul at the end

The kernels live in grucli/csrc/fused_rnn.cpp, compiled on first use with
torch.utils.cpp_extension.load_inline into a cache folder (~30-60 s once per machine and
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
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from grucli.stack import RecurrentStack

SOURCE = Path(__file__).parent / "csrc" / "fused_rnn.cpp"
FUNCTIONS = ["gru_forward", "gru_backward", "lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward"]


# --------------------------------------------------------------------------- kernels
def _has_avx2() -> bool:
    try:
        return "avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def compiled_kernels():
    """The compiled extension, built once per machine (None if it cannot be built)."""
    if os.environ.get("GRUCLI_NO_COMPILE"):
        return None
    try:
        from filelock import FileLock
        from torch.utils.cpp_extension import load_inline

        source = SOURCE.read_text()
        flags = ["-O3", "-std=c++17"] + (["-mavx2", "-mfma", "-DGRUCLI_AVX2"] if _has_avx2() else [])
        key = hashlib.sha256("\n".join([source, torch.__version__, *flags]).encode()).hexdigest()[:12]
        name = f"grucli_fused_{key}"
        root = Path(os.environ.get("GRUCLI_FUSED_CACHE", Path.home() / ".cache" / "grucli" / "extensions"))
        build = root / name
        build.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"{name}.lock")):
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


def _py_gru_forward(gi, h0, w_hh, b_hh, mask, reverse):
    T, H = gi.shape[0], h0.shape[1]
    out, gates, ghn = gi.new_empty(T, *h0.shape), gi.new_empty(gi.shape), gi.new_empty(T, *h0.shape)
    h = h0
    for t in _order(T, reverse):
        gh = torch.addmm(b_hh, h, w_hh.t())
        rz = torch.sigmoid(gi[t, :, :2 * H] + gh[:, :2 * H])
        n = torch.tanh(gi[t, :, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
        z = rz[:, H:]
        h = _keep(mask, t, (1 - z) * n + z * h, h)
        out[t], gates[t, :, :2 * H], gates[t, :, 2 * H:], ghn[t] = h, rz, n, gh[:, 2 * H:]
    return [out, h.clone(), gates, ghn]


def _py_gru_backward(grad_out, grad_h, gates, ghn, out, h0, w_hh, mask, reverse):
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
    dgh2 = dgh.view(T * B, 3 * H)
    return [dgi, dh, dgh2.t() @ prev.reshape(T * B, H), dgh2.sum(0)]


def _py_lstm_forward(gi, h0, c0, w_hh, b_hh, mask, reverse):
    T, H = gi.shape[0], h0.shape[1]
    out, cs, tcs, gates = (gi.new_empty(T, *h0.shape), gi.new_empty(T, *h0.shape), gi.new_empty(T, *h0.shape),
                           gi.new_empty(gi.shape))
    h, c = h0, c0
    for t in _order(T, reverse):
        g = gi[t] + torch.addmm(b_hh, h, w_hh.t())
        i, f, gg, o = torch.sigmoid(g[:, :H]), torch.sigmoid(g[:, H:2 * H]), torch.tanh(g[:, 2 * H:3 * H]), \
            torch.sigmoid(g[:, 3 * H:])
        c_new = f * c + i * gg
        tc = torch.tanh(c_new)
        h, c = _keep(mask, t, o * tc, h), _keep(mask, t, c_new, c)
        out[t], cs[t], tcs[t], gates[t] = h, c, tc, torch.cat([i, f, gg, o], 1)
    return [out, h.clone(), c.clone(), gates, cs, tcs]


def _py_lstm_backward(grad_out, grad_h, grad_c, gates, cs, tcs, out, h0, c0, w_hh, mask, reverse):
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
    dG2 = dG.view(T * B, 4 * H)
    return [dG, dh, dc, dG2.t() @ _previous(out, h0, reverse).reshape(T * B, H), dG2.sum(0)]


def _py_rnn_forward(gi, h0, w_hh, b_hh, mask, reverse, relu):
    act = torch.relu if relu else torch.tanh
    out, h = gi.new_empty(gi.shape[0], *h0.shape), h0
    for t in _order(gi.shape[0], reverse):
        h = _keep(mask, t, act(gi[t] + torch.addmm(b_hh, h, w_hh.t())), h)
        out[t] = h
    return [out, h.clone()]


def _py_rnn_backward(grad_out, grad_h, out, h0, w_hh, mask, reverse, relu):
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
    dG2 = dG.view(T * B, H)
    return [dG, dh, dG2.t() @ _previous(out, h0, reverse).reshape(T * B, H), dG2.sum(0)]


python_kernels = SimpleNamespace(
    gru_forward=_py_gru_forward, gru_backward=_py_gru_backward, lstm_forward=_py_lstm_forward,
    lstm_backward=_py_lstm_backward, rnn_forward=_py_rnn_forward, rnn_backward=_py_rnn_backward)


# --------------------------------------------------------------- autograd Functions
def _c(t):
    return None if t is None else t.contiguous()


class GRURecurrence(torch.autograd.Function):
    """(gi (T, B, 3H), h0 (B, H), W_hh, b_hh) -> (out (T, B, H), h_n (B, H))."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, mask, reverse, k):
        out, h_n, gates, ghn = k.gru_forward(gi.contiguous(), h0.contiguous(), w_hh, b_hh, mask, reverse)
        ctx.save_for_backward(gates, ghn, out, h0, w_hh)
        ctx.mask, ctx.reverse, ctx.k = mask, reverse, k
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        gates, ghn, out, h0, w_hh = ctx.saved_tensors
        dgi, dh0, dw, db = ctx.k.gru_backward(_c(grad_out), _c(grad_h), gates, ghn, out, h0.contiguous(), w_hh,
                                              ctx.mask, ctx.reverse)
        return dgi, dh0, dw, db, None, None, None


class LSTMRecurrence(torch.autograd.Function):
    """(gi (T, B, 4H), h0, c0 (B, H), W_hh, b_hh) -> (out (T, B, H), h_n, c_n)."""

    @staticmethod
    def forward(ctx, gi, h0, c0, w_hh, b_hh, mask, reverse, k):
        out, h_n, c_n, gates, cs, tcs = k.lstm_forward(gi.contiguous(), h0.contiguous(), c0.contiguous(), w_hh,
                                                       b_hh, mask, reverse)
        ctx.save_for_backward(gates, cs, tcs, out, h0, c0, w_hh)
        ctx.mask, ctx.reverse, ctx.k = mask, reverse, k
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c):
        gates, cs, tcs, out, h0, c0, w_hh = ctx.saved_tensors
        dgi, dh0, dc0, dw, db = ctx.k.lstm_backward(_c(grad_out), _c(grad_h), _c(grad_c), gates, cs, tcs, out,
                                                    h0.contiguous(), c0.contiguous(), w_hh, ctx.mask, ctx.reverse)
        return dgi, dh0, dc0, dw, db, None, None, None


class RNNRecurrence(torch.autograd.Function):
    """(gi (T, B, H), h0 (B, H), W_hh, b_hh) -> (out (T, B, H), h_n (B, H))."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, mask, reverse, relu, k):
        out, h_n = k.rnn_forward(gi.contiguous(), h0.contiguous(), w_hh, b_hh, mask, reverse, relu)
        ctx.save_for_backward(out, h0, w_hh)
        ctx.mask, ctx.reverse, ctx.relu, ctx.k = mask, reverse, relu, k
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        out, h0, w_hh = ctx.saved_tensors
        dgi, dh0, dw, db = ctx.k.rnn_backward(_c(grad_out), _c(grad_h), out, h0.contiguous(), w_hh, ctx.mask,
                                              ctx.reverse, ctx.relu)
        return dgi, dh0, dw, db, None, None, None, None


# --------------------------------------------------------------------------- modules
class _Fused(RecurrentStack):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kernels()  # build (or load) the extension now, not inside the first training step

    @property
    def kernels(self):
        return kernels()

    def _checked(self, x, weights):
        if x.device.type != "cpu":
            raise RuntimeError("model.impl=fused runs on CPU only; use impl torch (or auto) on GPUs")
        w_ih, w_hh, b_ih, b_hh = weights
        return F.linear(x, w_ih, b_ih), w_hh.contiguous(), b_hh  # gi (T, B, G*H): all steps in one matmul


class GRU(_Fused):
    """torch.nn.GRU's model (reset gate after the hidden matmul), fused kernels."""

    gates, mode = 3, "GRU"

    def run(self, x, state, weights, mask, reverse):
        gi, w_hh, b_hh = self._checked(x, weights)
        out, h_n = GRURecurrence.apply(gi, state[0], w_hh, b_hh, mask, reverse, self.kernels)
        return out, (h_n,)


class LSTM(_Fused):
    """torch.nn.LSTM's model, fused kernels."""

    gates, states, mode = 4, 2, "LSTM"

    def run(self, x, state, weights, mask, reverse):
        gi, w_hh, b_hh = self._checked(x, weights)
        out, h_n, c_n = LSTMRecurrence.apply(gi, state[0], state[1], w_hh, b_hh, mask, reverse, self.kernels)
        return out, (h_n, c_n)


class RNN(_Fused):
    """torch.nn.RNN's model (tanh), fused kernels."""

    mode, relu = "RNN_TANH", False

    def run(self, x, state, weights, mask, reverse):
        gi, w_hh, b_hh = self._checked(x, weights)
        out, h_n = RNNRecurrence.apply(gi, state[0], w_hh, b_hh, mask, reverse, self.relu, self.kernels)
        return out, (h_n,)


class RNNReLU(RNN):
    """torch.nn.RNN's model (relu), fused kernels."""

    mode, relu = "RNN_RELU", True
