"""Cells and the sequence-model wrapper: exact parameter counts, parameter-budget
matching, the LSTM forget-gate bias, and packing of padded batches."""

from __future__ import annotations

import pytest
import torch

from grucli.cells import CELLS
from grucli.cells import recurrent_params
from grucli.model import SequenceModel, count_params, hidden_for_budget, model_params
from grucli.train.loop import build_model
from grucli.tasks import build_task

# Gate blocks per weight matrix: G = 1 (Elman), 3 (GRU), 4 (LSTM).
KNOWN_GATES = {"rnn": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}


def closed_form(cell: str, I: int, H: int, layers: int, D: int) -> int:
    """The cell's printed formula per layer and direction; layers above the first read the
    D*H outputs of the layer below."""
    total = 0
    for layer in range(layers):
        i = I if layer == 0 else D * H
        total += D * eval(CELLS[cell].formula, {}, {"I": i, "H": H})
    return total


def make(cell, **kw) -> SequenceModel:
    kw = {"input_size": 3, "output_size": 2, "hidden_size": 5, "head": "last", **kw}
    return SequenceModel(cell, **kw)


@pytest.mark.parametrize("cell", sorted(KNOWN_GATES))
def test_torch_layout_cells_count_g_blocks_with_two_biases(cell):
    G = KNOWN_GATES[cell]
    for I, H in [(7, 6), (1, 3)]:
        assert CELLS[cell].layer_params(I, H) == G * H * (I + H) + 2 * G * H


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_parameter_count_matches_closed_form(cell, layers, bidirectional):
    I, H = 7, 6
    model = make(cell, input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidirectional)
    counted = count_params(model.rnn)
    assert counted == sum(p.numel() for p in model.rnn.parameters())
    assert counted == closed_form(cell, I, H, layers, 2 if bidirectional else 1)
    assert counted == recurrent_params(cell, I, H, layers, bidirectional)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("kw", [
    {"input_size": 2, "output_size": 1},
    {"input_size": 10, "output_size": 10, "tokens": True},  # one-hot tokens
    {"input_size": 10, "output_size": 10, "tokens": True, "embed_dim": 4},  # learned embedding
    {"input_size": 3, "output_size": 4, "num_layers": 2, "bidirectional": True},
])
def test_total_parameter_count_includes_embedding_and_head(cell, kw):
    H = 5
    model = make(cell, hidden_size=H, **kw)
    total = sum(p.numel() for p in model.parameters())
    D = 2 if kw.get("bidirectional") else 1
    rnn_in = kw.get("embed_dim") or kw["input_size"]
    embed = kw["input_size"] * kw["embed_dim"] if kw.get("embed_dim") else 0
    head = D * H * kw["output_size"] + kw["output_size"]
    assert total == embed + closed_form(cell, rnn_in, H, kw.get("num_layers", 1), D) + head
    assert total == model_params(cell, H, input_size=kw["input_size"], output_size=kw["output_size"],
                                 layers=kw.get("num_layers", 1), bidirectional=kw.get("bidirectional", False),
                                 vocab_size=kw["input_size"] if kw.get("tokens") else None,
                                 embed_dim=kw.get("embed_dim"))


# --------------------------------------------------------------------------- param_budget
DIMS = [
    {"input_size": 2, "output_size": 1},
    {"input_size": 10, "output_size": 10, "vocab_size": 10, "embed_dim": 4},
    {"input_size": 3, "output_size": 4, "layers": 2, "bidirectional": True},
]


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("budget", [150, 1000, 20000])
@pytest.mark.parametrize("dims", DIMS, ids=["adding", "embedded", "stacked"])
def test_budget_picks_the_closest_hidden_size(cell, budget, dims):
    h = hidden_for_budget(budget, cell, **dims)
    gap = lambda size: abs(model_params(cell, size, **dims) - budget)  # noqa: E731
    assert gap(h) <= gap(h + 1)
    if h > 1:
        assert gap(h) <= gap(h - 1)
    # and nothing further away is closer either (the count grows with H)
    assert all(gap(h) <= gap(other) for other in range(1, 3 * h + 10))


