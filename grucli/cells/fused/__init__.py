"""grucli's fused CPU kernels (model.impl: fused): the same models and weights as torch's
modules, faster. A cell opts in with `Cell.fused = "<family>"`; the families are RUN below.

Where nn.GRU's time goes on CPU: per-op dispatch (5-11 us per small elementwise op) and a
backward through autograd's many small nodes. Here, per layer and direction, one autograd
Function whose C++ kernels (fused_rnn.cpp) do:

    forward, per step:  gh = h W_hh^T (one matmul), then one pass over the gates (biases,
                        sigmoid/tanh, state update); gi = x W_ih^T is one matmul per chunk of
                        a few steps, read back from cache
    backward, per step: one pass for the gate gradients, one matmul for dh_prev; per chunk
                        of a few steps, while its gate gradients are in cache: dW_ih, dW_hh,
                        db and dx, one matmul each

Matrix products call the BLAS inside libtorch directly on raw pointers (no ATen op per step).
The kernels are built on first use (grucli.cells.fused.build); where they cannot be built,
`fused` is unavailable and `model.impl: auto` uses torch's module, saying why once.
"""

from __future__ import annotations

import torch

from grucli.cells.fused.build import kernels
from grucli.cells.layers import RecurrentLayers
from grucli.errors import GrucliError

# Elements per cache-sized chunk buffer (input projection, gate gradients): the kernels work
# on as many steps at a time as fit. Tests lower it to cross chunk boundaries.
CHUNK = 1 << 17


def _c(t):
    return None if t is None else t.contiguous()


# Each Function covers one layer and direction: input projection, recurrence, and all weight
# gradients, in one kernel call each way, for one run or a pack of runs: x (K, T, B, I),
# states (K, B, H), weights (K, ...), mask (K, T, B); a single run's tensors may come
# without K (the kernels treat them as a pack of one). Gradients of outputs nobody used
# arrive as None (not materialised zeros), and the kernels skip them.
class GRULayer(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (out (T, B, H), h_n (B, H)), or the
    same with a leading K, for the kernels `<family>_forward/_backward` of a GRU family (gru,
    gru_cho): both save the gates and one (T, B, H) tensor of their own (gru: h W_hn + b_hn;
    gru_cho: r * h_prev)."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, k, family):
        x, h0, w_ih, w_hh = x.contiguous(), h0.contiguous(), w_ih.contiguous(), w_hh.contiguous()
        out, h_n, gates, extra = getattr(k, f"{family}_forward")(
            x, w_ih, h0, w_hh, b_ih.contiguous(), b_hh.contiguous(), mask, reverse, any(ctx.needs_input_grad), CHUNK)
        ctx.save_for_backward(x, gates, extra, out, h0, w_ih, w_hh)
        ctx.mask, ctx.reverse, ctx.backward_kernel = mask, reverse, getattr(k, f"{family}_backward")
        ctx.set_materialize_grads(False)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_h):
        x, gates, extra, out, h0, w_ih, w_hh = ctx.saved_tensors
        grads = ctx.backward_kernel(_c(grad_out), _c(grad_h), gates, extra, out, h0, x, w_ih, w_hh, ctx.mask,
                                    ctx.reverse, ctx.needs_input_grad[0], CHUNK)
        return (*grads, None, None, None, None)


