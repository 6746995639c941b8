"""grucli.inspect (unroll, analysis, run) / `grucli inspect`: gates equal hand-computed values, the
step-wise unroll equals torch's module (outputs and dL/dh_t), gradient flow behaves as the
theory says, and the command writes its figures and summary for a tiny trained run."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from grucli.cli import app
from grucli.cells import CELLS
from grucli.cells.layers import layer_weights
from grucli.inspect.analysis import load_run
from grucli.inspect.files import read_inspect_summary
from grucli.inspect.unroll import grad_norms, head_output, run_stack, unroll
from grucli.model import SequenceModel
from grucli.objectives import Regression

runner = CliRunner()


# --------------------------------------------------------------------------- hand-computed gates
def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _dot(row: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(row, v))


def _known(module: nn.Module) -> dict[str, list]:
    """Give every parameter fixed, distinct values; return them as nested Python lists."""
    with torch.no_grad():
        for n, (name, p) in enumerate(module.named_parameters()):
            p.copy_(torch.linspace(-0.9, 0.8, p.numel()).reshape(p.shape) * (1 + 0.1 * n))
    return {name: p.tolist() for name, p in module.named_parameters()}


XS = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]  # 3 steps, 2 features


def test_gru_gates_equal_hand_computation():
    gru = nn.GRU(2, 2, batch_first=True)
    p = _known(gru)
    W_i, W_h, b_i, b_h = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    H = 2
    h, expect = [0.0, 0.0], []
    for x in XS:  # torch: rows (r, z, n); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1-z) n + z h
        r = [_sig(_dot(W_i[j], x) + b_i[j] + _dot(W_h[j], h) + b_h[j]) for j in range(H)]
        z = [_sig(_dot(W_i[H + j], x) + b_i[H + j] + _dot(W_h[H + j], h) + b_h[H + j]) for j in range(H)]
        n = [math.tanh(_dot(W_i[2 * H + j], x) + b_i[2 * H + j] + r[j] * (_dot(W_h[2 * H + j], h) + b_h[2 * H + j]))
             for j in range(H)]
        h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]
        expect.append({"r": r, "z": z, "n": n, "h": h})
    x = torch.tensor([XS])  # (1, 3, 2)
    tr = unroll(CELLS["gru"], layer_weights(gru, CELLS["gru"], 0), x)
    for t, e in enumerate(expect):
        for g in ("r", "z", "n"):
            assert tr.gates[g][0, t].tolist() == pytest.approx(e[g], abs=1e-6), (t, g)
        assert tr.out[0, t].tolist() == pytest.approx(e["h"], abs=1e-6)
    assert torch.allclose(tr.out, gru(x)[0], atol=1e-6)  # and torch agrees


def test_lstm_gates_equal_hand_computation():
    lstm = nn.LSTM(2, 2, batch_first=True)
    p = _known(lstm)
    W_i, W_h, b_i, b_h = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    H = 2
    pre = lambda k, j, x, h: _dot(W_i[k * H + j], x) + b_i[k * H + j] + _dot(W_h[k * H + j], h) + b_h[k * H + j]  # noqa: E731
    h, c, expect = [0.0, 0.0], [0.0, 0.0], []
    for x in XS:  # torch: rows (i, f, g, o); c' = f c + i g; h' = o tanh(c')
        i = [_sig(pre(0, j, x, h)) for j in range(H)]
        f = [_sig(pre(1, j, x, h)) for j in range(H)]
        g = [math.tanh(pre(2, j, x, h)) for j in range(H)]
        o = [_sig(pre(3, j, x, h)) for j in range(H)]
        c = [f[j] * c[j] + i[j] * g[j] for j in range(H)]
        h = [o[j] * math.tanh(c[j]) for j in range(H)]
        expect.append({"i": i, "f": f, "g": g, "o": o, "h": h})
    x = torch.tensor([XS])
    tr = unroll(CELLS["lstm"], layer_weights(lstm, CELLS["lstm"], 0), x)
    for t, e in enumerate(expect):
        for name in ("i", "f", "g", "o"):
            assert tr.gates[name][0, t].tolist() == pytest.approx(e[name], abs=1e-6), (t, name)
        assert tr.out[0, t].tolist() == pytest.approx(e["h"], abs=1e-6)
    assert torch.allclose(tr.out, lstm(x)[0], atol=1e-6)


# --------------------------------------------------------------------------- the unroll equals torch
@pytest.mark.parametrize("cell", list(CELLS))
def test_unrolled_stack_equals_model_on_packed_bidirectional_input(cell):
    """Every cell, whichever implementation auto picks: inspect's unroll computes the model."""
    torch.manual_seed(0)
    model = SequenceModel(cell, input_size=3, output_size=2, hidden_size=5, head="last", num_layers=2,
                          bidirectional=True).eval()
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 3, 5, 1])
    assert torch.allclose(head_output(model, run_stack(model, x, lengths)), model(x, lengths), atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_grad_wrt_hidden_state_equals_torch_autograd(cell):
    """dL/dh_t from the unroll equals the gradient w.r.t. h0 of torch's own module run on
    the rest of the sequence from (h_t, c_t)."""
    torch.manual_seed(1)
    model = SequenceModel(cell, input_size=2, output_size=1, hidden_size=4, head="last", impl="torch").eval()
    x, y = torch.randn(3, 6, 2), torch.randn(3, 1)
    loss_fn = Regression().loss
    (norms,) = grad_norms(model, x, y, None, loss_fn, layer=0)  # (B, T)
    tr = run_stack(model, x)[0][0]
    for t in (0, 2, 4):
        h0 = tr.steps[t].detach().unsqueeze(0).requires_grad_()  # (1, B, H)
        state = (h0, _cell_state(model, x, t)) if cell == "lstm" else h0
        _, final = model.rnn(x[:, t + 1:], state)
        h_n = final[0] if cell == "lstm" else final
        loss = loss_fn(model.head(h_n[-1]), y) * len(x)
        (g,) = torch.autograd.grad(loss, h0)
        assert torch.allclose(norms[:, t], g[0].norm(dim=-1), rtol=1e-4, atol=1e-7), t


def _cell_state(model, x, t):
    """c_t of the LSTM after step t (from torch's module on the prefix)."""
    _, (_, c) = model.rnn(x[:, :t + 1])
    return c.detach()


# --------------------------------------------------------------------------- gradient flow
def _norm_curve(model, T=15):
    torch.manual_seed(2)
    x, y = torch.randn(8, T, 2), torch.randn(8, 1)
    (norms,) = grad_norms(model, x, y, None, Regression().loss, layer=0)
    return norms.mean(0)  # (T,)


def test_tanh_rnn_gradient_vanishes_with_distance_while_keeping_gru_does_not():
    torch.manual_seed(0)
    rnn = SequenceModel("rnn", input_size=2, output_size=1, hidden_size=8, head="last", impl="torch")
    gru = SequenceModel("gru", input_size=2, output_size=1, hidden_size=8, head="last", impl="torch")
    with torch.no_grad():
        rnn.rnn.weight_hh_l0.mul_(0.3)  # small recurrent weights: ‖∂h_t/∂h_{t-1}‖ < 1
        gru.rnn.bias_ih_l0[8:16] = 10.0  # update gate z = σ(10 + ...) ≈ 1: keep the past
    r, g = _norm_curve(rnn), _norm_curve(gru)
    assert (r[:-1] < r[1:]).all()  # strictly growing towards the loss at t = T
    assert r[0] / r[-1] < 1e-4
    assert g[0] / g[-1] > 0.5  # nearly flat


def test_init_model_is_the_model_training_started_from():
    """With a learning rate too small to move anything, the trained weights are the initial
    ones: init_model must rebuild exactly those."""
    from grucli.config import RunConfig
    from grucli.inspect.analysis import init_model
    from grucli.tasks import build_task
    from grucli.train.loop import train_run

    cfg = RunConfig(task={"name": "adding", "seq_len": 5, "n_train": 16, "n_val": 8, "n_test": 8},
                    model={"cell": "lstm", "hidden_size": 3},
                    train={"optimizer": "sgd", "lr": 1e-30, "epochs": 1, "batch_size": 16, "threads": 1}, seed=7)
    result = train_run(cfg)
    init = init_model(cfg, build_task(cfg.task)).state_dict()
    assert all(torch.allclose(init[k], v, rtol=0, atol=1e-12) for k, v in result.state_dict.items())


# --------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained experiment: GRU and LSTM, 2 layers, bidirectional, counting (packed
    variable-length token sequences)."""
    tmp = tmp_path_factory.mktemp("inspect")
    exp = {"name": "tiny_inspect",
           "task": {"name": "counting", "max_n_train": 3, "max_n_test": 5, "n_train": 64, "n_val": 16, "n_test": 24},
           "model": {"cell": "gru", "hidden_size": 4, "num_layers": 2, "bidirectional": True},
           "train": {"epochs": 1, "batch_size": 32, "threads": 1},
           "grid": {"model.cell": ["gru", "lstm"]}}
    import yaml

    (tmp / "exp.yaml").write_text(yaml.safe_dump(exp))
    result = runner.invoke(app, ["train", str(tmp / "exp.yaml"), "--results", str(tmp / "results")])
    assert result.exit_code == 0, result.output
    exp_dir = tmp / "results" / "tiny_inspect"
    runs = sorted(p for p in exp_dir.iterdir() if (p / "summary.json").is_file())
    assert len(runs) == 2
    return exp_dir, runs


def test_inspect_writes_figures_and_summary(trained):
    _, runs = trained
    run = runs[0]
    result = runner.invoke(app, ["inspect", str(run), "--samples", "1", "--layer", "0"])
    assert result.exit_code == 0, result.output
    out = run / "inspect"
    for stem in ("gates_0", "saturation", "gradient_flow"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    summary = json.loads((out / "inspect.json").read_text())
    assert summary == read_inspect_summary(run)
    assert summary["layer"] == 0 and summary["directions"] == ["forward", "backward"]
    gates = {"gru": {"z", "r"}, "lstm": {"f", "i", "o"}}[summary["cell"]]
    assert set(summary["gates"]) == gates
    for g in summary["gates"].values():
        assert 0 < g["mean"] < 1 and 0 <= g["share_lt_0.1"] <= 1 and 0 <= g["share_gt_0.9"] <= 1
    grad = summary["gradient"]
    assert grad["ratio"] > 0 and grad["ratio_init"] > 0
    assert set(grad["by_direction"]) == {"forward", "backward"}
    assert ("cell_state" in grad) == (summary["cell"] == "lstm")  # LSTM: ‖∂L/∂c_t‖ too
    longest = int(load_run(run).data.test.lengths.max())  # packed: curves run over valid steps only
    assert len(grad["curves"]["forward"]["trained"]) == longest
    assert summary["figures"]["gates"] == ["gates_0.png"]


def test_inspect_compare_and_out(trained, tmp_path):
    exp_dir, _ = trained
    result = runner.invoke(app, ["inspect", str(exp_dir), "--compare", "--samples", "1", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert set(info["runs"]) == {"gru", "lstm"} and info["same_task"]
    assert (tmp_path / "c" / "compare_gates_0.png").is_file()
    assert (tmp_path / "c" / "compare_gradient_flow.svg").is_file()


def test_run_without_weights_gives_one_line(trained, tmp_path):
    _, runs = trained
    bare = tmp_path / runs[0].name
    shutil.copytree(runs[0], bare, ignore=shutil.ignore_patterns("model.pt", "inspect"))
    for args in (["inspect", str(bare)], ["inspect", str(tmp_path / "nothing")], ["inspect", str(tmp_path)],
                 ["inspect", str(runs[0]), "--layer", "5"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "no weights" in runner.invoke(app, ["inspect", str(bare)]).output
    assert not (bare / "inspect").exists()
    assert read_inspect_summary(bare) is None


def test_compare_where_picks_the_runs_to_compare(trained, tmp_path):
    """--where narrows the runs --compare picks from (here: one cell), and a filter nothing
    matches is one line, exit 2, nothing written."""
    exp_dir, _ = trained
    only = runner.invoke(app, ["inspect", str(exp_dir), "--compare", "--samples", "1", "--where", "model.cell=lstm",
                               "--out", str(tmp_path / "w")])
    assert only.exit_code == 0, only.output
    assert set(json.loads((tmp_path / "w" / "compare.json").read_text())["runs"]) == {"lstm"}
    none = runner.invoke(app, ["inspect", str(exp_dir), "--compare", "--where", "task.max_n_train=99",
                               "--out", str(tmp_path / "x")])
    assert none.exit_code == 2 and "matching task.max_n_train=99" in none.output and not (tmp_path / "x").exists()


def test_compare_where_with_an_unknown_key_says_so(trained, tmp_path):
    exp_dir, _ = trained
    out = runner.invoke(app, ["inspect", str(exp_dir), "--compare", "--where", "task.seqlen=60"])
    assert out.exit_code == 2 and "--where task.seqlen: no run" in out.output and "has this config key" in out.output


def test_lstm_cell_state_gradient_follows_the_backprop_recursion():
    """‖∂L/∂c_t‖ is the cell state's full gradient: δc_t = δh_t·o_t·(1 − tanh²c_t) + δc_{t+1}·f_{t+1}
    (the path through h_t = o_t·tanh(c_t) and the carousel to the next step)."""
    torch.manual_seed(2)
    model = SequenceModel("lstm", input_size=2, output_size=1, hidden_size=4, head="last", impl="torch").eval()
    x, y = torch.randn(3, 5, 2), torch.randn(3, 1)
    with torch.enable_grad():
        traces = run_stack(model, x)
        tr = traces[0][0]
        loss = Regression().loss(head_output(model, traces), y) * len(x)
        dh = torch.autograd.grad(loss, tr.steps, retain_graph=True)
        dc = torch.autograd.grad(loss, tr.memory_steps, retain_graph=True)
    f, o, T = tr.gates["f"].detach(), tr.gates["o"].detach(), x.shape[1]
    for t in range(T):
        expect = dh[t] * o[:, t] * (1 - torch.tanh(tr.memory_steps[t].detach()) ** 2)
        if t + 1 < T:
            expect = expect + dc[t + 1] * f[:, t + 1]
        torch.testing.assert_close(dc[t], expect, rtol=1e-5, atol=1e-7)
    (norms,) = grad_norms(model, x, y, None, Regression().loss, layer=0, wrt="c")
    torch.testing.assert_close(norms, torch.stack(dc, 1).norm(dim=-1))
    with pytest.raises(ValueError):
        grad_norms(SequenceModel("gru", input_size=2, output_size=1, hidden_size=4, head="last"), x, y, None,
                   Regression().loss, layer=0, wrt="c")