def test_budget_matches_chung_et_al_2014():
    """Chung et al. 2014 compared LSTM 36 / GRU 46 / tanh-RNN 100 units at ~20k parameters.
    With torch's two bias vectors and a linear head, 98 input features and 1 output come
    within one unit of all three (no (I, O) pair matches all three exactly)."""
    dims = {"input_size": 98, "output_size": 1}
    picked = {cell: hidden_for_budget(20000, cell, **dims) for cell in ("lstm", "gru", "rnn")}
    for cell, units in {"lstm": 36, "gru": 46, "rnn": 100}.items():
        assert abs(picked[cell] - units) <= 1, picked
        assert model_params(cell, picked[cell], **dims) == pytest.approx(20000, rel=0.03)
    assert picked["lstm"] < picked["gru"] < picked["rnn"]


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_param_budget_through_the_run_config_builds_equal_sized_models(tiny_run, task):
    counts, hidden = {}, {}
    for cell in ("rnn", "gru", "lstm"):
        cfg = tiny_run(task, model={"cell": cell, "hidden_size": None, "param_budget": 3000})
        data = build_task(cfg.task)
        model = build_model(cfg, data)
        counts[cell], hidden[cell] = count_params(model), model.hidden
        dims = dict(input_size=data.input_size, output_size=data.output_size,
                    vocab_size=data.input_size if data.tokens else None)
        assert model.hidden == hidden_for_budget(3000, cell, **dims)
    assert all(abs(c - 3000) / 3000 < 0.1 for c in counts.values()), counts
    assert hidden["rnn"] > hidden["gru"] > hidden["lstm"], "fewer units for cells with more gates"


# --------------------------------------------------------------------------- LSTM forget bias
@pytest.mark.parametrize("value", [1.0, 0.0, 2.5])
def test_lstm_forget_bias_is_set_in_every_layer_and_direction(value):
    H = 5
    model = make("lstm", hidden_size=H, num_layers=2, bidirectional=True, forget_bias=value)
    biases = dict((n, p.detach()) for n, p in model.rnn.named_parameters() if n.startswith("bias"))
    assert len(biases) == 2 * 2 * 2  # ih/hh x layers x directions
    for suffix in ("l0", "l1", "l0_reverse", "l1_reverse"):
        b_ih, b_hh = biases[f"bias_ih_{suffix}"], biases[f"bias_hh_{suffix}"]
        forget = slice(H, 2 * H)  # torch gate order: i, f, g, o
        assert torch.allclose(b_ih[forget] + b_hh[forget], torch.full((H,), value))
        assert not torch.allclose(b_ih[:H], torch.full((H,), value)), "other gates keep their init"


def test_forget_bias_comes_from_the_config(tiny_run):
    cfg = tiny_run("adding", model={"cell": "lstm", "forget_bias": 2.0})
    model = build_model(cfg, build_task(cfg.task))
    H = model.hidden
    assert torch.allclose(model.rnn.bias_ih_l0[H:2 * H] + model.rnn.bias_hh_l0[H:2 * H], torch.full((H,), 2.0))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_forget_bias_leaves_other_cells_alone(cell):
    torch.manual_seed(0)
    plain = make(cell, forget_bias=None).state_dict()
    torch.manual_seed(0)
    with_bias = make(cell, forget_bias=5.0).state_dict()
    assert all(torch.equal(plain[k], with_bias[k]) for k in plain)


# --------------------------------------------------------------------------- heads and packing
@pytest.mark.parametrize("head,shape", [("last", (4, 2)), ("each", (4, 9, 2))])
def test_head_output_shapes(head, shape):
    assert make("gru", head=head)(torch.randn(4, 9, 3)).shape == shape


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("head", ["last", "each"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_sequence_alone(cell, head, bidirectional):
    torch.manual_seed(0)
    model = make(cell, head=head, num_layers=2, bidirectional=bidirectional).eval()
    lengths = [7, 3, 5, 1]
    seqs = [torch.randn(n, 3) for n in lengths]
    padded = torch.full((len(seqs), max(lengths), 3), 50.0)  # loud padding: it must never leak in
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    with torch.no_grad():
        out = model(padded, torch.tensor(lengths))
        for i, s in enumerate(seqs):
            alone = model(s[None])[0]
            got = out[i] if head == "last" else out[i, :len(s)]
            assert torch.allclose(got, alone, atol=1e-5), f"sequence {i} (length {len(s)})"


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_padded_token_batch_equals_each_sequence_alone(cell):
    torch.manual_seed(1)
    model = make(cell, input_size=2, tokens=True).eval()
    seqs = [torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([0, 1]), torch.tensor([0, 0, 1, 1, 1])]
    padded = torch.ones(3, 6, dtype=torch.long)  # pad with a real token, not 0
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    with torch.no_grad():
        out = model(padded, torch.tensor([len(s) for s in seqs]))
        for i, s in enumerate(seqs):
            assert torch.allclose(out[i], model(s[None])[0], atol=1e-5)
