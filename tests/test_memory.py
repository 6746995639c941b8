"""Memory that separates the cells: bytes autograd saves for the backward pass (counted the
same way for every implementation) and bytes of parameters and optimiser state."""

from __future__ import annotations

import pytest
import torch

from grucli import cells
from grucli.train import memory
from grucli.cells import CELLS
from grucli.model import SequenceModel
from grucli.train.loop import train_run


def saved(cell: str, impl: str, H: int = 32, T: int = 20, B: int = 8) -> int:
    torch.manual_seed(0)
    model = SequenceModel(cell, input_size=3, output_size=1, hidden_size=H, head="last", impl=impl)
    x, y = torch.randn(B, T, 3), torch.randn(B, 1)
    return memory.saved_activation_bytes(model, lambda: torch.nn.functional.mse_loss(model(x), y))


@pytest.mark.parametrize("impl", ["fused", "torch"])
def test_a_gru_saves_fewer_activations_than_an_lstm_at_the_same_size(impl):
    """(Not so on the reference implementation: autograd through the GRU's step keeps more
    intermediate tensors than through the LSTM's; the measurement says so, per impl.)"""
    if not all(impl in CELLS[c].impls and cells.impl_available(impl) for c in ("gru", "lstm")):
        pytest.skip(f"{impl} unavailable here")
    assert saved("gru", impl) < saved("lstm", impl)


def test_fused_kernels_save_what_their_backward_needs():
    """Fused GRU keeps gates (3H), h W_hn (H) and outputs (H) per step; the LSTM gates (4H),
    c, tanh(c) and outputs (3H): 5/7 of the LSTM's, plus the same input in both."""
    if not cells.impl_available("fused"):
        pytest.skip("no fused kernels here")
    H, T, B = 32, 20, 8
    gru, lstm = saved("gru", "fused", H, T, B), saved("lstm", "fused", H, T, B)
    per_step = lambda k: k * H * T * B * 4  # noqa: E731  (float32)
    assert gru - lstm == per_step(5) - per_step(7)
    assert saved("gru", "fused", H, 2 * T, B) > 1.9 * gru  # grows with T


def test_parameters_are_not_activations_and_optimizer_state_is_two_moments():
    model = SequenceModel("gru", input_size=3, output_size=1, hidden_size=4, head="last", impl="torch")
    assert memory.parameter_bytes(model) == 4 * sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 5, 3)).sum().backward()
    opt.step()
    assert memory.optimizer_state_bytes(opt) >= 2 * memory.parameter_bytes(model)


def test_each_run_records_its_memory_and_measuring_changes_no_number(tiny_run):
    cfg = tiny_run(model={"cell": "lstm", "hidden_size": 6})
    a, b = train_run(cfg), train_run(cfg)
    for key in ("saved_activation_bytes", "param_bytes", "optimizer_state_bytes"):
        assert a.timing[key] > 0 and a.timing[key] == b.timing[key]
    assert a.history == [{**r, **{k: a.history[i][k] for k in r if k.endswith("time_s")}} for i, r in enumerate(b.history)]
    assert a.test == b.test
