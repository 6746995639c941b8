"""MGU (Zhou et al. 2016): one step by hand, and the reference forward and gradients
against the paper's equations written out independently."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from rnn_compare import against_equations

from grucli.cells import CELLS

MGU = CELLS["mgu"]


def test_one_step_equals_hand_computation():
    H = 2
    w = SimpleNamespace(weight_ih=torch.tensor([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.6], [0.2, 0.2]]),
                        weight_hh=torch.tensor([[0.3, -0.1], [0.2, 0.4], [-0.5, 0.1], [0.6, -0.3]]),
                        bias_ih=torch.tensor([0.1, -0.1, 0.05, 0.0]), bias_hh=torch.tensor([0.0, 0.2, -0.1, 0.3]))
    x, h = [1.0, -0.5], [0.4, -0.8]
    dot = lambda row, v: sum(a * b for a, b in zip(row, v))  # noqa: E731
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    Wi, Wh, bi, bh = w.weight_ih.tolist(), w.weight_hh.tolist(), w.bias_ih.tolist(), w.bias_hh.tolist()
    f = [sig(dot(Wi[j], x) + bi[j] + dot(Wh[j], h) + bh[j]) for j in range(H)]
    fh = [f[j] * h[j] for j in range(H)]
    n = [math.tanh(dot(Wi[H + j], x) + bi[H + j] + dot(Wh[H + j], fh) + bh[H + j]) for j in range(H)]
    expect = [(1 - f[j]) * h[j] + f[j] * n[j] for j in range(H)]
    (h_new,), gates = MGU.step(MGU.project(torch.tensor([x]), w), (torch.tensor([h]),), w)
    assert h_new[0].tolist() == pytest.approx(expect, abs=1e-6)
    assert gates["f"][0].tolist() == pytest.approx(f, abs=1e-6)


def paper(x, state, w):
    """Zhou et al. 2016, eq. 5-7, with each weight block sliced out by hand."""
    (h,) = state
    H = h.shape[1]
    f = torch.sigmoid(F.linear(x, w.weight_ih[:H], w.bias_ih[:H]) + F.linear(h, w.weight_hh[:H], w.bias_hh[:H]))
    n = torch.tanh(F.linear(x, w.weight_ih[H:], w.bias_ih[H:]) + F.linear(f * h, w.weight_hh[H:], w.bias_hh[H:]))
    return (1 - f) * h + f * n,


@pytest.mark.parametrize("bidirectional,packed", [(False, False), (True, True)])
def test_reference_equals_the_paper_s_equations(bidirectional, packed):
    assert against_equations("mgu", paper, bidirectional=bidirectional, packed=packed) < 1e-12
