"""Wall time of the same small grid with 1 worker vs N workers, measured side by side.

    python benchmarks/parallel_grid.py            # 1 vs 2 workers, 24 runs
    python benchmarks/parallel_grid.py --jobs 2 --runs 12   # a smaller grid: start-up weighs more

Each configuration trains into its own temporary results folder (nothing is reused), with
one torch thread per worker, as `grucli compare` does. Target on 2 cores: ratio >= 1.7.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from grucli import execute
from grucli.config import load_experiment
from grucli.grid import expand

GRID = """
name: bench_grid
task: {{name: adding, seq_len: 50, n_train: 10000, n_val: 200, n_test: 200}}
model: {{cell: gru, hidden_size: 32}}
train: {{epochs: 3, batch_size: 32}}
grid:
  model.cell: [rnn, gru, lstm]
seeds: {seeds}
"""


def wall_time(jobs: int, runs_per_cell: int, root: Path) -> float:
    path = root / f"grid{jobs}.yaml"
    path.write_text(GRID.format(seeds=runs_per_cell))
    exp = load_experiment(path)
    runs = expand(exp)
    t0 = time.perf_counter()
    outcome = execute.run_grid(runs, root / f"results{jobs}" / exp.name, exp.name, executor="local",
                               jobs=jobs, threads=1)
    elapsed = time.perf_counter() - t0
    assert outcome.finished.get("ok") == len(runs), outcome
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="workers of the parallel configuration")
    ap.add_argument("--runs", type=int, default=24, help="runs in the grid (a multiple of 3 cells)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = max(1, args.runs // 3)
        serial = wall_time(1, seeds, root)
        parallel = wall_time(args.jobs, seeds, root)
    print(f"grid: {3 * seeds} runs (rnn/gru/lstm x {seeds} seeds, adding T=50, H=32, 10k sequences x 3 epochs)")
    print(f"1 worker : {serial:7.1f} s")
    print(f"{args.jobs} workers: {parallel:7.1f} s")
    print(f"speed-up : {serial / parallel:7.2f}x  (target on 2 cores: >= 1.7x)")


if __name__ == "__main__":
    main()
