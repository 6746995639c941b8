"""GRU as Cho et al. 2014 (eq. 5-8) and d2l.ai write it: the reset gate is applied BEFORE
the hidden matrix product.

    R = sigma(X W_xr + b_xr + H W_hr + b_hr)
    Z = sigma(X W_xz + b_xz + H W_hz + b_hz)
    H_tilde = tanh(X W_xh + b_xh + (R * H) W_hh + b_hh)
    H = Z * H + (1 - Z) * H_tilde

The same parameters as torch's GRU (gate blocks r, z, n; two biases) but a different
function, so it is its own cell; torch has no module for it. grucli's fused kernels cover
it (two products per step: H W_h[rz], then (R * H) W_hh).
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, torch, torch_layout


def step(xw, state, w):
    (H,) = state
    X_r, X_z, X_h = xw.chunk(3, -1)  # X W_x? + b_x?, (B, H) each
    W_hr, W_hz, W_hh = w.weight_hh.chunk(3)
    b_hr, b_hz, b_hh = w.bias_hh.chunk(3)
    R = torch.sigmoid(X_r + H @ W_hr.T + b_hr)
    Z = torch.sigmoid(X_z + H @ W_hz.T + b_hz)
    H_tilde = torch.tanh(X_h + (R * H) @ W_hh.T + b_hh)
    return (Z * H + (1 - Z) * H_tilde,), {"z": Z, "r": R, "n": H_tilde}


CELL = Cell(
    name="gru_cho", summary="GRU, reset gate before the hidden matmul (Cho et al. 2014, d2l)",
    citation="Cho et al. 2014, eq. 5-8",
    equation="GRU (Cho 2014, reset before matmul): h_t = (1−z_t)⊙n_t + z_t⊙h_{t−1}  (z≈1 keeps the past)",
    formula="3*H*(I + H) + 6*H", params=torch_layout(3), step=step, gates={"z": "update", "r": "reset"},
    display=Display("GRU (Cho)", "#E69F00", "D"), fused="gru_cho",
)
