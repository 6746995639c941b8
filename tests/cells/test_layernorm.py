"""Layer-normalised GRU and LSTM (Ba et al. 2016): one step by hand each, the reference
forward and gradients against the equations written out independently, and where
model.forget_bias goes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hand import known_weights, layer_norm, run_step, sig
from rnn_compare import against_equations

from grucli.cells import CELLS


def _products(p, x, h, rows):
    xs = [sum(a * b for a, b in zip(p["weight_ih"][j], x)) for j in range(rows)]
    hs = [sum(a * b for a, b in zip(p["weight_hh"][j], h)) for j in range(rows)]
    return (layer_norm(xs, p["ln_ih_gain"], p["ln_ih_bias"]), layer_norm(hs, p["ln_hh_gain"], p["ln_hh_bias"]))


def test_ln_lstm_step_equals_hand_computation():
    cell, I, H = CELLS["ln_lstm"], 2, 3
    w, p = known_weights(cell, I, H)
    x, h, c = [0.7, -1.2], [0.3, -0.5, 0.9], [1.1, -0.4, 0.2]
    ax, ah = _products(p, x, h, 4 * H)
    pre = [a + b for a, b in zip(ax, ah)]
    i, f = [sig(v) for v in pre[:H]], [sig(v) for v in pre[H:2 * H]]
    g, o = [math.tanh(v) for v in pre[2 * H:3 * H]], [sig(v) for v in pre[3 * H:]]
    c_new = [f[j] * c[j] + i[j] * g[j] for j in range(H)]
    h_new = [o[j] * math.tanh(v) for j, v in enumerate(layer_norm(c_new, p["ln_c_gain"], p["ln_c_bias"]))]
    (h_out, c_out), _ = run_step(cell, w, x, [h, c])
    assert c_out == pytest.approx(c_new, abs=1e-12) and h_out == pytest.approx(h_new, abs=1e-12)


def test_ln_gru_step_equals_hand_computation():
    cell, I, H = CELLS["ln_gru"], 2, 3
    w, p = known_weights(cell, I, H)
    x, h = [0.7, -1.2], [0.3, -0.5, 0.9]
    ax, ah = _products(p, x, h, 3 * H)
    r = [sig(ax[j] + ah[j]) for j in range(H)]
    z = [sig(ax[H + j] + ah[H + j]) for j in range(H)]
    n = [math.tanh(ax[2 * H + j] + r[j] * ah[2 * H + j]) for j in range(H)]
    (h_out,), gates = run_step(cell, w, x, [h])
    assert h_out == pytest.approx([(1 - z[j]) * n[j] + z[j] * h[j] for j in range(H)], abs=1e-12)
    assert gates["z"] == pytest.approx(z, abs=1e-12)


def ln(a, gain, shift):
    mean = a.mean(-1, keepdim=True)
    var = ((a - mean) ** 2).mean(-1, keepdim=True)
    return gain * (a - mean) / torch.sqrt(var + 1e-5) + shift


def lstm_equations(x, state, w):
    """Ba et al. 2016, eq. 20-22."""
    h, c = state
    pre = ln(F.linear(x, w.weight_ih), w.ln_ih_gain, w.ln_ih_bias) + ln(F.linear(h, w.weight_hh), w.ln_hh_gain,
                                                                        w.ln_hh_bias)
    i, f, g, o = pre.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(ln(c, w.ln_c_gain, w.ln_c_bias)), c


def gru_equations(x, state, w):
    (h,) = state
    ax = ln(F.linear(x, w.weight_ih), w.ln_ih_gain, w.ln_ih_bias)
    ah = ln(F.linear(h, w.weight_hh), w.ln_hh_gain, w.ln_hh_bias)
    H = h.shape[1]
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    return (1 - z) * n + z * h,


@pytest.mark.parametrize("cell,equations", [("ln_lstm", lstm_equations), ("ln_gru", gru_equations)])
@pytest.mark.parametrize("bidirectional,packed", [(False, False), (True, True)])
def test_reference_equals_the_equations(cell, equations, bidirectional, packed):
    assert against_equations(cell, equations, bidirectional=bidirectional, packed=packed) < 1e-10


def test_ln_lstm_forget_bias_goes_into_the_state_shift():
    from grucli.model import SequenceModel

    model = SequenceModel("ln_lstm", input_size=2, output_size=1, hidden_size=3, head="last", forget_bias=1.0)
    assert model.rnn.ln_ih_bias_l0[3:6].tolist() == [1.0, 1.0, 1.0]
    assert model.rnn.ln_hh_bias_l0.abs().sum() == 0 and model.rnn.ln_ih_bias_l0[:3].abs().sum() == 0
