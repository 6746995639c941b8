"""Write a results folder in the store's format without training: the report tests' fixture.

Values are chosen so the verdicts are known: on `adding` the LSTM's test MSE is clearly
lower than the GRU's and the RNN's, and it grows with seq_len for every cell.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pandas as pd
import yaml

PARAMS = {"rnn": 337, "gru": 977, "lstm": 1297}  # adding, hidden 16
LEVEL = {"lstm": 0.02, "gru": 0.05, "rnn": 0.15}
EPOCH_TIME = {"rnn": 0.5, "gru": 1.0, "lstm": 1.2}


def write_experiment(root: Path, name: str = "synth", cells=("rnn", "gru", "lstm"), seq_lens=(10, 20),
                     seeds: int = 3, hidden_sizes=(16,)) -> Path:
    exp_dir = Path(root) / name
    grid = {"model.cell": list(cells)}
    if len(seq_lens) > 1:
        grid["task.seq_len"] = list(seq_lens)
    if len(hidden_sizes) > 1:
        grid["model.hidden_size"] = list(hidden_sizes)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / "experiment.json").write_text(json.dumps({
        "schema": 1, "name": name, "description": "", "source": f"experiments/{name}.yaml",
        "base": {}, "spec": {"grid": grid, "zip": [], "exclude": [], "include": [], "seeds": seeds}}))
    n = 0
    for cell in cells:
        for T in seq_lens:
            for h in hidden_sizes:
                for seed in range(seeds):
                    n += 1
                    write_run(exp_dir, f"{zlib.crc32(name.encode()):08x}{n:04x}", cell, T, seed, h, name,
                              varied={k: v for k, v in (("model.cell", cell), ("task.seq_len", T),
                                                        ("model.hidden_size", h)) if k in grid})
    return exp_dir


def write_run(exp_dir: Path, run_id: str, cell: str, T: int, seed: int, hidden: int = 16, experiment: str = "synth",
              status: str = "ok", varied: dict | None = None) -> Path:
    cfg = {"task": {"name": "adding", "data_seed": 0, "n_train": 200, "n_val": 100, "n_test": 100, "seq_len": T},
           "model": {"cell": cell, "hidden_size": hidden, "num_layers": 1},
           "train": {"epochs": 3, "batch_size": 50, "device": "auto", "threads": 1}, "seed": seed}
    scale = 16 / hidden
    mse = LEVEL[cell] * (T / 10) * scale * (1 + 0.05 * seed)
    epoch_time = EPOCH_TIME[cell] * T / 10 * (1 + 0.02 * seed)
    history = pd.DataFrame({"epoch": [1, 2, 3], "step": [4, 8, 12], "train_loss": [0.3, 0.2, mse],
                            "val_mse": [0.3, 0.15, mse], "val_rmse": [0.55, 0.39, mse**0.5],
                            "epoch_time_s": [epoch_time] * 3, "train_time_s": [epoch_time * k for k in (1, 2, 3)],
                            "wall_time_s": [epoch_time * k + 0.1 for k in (1, 2, 3)]})
    params = PARAMS[cell] if hidden == 16 else PARAMS[cell] * (hidden / 16) ** 2
    summary = {
        "schema": 1, "run_id": run_id, "experiment": experiment, "status": status,
        "error": None if status == "ok" else "non-finite loss (nan) at step 3",
        "task": "adding", "cell": cell, "seed": seed, "varied": varied or {"model.cell": cell},
        "params": int(params), "hidden_size": hidden, "metric": "mse", "goal": "min", "target": 0.01,
        "baseline": {"mse": 1 / 6, "rmse": (1 / 6) ** 0.5},
        "train": {"mse": mse}, "val": {"mse": mse}, "test": {"mse": mse, "rmse": mse**0.5},
        "reached_target": mse < 0.01, "time_to_target_s": None, "epoch_to_target": None,
        "timing": {"epochs": 3, "steps": 12, "train_time_s": 3 * epoch_time, "epoch_time_s": epoch_time,
                   "first_epoch_time_s": epoch_time, "epoch_time_steady": True, "pack_id": run_id,
                   "throughput_seq_s": 200 / epoch_time, "latency_batch_ms": 2 * epoch_time,
                   "latency_seq_ms": 2 * epoch_time / 50, "peak_memory_mb": 400.0, "total_time_s": 3 * epoch_time + 0.2},
        "env": {"grucli": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7", "platform": "Linux", "cpu": "Test CPU",
                "host": "testhost", "git_commit": "abcdef1234567890", "device": "cpu", "threads": 1},
        "finished_at": f"2026-01-01T00:00:{seed:02d}+00:00", "config": cfg,
    }
    run_dir = exp_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    history.to_csv(run_dir / "history.csv", index=False)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir
