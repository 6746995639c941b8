"""IndRNN, the independently recurrent network (Li, Li, Cook, Zhu & Gao 2018): each unit
recurs only on itself, through one weight, so ReLU units can keep memory over long spans
without exploding (for |u| <= 1).

    H = relu(X W_x^T + b + u * H)        u: one recurrent weight per unit (a vector)

No gates. Parameters: weight_ih (H, I), weight_hh (H,) -- the vector u, initialised in
U(0, 1) as the paper suggests for ReLU units -- and one bias. torch has no module for it.
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, Param, torch


def step(xw, state, w):
    (H,) = state
    return (torch.relu(xw + w.weight_hh * H),), {}


CELL = Cell(
    name="indrnn", summary="independently recurrent ReLU units: u ⊙ h instead of W_hh h",
    citation="Li et al. 2018, eq. 2",
    equation="IndRNN: h_t = relu(W x_t + u⊙h_{t−1} + b)  (no gates; each unit recurs on itself)",
    formula="H*I + 2*H",
    params=(Param("weight_ih", lambda I, H: (H, I)), Param("weight_hh", lambda I, H: (H,), init="uniform01"),
            Param("bias_ih", lambda I, H: (H,))),
    step=step, display=Display("IndRNN", "#000000", "*"), bounded=False,
)
