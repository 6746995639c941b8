"""Every registered cell, through the registry: each implementation against the others
(outputs, states, every gradient), the closed-form parameter count, display facts, and the
impl hook of the registry and config. Each cell's own module test (tests/cells/) checks its
step against a hand-computed one."""

from __future__ import annotations

import pytest
import torch
from rnn_compare import compare

from grucli import cells
from grucli.cells import CELLS
from grucli.config import ModelConfig
from grucli.model import SequenceModel, count_params, model_params

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
WITH_TORCH = [c for c in CELLS if CELLS[c].torch_module]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", WITH_TORCH)
def test_reference_matches_torch(cell, layers, bidirectional, dtype):
    err = compare(cell, "reference", layers=layers, bidirectional=bidirectional, dtype=dtype)
    assert err < TOL[dtype]


@pytest.mark.parametrize("cell", WITH_TORCH)
def test_reference_matches_torch_on_packed_sequences(cell):
    err = compare(cell, "reference", layers=2, bidirectional=True, dtype=torch.float64, packed=True, B=4)
    assert err < TOL[torch.float64]


def test_gru_and_gru_cho_share_parameters_but_not_the_function():
    gru, cho = cells.make(CELLS["gru"], 3, 4).double(), cells.make(CELLS["gru_cho"], 3, 4).double()
    cho.load_state_dict(gru.state_dict())
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert not torch.allclose(gru(x)[1], cho(x)[1])


@pytest.mark.parametrize("cell,impl", [(c, i) for c in CELLS for i in CELLS[c].impls])
def test_every_impl_has_the_closed_form_parameter_count_and_torch_names(cell, impl):
    model = SequenceModel(cell, input_size=3, output_size=2, hidden_size=5, head="last", num_layers=2,
                          bidirectional=True, impl=impl)
    assert count_params(model) == model_params(cell, 5, input_size=3, output_size=2, layers=2, bidirectional=True)
    names = {n for n, _ in model.rnn.named_parameters()}
    for p in CELLS[cell].params:
        assert f"{p.name}_l1_reverse" in names and f"{p.name}_l0" in names


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("I,H", [(3, 5), (1, 1), (17, 8)])
def test_the_formula_grucli_cells_prints_is_the_count(cell, I, H):
    spec = CELLS[cell]
    module = cells.make(spec, I, H, impl="reference")
    assert eval(spec.formula, {}, {"I": I, "H": H}) == spec.layer_params(I, H) == count_params(module)


def test_display_facts_are_distinct():
    colours = [c.display.colour for c in CELLS.values()]
    labels = [c.display.label for c in CELLS.values()]
    assert len(set(colours)) == len(colours) and len(set(labels)) == len(labels)
    assert cells.order(["rnn", "lstm", "gone", "gru"]) == ["gru", "lstm", "rnn", "gone"]
    assert cells.colour("gone") == cells.colour("gone") and cells.colour("gone") not in colours


def test_weights_copy_between_impls():
    a = SequenceModel("lstm", input_size=3, output_size=2, hidden_size=5, head="each", impl="torch")
    b = SequenceModel("lstm", input_size=3, output_size=2, hidden_size=5, head="each", impl="reference")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 3)
    assert torch.allclose(a(x), b(x), atol=1e-6)


@pytest.mark.parametrize("cell", WITH_TORCH)
def test_same_seed_gives_torch_s_initial_weights(cell):
    """grucli's stacks draw their init in torch's order: a fused or reference run starts
    from the weights the torch run of the same seed starts from."""
    for impl in CELLS[cell].impls:
        torch.manual_seed(3)
        ours = cells.make(CELLS[cell], 3, 4, 2, True, impl=impl)
        torch.manual_seed(3)
        theirs = cells.make(CELLS[cell], 3, 4, 2, True, impl="torch")
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))


def test_config_rejects_an_impl_the_cell_does_not_have():
    with pytest.raises(ValueError, match="mgu.*valid: auto, reference"):
        ModelConfig(cell="mgu", impl="torch")
    assert ModelConfig(cell="mgu", impl="auto").impl == "auto"
    assert cells.resolve_impl(CELLS["mgu"], "auto") == "reference"
    with pytest.raises(ValueError, match="gru_cho.*valid: auto, fused, reference"):
        ModelConfig(cell="gru_cho", impl="torch")


def test_registry_loads_without_torch():
    import subprocess
    import sys

    code = ("import sys, grucli.cells as c; assert c.CELLS['lstm'].layer_params(3, 4) == 4*4*7 + 32; "
            "assert 'torch' not in sys.modules, 'the registry imported torch'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("cell", list(CELLS))
def test_forget_bias_sets_the_forget_gate_of_cells_that_have_one_and_nothing_else(cell):
    spec = CELLS[cell]
    torch.manual_seed(0)
    plain = SequenceModel(cell, input_size=3, output_size=1, hidden_size=4, head="last", num_layers=2,
                          bidirectional=True, forget_bias=None).state_dict()
    torch.manual_seed(0)
    model = SequenceModel(cell, input_size=3, output_size=1, hidden_size=4, head="last", num_layers=2,
                          bidirectional=True, forget_bias=2.5)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, plain[k])}
    if spec.forget_gate is None:
        assert not changed
        return
    block = slice(4 * spec.forget_gate, 4 * (spec.forget_gate + 1))
    for sfx in ("l0", "l1", "l0_reverse", "l1_reverse"):
        first, *rest = (getattr(model.rnn, f"{b}_{sfx}") for b in spec.bias_params)
        total = first[block] + sum(r[block] for r in rest)
        assert torch.allclose(total, torch.full((4,), 2.5))
    assert changed <= {f"rnn.{b}_{sfx}" for b in spec.bias_params for sfx in ("l0", "l1", "l0_reverse", "l1_reverse")}


REDUCING = [c for c in CELLS if CELLS[c].reduces_to]


def _layer_weights(cell, I, H):
    from types import SimpleNamespace
    layer = cells.make(CELLS[cell], I, H).double()
    return SimpleNamespace(**{n.removesuffix("_l0"): p for n, p in layer.named_parameters() if n.endswith("_l0")})


def test_the_gru_declares_its_reduction_to_the_tanh_rnn():
    assert "gru" in REDUCING and CELLS["gru"].reduces_to.cell == "rnn"
    assert CELLS["gru"].reduces_to.force == {"r": 1.0, "z": 0.0}


@pytest.mark.parametrize("cell", REDUCING)
def test_a_cell_with_its_gates_forced_is_the_cell_it_reduces_to(cell):
    from grucli.cells.base import project
    red = CELLS[cell].reduces_to
    torch.manual_seed(0)
    w = _layer_weights(cell, 3, 5)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    with torch.no_grad():
        (forced,), _ = CELLS[cell].step(project(x, w), (h,), w, force=red.force)
        target_w = red.weights(w)
        (target,), _ = CELLS[red.cell].step(project(x, target_w), (h,), target_w)
        (free,), _ = CELLS[cell].step(project(x, w), (h,), w)
    assert torch.allclose(forced, target, atol=1e-12)
    assert not torch.allclose(free, target, atol=1e-3)  # the gates do something when free


def test_torch_s_update_gate_convention_z_one_keeps_the_state():
    torch.manual_seed(0)
    w = _layer_weights("gru", 3, 5)
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    from grucli.cells.base import project
    with torch.no_grad():
        (kept,), _ = CELLS["gru"].step(project(x, w), (h,), w, force={"z": 1.0})
    assert torch.equal(kept, h)
