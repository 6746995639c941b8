"""IndRNN (Li et al. 2018): one step by hand, the reference forward and gradients against
the paper's equation written out independently, and its recurrent weight is a vector."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hand import affine, known_weights, run_step
from rnn_compare import against_equations

from grucli import cells
from grucli.cells import CELLS

INDRNN = CELLS["indrnn"]


def test_one_step_equals_hand_computation():
    I, H = 2, 3
    w, p = known_weights(INDRNN, I, H)
    x, h = [0.7, -1.2], [0.3, 0.5, 0.9]
    expect = [max(0.0, affine(p["weight_ih"], p["bias_ih"], x, j) + p["weight_hh"][j] * h[j]) for j in range(H)]
    (h_new,), gates = run_step(INDRNN, w, x, [h])
    assert h_new == pytest.approx(expect, abs=1e-12) and gates == {}


def paper(x, state, w):
    """Li et al. 2018, eq. 2: h_t = relu(W x_t + u * h_{t-1} + b)."""
    (h,) = state
    return torch.relu(F.linear(x, w.weight_ih, w.bias_ih) + w.weight_hh * h),


@pytest.mark.parametrize("bidirectional,packed", [(False, False), (True, True)])
def test_reference_equals_the_paper_s_equation(bidirectional, packed):
    assert against_equations("indrnn", paper, bidirectional=bidirectional, packed=packed) < 1e-12


def test_each_unit_recurs_only_on_itself_from_a_weight_in_0_1():
    torch.manual_seed(0)
    stack = cells.make(INDRNN, 3, 16, 2)
    u = stack.weight_hh_l1
    assert u.shape == (16,) and (u >= 0).all() and (u <= 1).all()
    assert stack.weight_ih_l1.shape == (16, 16)  # the second layer reads the first's 16 units