class LSTMLayer(torch.autograd.Function):
    """(x (T, B, I), h0, c0 (B, H), W_ih, W_hh, b_ih, b_hh, peep) -> (out (T, B, H), h_n, c_n),
    or the same with a leading K. peep: the peepholes (3H: p_i, p_f, p_o) of lstm_peephole,
    or None for torch's LSTM (the kernels `lstm_peephole_*` and `lstm_*`: one code path,
    whose arithmetic without peepholes is the plain LSTM's)."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, peep, mask, reverse, k):
        x, h0, c0, w_ih, w_hh = x.contiguous(), h0.contiguous(), c0.contiguous(), w_ih.contiguous(), w_hh.contiguous()
        common = (b_ih.contiguous(), b_hh.contiguous())
        if peep is None:
            out, h_n, c_n, gates, cs, tcs = k.lstm_forward(x, w_ih, h0, c0, w_hh, *common, mask, reverse,
                                                           any(ctx.needs_input_grad), CHUNK)
        else:
            peep = peep.contiguous()
            out, h_n, c_n, gates, cs, tcs = k.lstm_peephole_forward(x, w_ih, h0, c0, w_hh, *common, peep, mask,
                                                                    reverse, any(ctx.needs_input_grad), CHUNK)
        ctx.save_for_backward(x, gates, cs, tcs, out, h0, c0, w_ih, w_hh, peep)
        ctx.mask, ctx.reverse, ctx.k = mask, reverse, k
        ctx.set_materialize_grads(False)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_h, grad_c):
        x, gates, cs, tcs, out, h0, c0, w_ih, w_hh, peep = ctx.saved_tensors
        saved = (_c(grad_out), _c(grad_h), _c(grad_c), gates, cs, tcs, out, h0, c0, x, w_ih, w_hh)
        if peep is None:
            grads = ctx.k.lstm_backward(*saved, ctx.mask, ctx.reverse, ctx.needs_input_grad[0], CHUNK)
            return (*grads, None, None, None, None)
        grads = ctx.k.lstm_peephole_backward(*saved, peep, ctx.mask, ctx.reverse, ctx.needs_input_grad[0], CHUNK)
        return (*grads, None, None, None)


class RNNLayer(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), W_ih, W_hh, b_ih, b_hh) -> (out (T, B, H), h_n (B, H)), or the
    same with a leading K."""

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
        grads = ctx.k.rnn_backward(_c(grad_out), _c(grad_h), out, h0, x, w_ih, w_hh, ctx.mask, ctx.reverse, ctx.relu,
                                   ctx.needs_input_grad[0], CHUNK)
        return (*grads, None, None, None, None)


def _gru(family: str):
    def run(x, state, w, mask, reverse, k):
        out, h_n = GRULayer.apply(x, state[0], w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, mask, reverse, k, family)
        return out, (h_n,)

    return run


def _lstm(peephole: bool):
    def run(x, state, w, mask, reverse, k):
        peep = w.weight_peep if peephole else None
        out, h_n, c_n = LSTMLayer.apply(x, state[0], state[1], w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, peep,
                                        mask, reverse, k)
        return out, (h_n, c_n)

    return run


def _rnn(relu: bool):
    def run(x, state, w, mask, reverse, k):
        out, h_n = RNNLayer.apply(x, state[0], w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, mask, reverse, relu, k)
        return out, (h_n,)

    return run


RUN = {"gru": _gru("gru"), "gru_cho": _gru("gru_cho"), "lstm": _lstm(False), "lstm_peephole": _lstm(True),
       "rnn_tanh": _rnn(False), "rnn_relu": _rnn(True)}  # Cell.fused -> one layer


class FusedLayers(RecurrentLayers):
    """A cell's layers on the fused kernels of its family (Cell.fused)."""

    def __init__(self, cell, *args, **kwargs):
        super().__init__(cell, *args, **kwargs)
        self.kernels = kernels()  # built (or loaded) now, not inside the first training step
        if self.kernels is None:
            from grucli.cells.fused.build import unavailable_reason

            raise GrucliError(f"model.impl: fused: grucli's CPU kernels are unavailable here ({unavailable_reason()}); "
                              "use impl auto or torch")
        self._run = RUN[cell.fused]

    def run(self, x, state, w, mask, reverse):
        if x.device.type != "cpu":
            raise RuntimeError("model.impl=fused runs on CPU only; use impl torch (or auto) on GPUs")
        return self._run(x, state, w, mask, reverse, self.kernels)
