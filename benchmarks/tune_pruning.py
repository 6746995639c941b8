"""The same study with pruning and without, side by side in one invocation: trials per
minute and the best validation value each reached.

    python benchmarks/tune_pruning.py                 # 24 trials of a GRU on adding T=30, ASHA vs none
    python benchmarks/tune_pruning.py --trials 12 --pruner median

Both studies are seeded alike (random search: trial k gets the same configuration in
both), so the pruned study sees the same configurations and only stops the ones whose
validation MSE lags after the warm-up epochs; the ratio is work saved, not luck. Each
trains into its own temporary folder with one worker (CPU-time stable on a shared
machine), each trial alone (pruning measured by itself, not mixed with packing). Target:
>= 2x trials per minute, best value no worse. Final runs are skipped (final_seeds is set,
but the benchmark times the trials only).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from grucli.tune import run as tuning

STUDY = """
name: bench_tune
task: {{name: adding, seq_len: 30, n_train: 2000, n_val: 500, n_test: 500}}
model: {{cell: gru, param_budget: 3000}}
train: {{epochs: {epochs}, batch_size: 64}}
search:
  trials: {trials}
  sampler: random
  pruner: {pruner}
  warmup_epochs: 2
  final_seeds: [1]
  space:
    train.lr: {{log_uniform: [1.0e-4, 3.0e-2]}}
    train.batch_size: {{choice: [32, 64, 128]}}
"""


def study(root: Path, trials: int, epochs: int, pruner: str) -> tuple[float, pd.DataFrame]:
    path = root / f"{pruner}.yaml"
    path.write_text(STUDY.format(trials=trials, epochs=epochs, pruner=pruner))
    # each trial alone (--pack 1): a packed trial's duration_s is its pack's, which would count
    # a pack's time once per trial in it
    tuning.run(path, results=root / pruner, executor="inline", threads=1, pack=1)
    trials_csv = pd.read_csv(root / pruner / "bench_tune" / "trials.csv")
    durations = trials_csv["duration_s"].sum()  # the trials alone, without the final run
    return durations, trials_csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--pruner", default="asha", choices=["asha", "median"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain_s, plain = study(root, args.trials, args.epochs, "none")
        pruned_s, pruned = study(root, args.trials, args.epochs, args.pruner)
    rate = lambda n, s: 60 * n / s  # noqa: E731
    best_plain, best_pruned = plain["value"].min(), pruned.loc[pruned["state"] == "ok", "value"].min()
    print(f"{args.trials} trials each (GRU, adding T=30, up to {args.epochs} epochs, random search):")
    print(f"  no pruning:   {rate(len(plain), plain_s):6.1f} trials/min, {plain_s:6.1f} s of trials, "
          f"best validation mse {best_plain:.4g}")
    print(f"  {args.pruner:<12}  {rate(len(pruned), pruned_s):6.1f} trials/min, {pruned_s:6.1f} s of trials, "
          f"best validation mse {best_pruned:.4g} ({int((pruned['state'] == 'pruned').sum())} pruned)")
    print(f"pruned/unpruned trials per minute: {plain_s / pruned_s:.2f}x; best value "
          f"{'no worse' if best_pruned <= best_plain * 1.0001 else 'worse'} "
          f"({best_pruned:.4g} vs {best_plain:.4g})")


if __name__ == "__main__":
    main()
