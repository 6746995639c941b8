"""Peephole LSTM (Gers & Schmidhuber 2000): one step by hand, the reference forward and
gradients against the equations written out independently, and without peepholes it is
torch's LSTM."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hand import affine, known_weights, run_step, sig
from rnn_compare import against_equations

from grucli import cells
from grucli.cells import CELLS

PEEP = CELLS["lstm_peephole"]


def test_one_step_equals_hand_computation():
    I, H = 2, 3
    w, p = known_weights(PEEP, I, H)
    x, h, c = [0.7, -1.2], [0.3, -0.5, 0.9], [1.1, -0.4, 0.2]
    pre = lambda k, j: affine(p["weight_ih"], p["bias_ih"], x, k * H + j) + affine(p["weight_hh"], p["bias_hh"], h, k * H + j)  # noqa: E731,E501
    peep = p["weight_peep"]
    i = [sig(pre(0, j) + peep[j] * c[j]) for j in range(H)]
    f = [sig(pre(1, j) + peep[H + j] * c[j]) for j in range(H)]
    g = [math.tanh(pre(2, j)) for j in range(H)]
    c_new = [f[j] * c[j] + i[j] * g[j] for j in range(H)]
    o = [sig(pre(3, j) + peep[2 * H + j] * c_new[j]) for j in range(H)]  # the output gate sees the new memory
    (h_new, c_out), gates = run_step(PEEP, w, x, [h, c])
    assert c_out == pytest.approx(c_new, abs=1e-12)
    assert h_new == pytest.approx([o[j] * math.tanh(c_new[j]) for j in range(H)], abs=1e-12)
    assert gates["o"] == pytest.approx(o, abs=1e-12) and gates["f"] == pytest.approx(f, abs=1e-12)


def equations(x, state, w):
    h, c = state
    H = h.shape[1]
    block = lambda k: F.linear(x, w.weight_ih[k * H:(k + 1) * H], w.bias_ih[k * H:(k + 1) * H]) + F.linear(  # noqa: E731
        h, w.weight_hh[k * H:(k + 1) * H], w.bias_hh[k * H:(k + 1) * H])
    p_i, p_f, p_o = w.weight_peep[:H], w.weight_peep[H:2 * H], w.weight_peep[2 * H:]
    i, f = torch.sigmoid(block(0) + p_i * c), torch.sigmoid(block(1) + p_f * c)
    c = f * c + i * torch.tanh(block(2))
    return torch.sigmoid(block(3) + p_o * c) * torch.tanh(c), c


@pytest.mark.parametrize("bidirectional,packed", [(False, False), (True, True)])
def test_reference_equals_the_equations(bidirectional, packed):
    assert against_equations("lstm_peephole", equations, bidirectional=bidirectional, packed=packed) < 1e-12


def test_with_zero_peepholes_it_is_torch_s_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True).double()
    peep = cells.make(PEEP, 3, 4).double()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            getattr(peep, name).copy_(p)
        peep.weight_peep_l0.zero_()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    assert torch.allclose(peep(x)[0], lstm(x)[0], atol=1e-12)
