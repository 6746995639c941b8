"""Explicit-gate reference cells, written like their equations (model.impl: reference).

These are for reading and teaching, not for speed: one Python step per time step. Weights
are stored exactly like torch's modules (see grucli.stack), so with weights copied from
nn.GRU / nn.LSTM / nn.RNN the torch-form cells reproduce torch's outputs and gradients.

Notation: X (B, I) the input at one step, H (B, H) the previous hidden state, sigma the
logistic sigmoid, * elementwise product. Each W_x? / W_h? is one gate block of torch's
`weight_ih` / `weight_hh` and each gate keeps two biases (b_x? and b_h?), as torch does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grucli.stack import RecurrentStack


def _blocks(weights, n):
    """Split (W_ih, W_hh, b_ih, b_hh) into n gate blocks each."""
    return tuple(w.chunk(n) for w in weights)


class ReferenceStack(RecurrentStack):
    """Runs `step` once per time step in Python; padded steps keep the old state."""

    def step(self, X, state, weights):
        raise NotImplementedError

    def run(self, x, state, weights, mask, reverse):
        outs = [None] * x.shape[0]
        for t in (reversed(range(x.shape[0])) if reverse else range(x.shape[0])):
            new = self.step(x[t], state, weights)
            if mask is not None:
                keep = mask[t][:, None]  # (B, 1)
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
            state = new
            outs[t] = state[0]
        return torch.stack(outs), state  # (T, B, H)


class GRU(ReferenceStack):
    """GRU, reset gate applied AFTER the hidden matmul (torch.nn.GRU / cuDNN form):

        R = sigma(X W_xr + b_xr + H W_hr + b_hr)
        Z = sigma(X W_xz + b_xz + H W_hz + b_hz)
        H_tilde = tanh(X W_xh + b_xh + R * (H W_hh + b_hh))
        H = Z * H + (1 - Z) * H_tilde

    Gate order in the weights: (r, z, n), as torch."""

    gates, mode = 3, "GRU"

    def step(self, X, state, weights):
        (H,) = state
        (W_xr, W_xz, W_xh), (W_hr, W_hz, W_hh), (b_xr, b_xz, b_xh), (b_hr, b_hz, b_hh) = _blocks(weights, 3)
        R = torch.sigmoid(F.linear(X, W_xr, b_xr) + F.linear(H, W_hr, b_hr))
        Z = torch.sigmoid(F.linear(X, W_xz, b_xz) + F.linear(H, W_hz, b_hz))
        H_tilde = torch.tanh(F.linear(X, W_xh, b_xh) + R * F.linear(H, W_hh, b_hh))
        return (Z * H + (1 - Z) * H_tilde,)


class GRUCho(ReferenceStack):
    """GRU, reset gate applied BEFORE the hidden matmul (Cho et al. 2014; d2l.ai):

        R = sigma(X W_xr + b_xr + H W_hr + b_hr)
        Z = sigma(X W_xz + b_xz + H W_hz + b_hz)
        H_tilde = tanh(X W_xh + b_xh + (R * H) W_hh + b_hh)
        H = Z * H + (1 - Z) * H_tilde

    A different model from torch's GRU (same parameters, different function), so it is its
    own cell name (`gru_cho`); torch has no implementation of it."""

    gates, mode = 3, "GRU_CHO"

    def step(self, X, state, weights):
        (H,) = state
        (W_xr, W_xz, W_xh), (W_hr, W_hz, W_hh), (b_xr, b_xz, b_xh), (b_hr, b_hz, b_hh) = _blocks(weights, 3)
        R = torch.sigmoid(F.linear(X, W_xr, b_xr) + F.linear(H, W_hr, b_hr))
        Z = torch.sigmoid(F.linear(X, W_xz, b_xz) + F.linear(H, W_hz, b_hz))
        H_tilde = torch.tanh(F.linear(X, W_xh, b_xh) + F.linear(R * H, W_hh, b_hh))
        return (Z * H + (1 - Z) * H_tilde,)


class LSTM(ReferenceStack):
    """LSTM without peepholes (torch.nn.LSTM form; Hochreiter & Schmidhuber 1997, with the
    forget gate of Gers et al. 2000):

        I = sigma(X W_xi + b_xi + H W_hi + b_hi)
        F = sigma(X W_xf + b_xf + H W_hf + b_hf)
        C_tilde = tanh(X W_xc + b_xc + H W_hc + b_hc)
        O = sigma(X W_xo + b_xo + H W_ho + b_ho)
        C = F * C + I * C_tilde
        H = O * tanh(C)

    Gate order in the weights: (i, f, g, o), as torch (g is C_tilde)."""

    gates, states, mode = 4, 2, "LSTM"

    def step(self, X, state, weights):
        H, C = state
        (W_xi, W_xf, W_xc, W_xo), (W_hi, W_hf, W_hc, W_ho), (b_xi, b_xf, b_xc, b_xo), (b_hi, b_hf, b_hc, b_ho) = (
            _blocks(weights, 4))
        I = torch.sigmoid(F.linear(X, W_xi, b_xi) + F.linear(H, W_hi, b_hi))  # noqa: E741
        F_ = torch.sigmoid(F.linear(X, W_xf, b_xf) + F.linear(H, W_hf, b_hf))
        C_tilde = torch.tanh(F.linear(X, W_xc, b_xc) + F.linear(H, W_hc, b_hc))
        O = torch.sigmoid(F.linear(X, W_xo, b_xo) + F.linear(H, W_ho, b_ho))
        C = F_ * C + I * C_tilde
        return O * torch.tanh(C), C


class RNN(ReferenceStack):
    """Elman RNN (torch.nn.RNN form):

        H = phi(X W_xh + b_xh + H W_hh + b_hh),   phi = tanh (cell `rnn`) or relu (`rnn_relu`)"""

    mode, nonlinearity = "RNN_TANH", staticmethod(torch.tanh)

    def step(self, X, state, weights):
        (H,) = state
        W_xh, W_hh, b_xh, b_hh = weights
        return (self.nonlinearity(F.linear(X, W_xh, b_xh) + F.linear(H, W_hh, b_hh)),)


class RNNReLU(RNN):
    __doc__ = RNN.__doc__
    mode, nonlinearity = "RNN_RELU", staticmethod(torch.relu)
