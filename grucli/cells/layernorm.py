"""Layer-normalised GRU and LSTM (Ba, Kiros & Hinton 2016, section 3.1 and eq. 20-22):
the input's and the state's contributions to the gates are each normalised over their
units before they are added, which steadies training on long sequences.

    LN(a; g, b) = g * (a - mean(a)) / sqrt(var(a) + 1e-5) + b      per sequence, over the vector

ln_lstm (eq. 20-22; gate blocks i, f, g, o as torch's LSTM):
    (I, F, G, O) = LN(X W_x; g_x, b_x) + LN(H W_h; g_h, b_h)
    C = sigma(F) * C + sigma(I) * tanh(G)
    H = sigma(O) * tanh(LN(C; g_c, b_c))

ln_gru (the same normalisation on torch's GRU, reset after the product; blocks r, z, n):
    (X_r, X_z, X_n) = LN(X W_x; g_x, b_x),   (H_r, H_z, H_n) = LN(H W_h; g_h, b_h)
    R = sigma(X_r + H_r),  Z = sigma(X_z + H_z),  H_tilde = tanh(X_n + R * H_n)
    H = Z * H + (1 - Z) * H_tilde

The LN shifts b_x + b_h stand for the paper's separate bias b (which would only add to
them); gains start at 1 and shifts at 0. torch has no module for either.
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, Param, torch

EPS = 1e-5


def layer_norm(a, gain, shift):
    """(a - mean) / std over the last dimension, then scaled and shifted."""
    return torch.nn.functional.layer_norm(a, a.shape[-1:], gain, shift, EPS)


def _params(blocks: int, memory: bool) -> tuple[Param, ...]:
    ln = lambda name, size, init: Param(name, lambda I, H: (size * H,), init=init)  # noqa: E731
    return (Param("weight_ih", lambda I, H: (blocks * H, I)), Param("weight_hh", lambda I, H: (blocks * H, H)),
            ln("ln_ih_gain", blocks, "ones"), ln("ln_ih_bias", blocks, "zeros"),
            ln("ln_hh_gain", blocks, "ones"), ln("ln_hh_bias", blocks, "zeros"),
            *((ln("ln_c_gain", 1, "ones"), ln("ln_c_bias", 1, "zeros")) if memory else ()))


def project(x, w):
    return layer_norm(x @ w.weight_ih.T, w.ln_ih_gain, w.ln_ih_bias)


def lstm_step(xw, state, w):
    H, C = state
    pre_i, pre_f, pre_g, pre_o = (xw + layer_norm(H @ w.weight_hh.T, w.ln_hh_gain, w.ln_hh_bias)).chunk(4, -1)
    I, F, O = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.sigmoid(pre_o)  # noqa: E741
    C_tilde = torch.tanh(pre_g)
    C = F * C + I * C_tilde
    return (O * torch.tanh(layer_norm(C, w.ln_c_gain, w.ln_c_bias)), C), {"f": F, "i": I, "o": O, "g": C_tilde}


def gru_step(xw, state, w):
    (H,) = state
    X_r, X_z, X_n = xw.chunk(3, -1)
    H_r, H_z, H_n = layer_norm(H @ w.weight_hh.T, w.ln_hh_gain, w.ln_hh_bias).chunk(3, -1)
    R = torch.sigmoid(X_r + H_r)
    Z = torch.sigmoid(X_z + H_z)
    H_tilde = torch.tanh(X_n + R * H_n)
    return (Z * H + (1 - Z) * H_tilde,), {"z": Z, "r": R, "n": H_tilde}


LN_LSTM = Cell(
    name="ln_lstm", summary="layer-normalised LSTM", citation="Ba et al. 2016, eq. 20-22",
    equation="LN-LSTM: gates from LN(W_x x) + LN(W_h h); h_t = o_t⊙tanh(LN(c_t))  (f≈1 keeps the cell memory)",
    formula="4*H*(I + H) + 18*H", params=_params(4, memory=True), project=project, step=lstm_step,
    gates={"f": "forget", "i": "input", "o": "output"}, states=("h", "c"),
    display=Display("LN-LSTM", "#332288", "h"), forget_gate=1, bias_params=("ln_ih_bias", "ln_hh_bias"),
)

LN_GRU = Cell(
    name="ln_gru", summary="layer-normalised GRU (reset after the product, as torch)", citation="Ba et al. 2016, sec. 3.1",
    equation="LN-GRU: gates from LN(W_x x) + LN(W_h h); h_t = (1−z_t)⊙n_t + z_t⊙h_{t−1}  (z≈1 keeps the past)",
    formula="3*H*(I + H) + 12*H", params=_params(3, memory=False), project=project, step=gru_step,
    gates={"z": "update", "r": "reset"}, display=Display("LN-GRU", "#882255", "H"),
)
