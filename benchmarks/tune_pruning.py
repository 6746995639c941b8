"""The same study with pruning and without, side by side in one invocation: trials per
minute and the best validation value each reached.

    python benchmarks/tune_pruning.py                 # 24 trials of a GRU on adding T=30: guarded ASHA vs none
    python benchmarks/tune_pruning.py --rules asha,asha:prune,hyperband   # several rules against one unpruned study
    python benchmarks/tune_pruning.py --trials 12 --rules median

A rule is search.pruner[:search.plateau] (plateau: wait, the default, holds the pruner off
while every trial still sits on the task's baseline; prune is the rule without that guard).

Both studies are seeded alike (random search: trial k gets the same configuration in
both), so the pruned study sees the same configurations and only stops the ones whose
validation MSE lags after the warm-up epochs; the ratio is work saved, not luck. Each
trains into its own temporary folder with one worker (CPU-time stable on a shared
machine), each trial alone (pruning measured by itself, not mixed with packing). Target:
>= 2x trials per minute, best value no worse. The epochs trained are printed too: the same
ratio without the machine's load in it. Final runs are skipped (final_seeds is set,
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
  plateau: {plateau}
  warmup_epochs: 2
  final_seeds: [1]
  space:
    train.lr: {{log_uniform: [1.0e-4, 3.0e-2]}}
    train.batch_size: {{choice: [32, 64, 128]}}
"""


def study(root: Path, trials: int, epochs: int, rule: str) -> tuple[float, pd.DataFrame]:
    pruner, _, plateau = rule.partition(":")
    name = rule.replace(":", "_")
    path = root / f"{name}.yaml"
    path.write_text(STUDY.format(trials=trials, epochs=epochs, pruner=pruner, plateau=plateau or "wait"))
    # each trial alone (--pack 1): a packed trial's duration_s is its pack's, which would count
    # a pack's time once per trial in it
    tuning.run(path, results=root / name, executor="inline", threads=1, pack=1)
    trials_csv = pd.read_csv(root / name / "bench_tune" / "trials.csv")
    durations = trials_csv["duration_s"].sum()  # the trials alone, without the final run
    return durations, trials_csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rules", default="asha", help="pruner[:plateau], comma-separated (asha = asha:wait)")
    args = ap.parse_args()
    rules = args.rules.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain_s, plain = study(root, args.trials, args.epochs, "none")
        pruned = {rule: study(root, args.trials, args.epochs, rule) for rule in rules}
    rate = lambda n, s: 60 * n / s  # noqa: E731
    best_plain, epochs_plain = plain["value"].min(), plain["epochs"].sum()
    print(f"{args.trials} trials each (GRU, adding T=30, up to {args.epochs} epochs, random search):")
    print(f"  {'no pruning':<16} {rate(len(plain), plain_s):6.1f} trials/min, {plain_s:6.1f} s of trials, "
          f"{int(epochs_plain):4d} epochs, best validation mse {best_plain:.4g}")
    for rule, (pruned_s, trials) in pruned.items():
        best = trials.loc[trials["state"] == "ok", "value"].min()
        print(f"  {rule:<16} {rate(len(trials), pruned_s):6.1f} trials/min, {pruned_s:6.1f} s of trials, "
              f"{int(trials['epochs'].sum()):4d} epochs, best validation mse {best:.4g} "
              f"({int((trials['state'] == 'pruned').sum())} pruned)")
        print(f"    {rule}/unpruned trials per minute: {plain_s / pruned_s:.2f}x ({epochs_plain / trials['epochs'].sum():.2f}x "
              f"in epochs); best value {'no worse' if best <= best_plain * 1.0001 else 'worse'} "
              f"({best:.4g} vs {best_plain:.4g})")


if __name__ == "__main__":
    main()
