"""Elman RNN (Elman 1990), as torch.nn.RNN: cells `rnn` (tanh) and `rnn_relu`.

    H_t = phi(X_t W_xh^T + b_xh + H_{t-1} W_hh^T + b_hh),   phi = tanh or relu

No gates: every step rewrites the whole state, which is why gradients through many steps
vanish (tanh) or explode (relu). Weights as torch: weight_ih (H, I), weight_hh (H, H) and
two biases.
"""

from __future__ import annotations

from grucli.cells.base import Cell, Display, torch, torch_layout


def tanh_step(xw, state, w):
    (H,) = state
    return (torch.tanh(xw + H @ w.weight_hh.T + w.bias_hh),), {}


def relu_step(xw, state, w):
    (H,) = state
    return (torch.relu(xw + H @ w.weight_hh.T + w.bias_hh),), {}


RNN = Cell(
    name="rnn", summary="Elman RNN, tanh (torch.nn.RNN)", citation="Elman 1990",
    equation="Elman RNN: h_t = tanh(W_ih x_t + W_hh h_{t−1} + b)  (no gates)",
    formula="H*(I + H) + 2*H", params=torch_layout(1), step=tanh_step,
    display=Display("RNN (tanh)", "#009E73", "^"),
    torch_module=("RNN", {"nonlinearity": "tanh"}), fused="rnn_tanh",
)

RNN_RELU = Cell(
    name="rnn_relu", summary="Elman RNN, ReLU (torch.nn.RNN)", citation="Elman 1990; Le et al. 2015",
    equation="Elman RNN: h_t = relu(W_ih x_t + W_hh h_{t−1} + b)  (no gates)",
    formula="H*(I + H) + 2*H", params=torch_layout(1), step=relu_step,
    display=Display("RNN (ReLU)", "#CC79A7", "v"), bounded=False,
    torch_module=("RNN", {"nonlinearity": "relu"}), fused="rnn_relu",
)
