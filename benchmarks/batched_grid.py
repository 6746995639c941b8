"""Packed vs unpacked, side by side in one invocation, with the same --jobs: runs (or trials)
per minute, and whether every run's numbers came out identical.

    python benchmarks/batched_grid.py                       # the demo grid (54 runs), --jobs 2
    python benchmarks/batched_grid.py --set seeds=8         # the demo with 8 seeds per setting
    python benchmarks/batched_grid.py --tune                # a 24-trial lr search, adding T=30, H=32

Each variant trains into its own temporary results folder with `grucli`'s own runner
(experiment.run / tune.run): `--pack 1` (every run alone, as before packing) then `--pack`
(auto by default). Wall time covers the whole grid, data preparation and writing included.
`identical` compares every run's status, stopping reason, final metrics and history
(times aside) between the two folders, by run id. Targets (issue 15): grid >= 3x, tune >= 4x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from grucli import experiment
from grucli.train import packing
from grucli import store
from grucli.tune import run as tuning

ROOT = Path(__file__).resolve().parent.parent
SEARCH = """
name: bench_pack_tune
task: {{name: adding, seq_len: 30, n_train: 2000, n_val: 500, n_test: 500}}
model: {{cell: gru, hidden_size: 32}}
train: {{epochs: {epochs}, batch_size: 50}}
search:
  trials: {trials}
  sampler: random
  pruner: none
  final_seeds: [1]
  space:
    train.lr: {{log_uniform: [1.0e-4, 3.0e-2]}}
"""


def numbers(exp_dir: Path) -> dict[str, tuple]:
    """Per run id: what must not change with packing (times excluded)."""
    out = {}
    for run_dir in sorted(p for p in exp_dir.iterdir() if (p / "summary.json").is_file()):
        s = store.read_summary(run_dir)
        hist = pd.read_csv(run_dir / "history.csv")
        hist = hist[[c for c in hist.columns if not c.endswith("time_s")]]
        out[s["run_id"]] = (s["status"], s["stopped_by"], s["val"], s["test"], s["train"], hist.to_csv(index=False))
    return out


def grid(root: Path, path: Path, overrides: list[str], pack: int | None, jobs: int) -> tuple[float, int, Path]:
    t0 = time.perf_counter()
    er = experiment.run(path, overrides, results=root, executor="local" if jobs > 1 else "inline", jobs=jobs,
                        threads=1, pack=pack)
    return time.perf_counter() - t0, len(er.runs), er.exp_dir


def tune(root: Path, trials: int, epochs: int, pack: int | None, jobs: int) -> tuple[float, int, Path]:
    path = root / "search.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(SEARCH.format(trials=trials, epochs=epochs))
    t0 = time.perf_counter()
    tr = tuning.run(path, results=root, executor="local" if jobs > 1 else "inline", jobs=jobs, threads=1, pack=pack)
    return time.perf_counter() - t0, trials, tr.exp_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="?", default=str(ROOT / "experiments" / "long_dependency.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override a key (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pack", default="auto", help="pack size of the packed variant (default auto)")
    ap.add_argument("--tune", action="store_true", help="time a learning-rate search instead of a grid")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=5, help="epochs per trial (--tune)")
    args = ap.parse_args()
    pack = packing.parse(args.pack)
    what = "trials" if args.tune else "runs"
    with tempfile.TemporaryDirectory() as tmp:
        timed = {}
        for name, k in (("unpacked", 1), ("packed", pack)):
            root = Path(tmp) / name
            if args.tune:
                timed[name] = tune(root, args.trials, args.epochs, k, args.jobs)
            else:
                timed[name] = grid(root, Path(args.experiment), args.overrides, k, args.jobs)
            seconds, n, _ = timed[name]
            print(f"{name:>9}: {n} {what} in {seconds:.1f} s = {60 * n / seconds:.1f} {what} per minute "
                  f"(--pack {k or 'auto'}, --jobs {args.jobs})", flush=True)
        (ta, n, a), (tb, _, b) = timed["unpacked"], timed["packed"]
        same = numbers(a) == numbers(b) and len(numbers(a)) > 0
        sizes = pd.Series([store.read_summary(d)["timing"].get("pack_size") for d in b.iterdir()
                           if (d / "summary.json").is_file()]).value_counts().sort_index()
        print("pack sizes in the packed folder: " + ", ".join(f"{int(k)} x{v}" for k, v in sizes.items()))
        print(f"packed/unpacked {what} per minute: {ta / tb:.2f}")
        print(f"identical: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
