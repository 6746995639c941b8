"""LSTM with peephole connections (Gers & Schmidhuber 2000): the gates also see the cell
memory, through one diagonal weight each (Greff et al. 2017's "vanilla" LSTM).

    I = sigma(X W_xi + b_xi + H W_hi + b_hi + p_i * C)       input gate, sees C_{t-1}
    F = sigma(X W_xf + b_xf + H W_hf + b_hf + p_f * C)       forget gate, sees C_{t-1}
    C_tilde = tanh(X W_xc + b_xc + H W_hc + b_hc)
    C' = F * C + I * C_tilde
    O = sigma(X W_xo + b_xo + H W_ho + b_ho + p_o * C')      output gate, sees the new C_t
    H = O * tanh(C')

Gate blocks (i, f, g, o) as torch's LSTM, plus weight_peep = (p_i, p_f, p_o), 3H. torch has
no module for it; grucli's fused kernels cover it (the LSTM's, with the peephole terms added
in the gate pass).
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, Param, torch, torch_layout


def step(xw, state, w):
    H, C = state
    pre_i, pre_f, pre_g, pre_o = (xw + H @ w.weight_hh.T + w.bias_hh).chunk(4, -1)  # (B, H) each
    p_i, p_f, p_o = w.weight_peep.chunk(3)
    I = torch.sigmoid(pre_i + p_i * C)  # noqa: E741
    F = torch.sigmoid(pre_f + p_f * C)
    C_tilde = torch.tanh(pre_g)
    C = F * C + I * C_tilde
    O = torch.sigmoid(pre_o + p_o * C)
    return (O * torch.tanh(C), C), {"f": F, "i": I, "o": O, "g": C_tilde}


CELL = Cell(
    name="lstm_peephole", summary="LSTM whose gates also read the cell memory (peepholes)",
    citation="Gers & Schmidhuber 2000; Greff et al. 2017",
    equation="peephole LSTM: c_t = f_t⊙c_{t−1} + i_t⊙g_t, gates also see c (f≈1 keeps the cell memory)",
    formula="4*H*(I + H) + 11*H", params=(*torch_layout(4), Param("weight_peep", lambda I, H: (3 * H,))),
    step=step, gates={"f": "forget", "i": "input", "o": "output"}, states=("h", "c"),
    display=Display("LSTM (peephole)", "#44AA99", "p"), fused="lstm_peephole", forget_gate=1,
)
