"""MGU, the minimal gated unit (Zhou, Wu, Zhang & Zhou 2016): a GRU whose reset and update
gates are one forget gate.

    F = sigma(X W_xf + b_xf + H W_hf + b_hf)               forget gate
    H_tilde = tanh(X W_xh + b_xh + (F * H) W_hh + b_hh)    candidate, from the kept part of H
    H = (1 - F) * H + F * H_tilde                          F ~ 0 keeps the past

Two gate blocks (f, n) in torch's layout (weight_ih, weight_hh, two biases): 2/3 of a GRU's
parameters at the same H. torch has no module for it.
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, torch, torch_layout


def step(xw, state, w):
    (H,) = state
    X_f, X_h = xw.chunk(2, -1)  # X W_x? + b_x?, (B, H) each
    W_hf, W_hh = w.weight_hh.chunk(2)
    b_hf, b_hh = w.bias_hh.chunk(2)
    F = torch.sigmoid(X_f + H @ W_hf.T + b_hf)
    H_tilde = torch.tanh(X_h + (F * H) @ W_hh.T + b_hh)
    return ((1 - F) * H + F * H_tilde,), {"f": F, "n": H_tilde}


CELL = Cell(
    name="mgu", summary="minimal gated unit: one forget gate for GRU's two", citation="Zhou et al. 2016, eq. 5-7",
    equation="MGU: h_t = (1−f_t)⊙h_{t−1} + f_t⊙tanh(W x_t + U (f_t⊙h_{t−1}) + b)  (f≈0 keeps the past)",
    formula="2*H*(I + H) + 4*H", params=torch_layout(2), step=step, gates={"f": "forget"},
    display=Display("MGU", "#56B4E9", "P"),
)
