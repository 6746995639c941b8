"""LSTM as torch.nn.LSTM: no peepholes (Hochreiter & Schmidhuber 1997, with the forget gate
of Gers et al. 2000; see lstm_peephole for the peephole form).

    I = sigma(X W_xi + b_xi + H W_hi + b_hi)       input gate
    F = sigma(X W_xf + b_xf + H W_hf + b_hf)       forget gate
    C_tilde = tanh(X W_xc + b_xc + H W_hc + b_hc)  candidate memory
    O = sigma(X W_xo + b_xo + H W_ho + b_ho)       output gate
    C = F * C + I * C_tilde                        F ~ 1 keeps the cell memory
    H = O * tanh(C)

Gate blocks in the weights: (i, f, g, o) as torch, g being C_tilde. model.forget_bias sets
the forget gate's bias (Jozefowicz et al. 2015 recommend 1).
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, torch, torch_layout


def step(xw, state, w):
    H, C = state
    I, F, G, O = (xw + H @ w.weight_hh.T + w.bias_hh).chunk(4, -1)  # noqa: E741  (B, H) each
    I, F, C_tilde, O = torch.sigmoid(I), torch.sigmoid(F), torch.tanh(G), torch.sigmoid(O)  # noqa: E741
    C = F * C + I * C_tilde
    return (O * torch.tanh(C), C), {"f": F, "i": I, "o": O, "g": C_tilde}


CELL = Cell(
    name="lstm", summary="LSTM without peepholes (torch.nn.LSTM)", citation="Hochreiter & Schmidhuber 1997; Gers et al. 2000",
    equation="torch LSTM: c_t = f_t⊙c_{t−1} + i_t⊙g_t, h_t = o_t⊙tanh(c_t)  (f≈1 keeps the cell memory)",
    formula="4*H*(I + H) + 8*H", params=torch_layout(4), step=step, gates={"f": "forget", "i": "input", "o": "output"}, states=("h", "c"),
    display=Display("LSTM", "#0072B2", "s"), torch_module=("LSTM", {}), fused="lstm", forget_gate=1,
)
