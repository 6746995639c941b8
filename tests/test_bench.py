"""grucli bench: the pure parts (FLOPs, ratios, config) and a tiny end-to-end run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from grucli import bench
from grucli.cli import app
from grucli.errors import ConfigError, GrucliError
from grucli.objectives import Regression


def test_gate_flops_closed_form():
    size = bench.Size(hidden=4, seq_len=3, batch=2, layers=2)
    # layer 0: 2*G*H*(I+H)*B*T, layer 1 reads H (unidirectional)
    assert bench.gate_flops("gru", size, 5) == 2 * 3 * 4 * (5 + 4) * 2 * 3 + 2 * 3 * 4 * (4 + 4) * 2 * 3
    assert bench.gate_flops("gru", size, 5) / bench.gate_flops("lstm", size, 5) == pytest.approx(0.75)


def test_ratios():
    rows = [{"cell": c, "impl": i, "hidden": 8, "seq_len": 5, "batch": 2, "layers": 1, "train_step_ms": t,
             "inference_ms": t / 2} for c, i, t in [("gru", "torch", 4.0), ("gru", "fused", 1.0),
                                                    ("lstm", "torch", 2.0), ("lstm", "fused", 2.5)]]
    bench.add_ratios(rows)
    by = {(r["cell"], r["impl"]): r for r in rows}
    assert by["gru", "fused"]["train_vs_torch"] == 0.25
    assert by["gru", "torch"]["train_vs_lstm"] == 2.0
    assert by["gru", "fused"]["fastest"] and by["lstm", "torch"]["fastest"]
    assert by["gru", "fused"]["fastest_vs_fastest_lstm"] == 0.5


def test_bench_config_rejects_unknown_keys_and_names(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("cells: [gru]\nrepeat: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'repeats'"):
        bench.load_bench_config(path)
    with pytest.raises(ConfigError, match="unknown cell 'gur'"):
        bench.load_bench_config(None, cells=["gur"])
    path.write_text("sizes:\n  - {hiden: 4, seq_len: 3, batch: 2}\n")  # typed by grucli.config: the key path too
    with pytest.raises(ConfigError, match=r"b.yaml: unknown key 'sizes.0.hiden' \(did you mean 'sizes.0.hidden'\?\)"):
        bench.load_bench_config(path)
    path.write_text("- gru\n")
    with pytest.raises(ConfigError, match="b.yaml: expected a mapping of keys"):
        bench.load_bench_config(path)


def test_a_bad_command_line_value_is_said_at_its_option_not_at_the_bench_file(tmp_path):
    """`grucli bench FILE --simd avx9` was blamed on FILE; each line names where its value came from."""
    path = tmp_path / "b.yaml"
    path.write_text("cells: [gru]\nrepeats: 3\n")
    result = CliRunner().invoke(app, ["bench", str(path), "--simd", "avx9", "-H", "0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and not any(str(path) in line for line in lines), lines
    assert any(line.startswith("error: --simd: simd.0:") and "'avx9'" in line for line in lines), lines
    assert any(line.startswith("error: --hidden/--seq-len/--batch/--layers: sizes.0.hidden:") for line in lines), lines
    assert not (tmp_path / "o").exists()


def test_shipped_bench_yaml_loads():
    cfg = bench.load_bench_config("benchmarks/bench.yaml")
    assert {s.hidden for s in cfg.sizes} == {16, 128}


def test_grucli_bench_runs_in_seconds_and_writes_csv(tmp_path):
    out = tmp_path / "bench"
    r = CliRunner().invoke(app, ["bench", "--cells", "gru,lstm", "--impls", "torch,reference", "-H", "4",
                                 "-T", "3", "-B", "2", "--repeats", "2", "--warmup", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out / "bench.csv")
    assert len(df) == 4 and {"train_step_ms", "inference_ms", "peak_share", "train_vs_torch"} <= set(df.columns)
    assert (out / "bench.png").is_file()
    assert "gru" in r.output


def test_train_flops_count_what_a_step_computes():
    size = bench.Size(hidden=4, seq_len=3, batch=2, layers=2)
    # gru, I = 5: layer 0 input 3*4*5 = 60 and recurrent 3*4*4 = 48 multiply-adds per step;
    # forward + weight gradients (2 x 108) + recurrent input gradient (48), no gradient for the data
    layer0 = 2 * 2 * 3 * (2 * 108 + 48)
    layer1 = 2 * 2 * 3 * (2 * 96 + 48 + 48)  # layer 1's input (layer 0's output) needs its gradient
    assert bench.train_flops("gru", size, 5) == layer0 + layer1
    # at a wide input the step is far below 3x the forward (the old count)
    wide = bench.Size(hidden=4, seq_len=3, batch=2, layers=1)
    assert bench.train_flops("lstm", wide, 400) < 2.1 * bench.gate_flops("lstm", wide, 400)


def test_bench_checks_each_implementation_against_torch_before_timing(monkeypatch):
    cfg = bench.load_bench_config(None, cells=["gru"], impls=["torch", "reference"])
    size = bench.Size(hidden=6, seq_len=5, batch=3, layers=2)
    good = bench.Variant("gru", "reference", size, cfg)
    against, diff = bench.check_variant(good, cfg)
    assert against == "torch" and diff < 1e-6
    assert bench.check_variant(bench.Variant("gru", "torch", size, cfg), cfg) == ("", 0.0)
    wrong = bench.Variant("gru", "reference", size, cfg)
    forward = wrong.model.forward
    monkeypatch.setattr(wrong.model, "forward", lambda x, lengths=None: forward(x, lengths) * 1.001)
    with pytest.raises(GrucliError, match=r"reference gru at H=6 T=5 B=3: output or gradients differ from torch"):
        bench.check_variant(wrong, cfg)


def test_ratios_with_two_kernel_builds():
    """Each build's fused row is over the one torch row; 'fastest' is per build."""
    rows = [{"cell": c, "impl": i, "simd": s, "hidden": 8, "seq_len": 5, "batch": 2, "layers": 1, "train_step_ms": t,
             "inference_ms": t} for c, i, s, t in [("gru", "torch", "", 4.0), ("gru", "fused", "avx2", 2.0),
                                                   ("gru", "fused", "avx512", 1.0), ("lstm", "torch", "", 3.0),
                                                   ("lstm", "fused", "avx2", 5.0), ("lstm", "fused", "avx512", 2.0)]]
    bench.add_ratios(rows)
    by = {(r["cell"], r["simd"]): r for r in rows}
    assert by["gru", "avx2"]["train_vs_torch"] == 0.5 and by["gru", "avx512"]["train_vs_torch"] == 0.25
    assert by["gru", "avx2"]["train_vs_lstm"] == 0.4  # over the same build's LSTM
    assert by["gru", "avx2"]["fastest"] and by["gru", "avx512"]["fastest"] and by["lstm", "avx512"]["fastest"]
    assert not by["lstm", "avx2"]["fastest"]  # torch's LSTM beats the avx2 build
    assert by["gru", "avx2"]["fastest_vs_fastest_lstm"] == 2.0 / 3.0  # fastest LSTM beside avx2: torch's
    with pytest.raises(ConfigError, match="simd"):
        bench.load_bench_config(None, simd=["avx3"])


