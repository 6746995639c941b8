"""UGRNN, the update-gate RNN (Collins, Sohl-Dickstein & Sussillo 2017): a tanh RNN whose
state update is gated, with no reset gate.

    G = sigma(X W_xg + b_xg + H W_hg + b_hg)     update gate
    C = tanh(X W_xc + b_xc + H W_hc + b_hc)      candidate
    H = G * H + (1 - G) * C                      G ~ 1 keeps the past

Two gate blocks (g, c) in torch's layout, both read the same H W_h product. torch has no
module for it.
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, torch, torch_layout


def step(xw, state, w):
    (H,) = state
    pre_g, pre_c = (xw + H @ w.weight_hh.T + w.bias_hh).chunk(2, -1)  # (B, H) each
    G = torch.sigmoid(pre_g)
    C = torch.tanh(pre_c)
    return (G * H + (1 - G) * C,), {"g": G, "c": C}


CELL = Cell(
    name="ugrnn", summary="update-gate RNN: a gated tanh RNN without a reset gate",
    citation="Collins et al. 2017, 'Capacity and trainability in RNNs'",
    equation="UGRNN: h_t = g_t⊙h_{t−1} + (1−g_t)⊙tanh(W_c x_t + U_c h_{t−1} + b_c)  (g≈1 keeps the past)",
    formula="2*H*(I + H) + 4*H", params=torch_layout(2), step=step, gates={"g": "update"},
    display=Display("UGRNN", "#999933", "X"),
)
