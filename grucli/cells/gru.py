"""GRU as torch.nn.GRU and cuDNN compute it: the reset gate is applied AFTER the hidden
matrix product (Cho et al. 2014 apply it before: see gru_cho).

    R = sigma(X W_xr + b_xr + H W_hr + b_hr)              reset gate
    Z = sigma(X W_xz + b_xz + H W_hz + b_hz)              update gate
    H_tilde = tanh(X W_xh + b_xh + R * (H W_hh + b_hh))   candidate state
    H = Z * H + (1 - Z) * H_tilde                         Z ~ 1 keeps the past

Gate blocks in the weights: (r, z, n) as torch, n being H_tilde. sigma is the logistic
sigmoid, * the elementwise product; every W_x? / W_h? is one block of weight_ih / weight_hh.
"""

from __future__ import annotations

from types import SimpleNamespace

from grucli.cells.base import Cell, Display, Reduction, torch, torch_layout


def step(xw, state, w, force=None):
    """One step; `force={"r": 1.0, "z": 0.0}` holds gates at constants instead."""
    (H,) = state
    X_r, X_z, X_h = xw.chunk(3, -1)  # X W_x? + b_x?, (B, H) each
    H_r, H_z, H_h = (H @ w.weight_hh.T + w.bias_hh).chunk(3, -1)  # H W_h? + b_h?
    R = _gate(X_r + H_r, force, "r")
    Z = _gate(X_z + H_z, force, "z")
    H_tilde = torch.tanh(X_h + R * H_h)
    return (Z * H + (1 - Z) * H_tilde,), {"z": Z, "r": R, "n": H_tilde}


def _gate(pre, force, name):
    return torch.full_like(pre, force[name]) if force and name in force else torch.sigmoid(pre)


def rnn_weights(w) -> SimpleNamespace:
    """The candidate block (n, the third) of each GRU tensor: with R = 1 and Z = 0 the step
    is H = tanh(X W_xh + b_xh + H W_hh + b_hh), the tanh Elman RNN with these weights."""
    n = w.weight_hh.shape[1]
    return SimpleNamespace(**{k: getattr(w, k)[2 * n:] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})


CELL = Cell(
    name="gru", summary="GRU, reset gate after the hidden matmul (torch.nn.GRU)", citation="Cho et al. 2014 (torch form)",
    equation="torch GRU: h_t = (1−z_t)⊙n_t + z_t⊙h_{t−1}  (z≈1 keeps the past, z≈0 writes the candidate n_t)",
    formula="3*H*(I + H) + 6*H", params=torch_layout(3), step=step, gates={"z": "update", "r": "reset"},
    display=Display("GRU", "#D55E00", "o"), torch_module=("GRU", {}), fused="gru",
    reduces_to=Reduction("rnn", {"r": 1.0, "z": 0.0}, rnn_weights,
                         "reset gate r = 1 and update gate z = 0 (torch's convention: z = 0 writes the candidate): "
                         "h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh), the tanh RNN"),
)