def test_the_bare_pytorch_anchor_runs_the_demo_grid_the_plain_way():
    """benchmarks/bare_grid.py (issue 28's anchor) imports grucli's grid and model sizing:
    a rename there broke it silently once (train.model_size moved to model.py)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "benchmarks/bare_grid.py", "--set", "task.n_train=40", "--set", "task.n_val=20",
                           "--set", "task.n_test=20", "--set", "seeds=1", "--set", "train.epochs=1", "--anchor-only",
                           "--jobs", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "anchor: 18 runs in" in done.stdout


def test_a_stacked_variant_steps_on_the_loss_grucli_trains_a_regression_with(monkeypatch):
    """The bench times the step grucli trains with: the squared error in the head's node
    (Stacked.head_loss), one Adam step; its loss is the model's mean squared error and its
    update the one torch's Adam makes from that loss's gradients."""
    cfg = bench.load_bench_config(None)
    v = bench.Variant("gru", "fused", bench.Size(hidden=8, seq_len=5, batch=4), cfg)
    if v.stack is None:
        pytest.skip("this machine's fused kernels do not train stacked")
    names, params = zip(*v.model.named_parameters())
    grads = torch.autograd.grad(torch.nn.functional.mse_loss(v.model(v.x), v.y), params)
    twin = [p.detach().clone().requires_grad_() for p in params]
    for p, g in zip(twin, grads):
        p.grad = g
    torch.optim.Adam(twin, lr=1e-3).step()
    kinds = []
    head_loss = v.stack.head_loss
    monkeypatch.setattr(v.stack, "head_loss", lambda x, y, kind: kinds.append(kind) or head_loss(x, y, kind))
    v.train_step()
    assert kinds == [Regression.head_loss]  # not the output layer, then torch's mse_loss: two more nodes
    v.stack.write(0, v.model)
    for name, ours, theirs in zip(names, v.model.parameters(), twin):
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=0), name
