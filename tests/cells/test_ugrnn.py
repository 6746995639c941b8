"""UGRNN (Collins et al. 2017): one step by hand, and the reference forward and gradients
against the paper's equations written out independently."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hand import affine, known_weights, run_step, sig
from rnn_compare import against_equations

from grucli.cells import CELLS

UGRNN = CELLS["ugrnn"]


def test_one_step_equals_hand_computation():
    I, H = 2, 3
    w, p = known_weights(UGRNN, I, H)
    x, h = [0.7, -1.2], [0.3, -0.5, 0.9]
    pre = lambda k: [affine(p["weight_ih"], p["bias_ih"], x, k * H + j)  # noqa: E731
                     + affine(p["weight_hh"], p["bias_hh"], h, k * H + j) for j in range(H)]
    g = [sig(v) for v in pre(0)]
    c = [__import__("math").tanh(v) for v in pre(1)]
    (h_new,), gates = run_step(UGRNN, w, x, [h])
    assert h_new == pytest.approx([g[j] * h[j] + (1 - g[j]) * c[j] for j in range(H)], abs=1e-12)
    assert gates["g"] == pytest.approx(g, abs=1e-12)


def paper(x, state, w):
    """Collins et al. 2017, UGRNN: c = tanh(W_cx x + W_ch h + b_c), g = sigma(...), h = g h + (1 - g) c."""
    (h,) = state
    H = h.shape[1]
    g = torch.sigmoid(F.linear(x, w.weight_ih[:H], w.bias_ih[:H]) + F.linear(h, w.weight_hh[:H], w.bias_hh[:H]))
    c = torch.tanh(F.linear(x, w.weight_ih[H:], w.bias_ih[H:]) + F.linear(h, w.weight_hh[H:], w.bias_hh[H:]))
    return g * h + (1 - g) * c,


@pytest.mark.parametrize("bidirectional,packed", [(False, False), (True, True)])
def test_reference_equals_the_paper_s_equations(bidirectional, packed):
    assert against_equations("ugrnn", paper, bidirectional=bidirectional, packed=packed) < 1e-12
