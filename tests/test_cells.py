"""Reference cells (model.impl: reference) against torch's modules, the gru_cho cell, and
the impl hook of the cell registry and config."""

from __future__ import annotations

import pytest
import torch
from rnn_compare import compare

from grucli import cells
from grucli.config import ModelConfig
from grucli.models import CELLS, SequenceModel, count_params, model_params

REFERENCE = {"rnn": cells.RNN, "rnn_relu": cells.RNNReLU, "gru": cells.GRU, "lstm": cells.LSTM}
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", list(REFERENCE))
def test_reference_matches_torch(cell, layers, bidirectional, dtype):
    err = compare(cell, REFERENCE[cell], layers=layers, bidirectional=bidirectional, dtype=dtype)
    assert err < TOL[dtype]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_reference_matches_torch_on_packed_sequences(cell):
    err = compare(cell, REFERENCE[cell], layers=2, bidirectional=True, dtype=torch.float64, packed=True, B=4)
    assert err < TOL[torch.float64]


def test_gru_cho_applies_the_reset_gate_before_the_matmul():
    torch.manual_seed(0)
    m = cells.GRUCho(3, 4).double()
    x = torch.randn(2, 1, 3, dtype=torch.float64)
    h = torch.randn(2, 4, dtype=torch.float64)
    W_x, W_h, b_x, b_h = m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0
    gx, gh = x[:, 0] @ W_x.T + b_x, h @ W_h.T + b_h
    R, Z = torch.sigmoid(gx[:, :4] + gh[:, :4]), torch.sigmoid(gx[:, 4:8] + gh[:, 4:8])
    H_tilde = torch.tanh(gx[:, 8:] + (R * h) @ W_h[8:].T + b_h[8:])  # Cho et al. 2014, eq. 8
    _, h_n = m(x, h[None])
    assert torch.allclose(h_n[0], Z * h + (1 - Z) * H_tilde)
    torch_form = cells.GRU(3, 4).double()
    torch_form.load_state_dict(m.state_dict())
    assert not torch.allclose(torch_form(x, h[None])[1], h_n)  # a different model


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("impl", ["torch", "fused", "reference"])
def test_every_impl_has_the_closed_form_parameter_count_and_torch_names(cell, impl):
    if impl not in CELLS[cell].impls:
        pytest.skip(f"{cell} has no {impl} implementation")
    model = SequenceModel(cell, input_size=3, output_size=2, hidden_size=5, head="last", num_layers=2,
                          bidirectional=True, impl=impl)
    assert count_params(model) == model_params(cell, 5, input_size=3, output_size=2, layers=2, bidirectional=True)
    names = {n for n, _ in model.rnn.named_parameters()}
    assert "weight_hh_l1_reverse" in names and "bias_ih_l0" in names


def test_weights_copy_between_impls():
    a = SequenceModel("lstm", input_size=3, output_size=2, hidden_size=5, head="each", impl="torch")
    b = SequenceModel("lstm", input_size=3, output_size=2, hidden_size=5, head="each", impl="reference")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 3)
    assert torch.allclose(a(x), b(x), atol=1e-6)


def test_config_rejects_an_impl_the_cell_does_not_have():
    with pytest.raises(ValueError, match="gru_cho.*valid: auto, reference"):
        ModelConfig(cell="gru_cho", impl="torch")
    assert ModelConfig(cell="gru_cho", impl="auto").impl == "auto"
    assert CELLS["gru_cho"].resolve_impl("auto") == "reference"
