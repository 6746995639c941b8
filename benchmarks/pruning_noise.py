"""How often does a pruning rule let noise decide? A function-level simulation: no training,
Optuna's own pruners (as `grucli tune` builds them, grucli/tune/pruning.py) fed synthetic
validation curves, trial after trial (one worker, --pack 1).

    python benchmarks/pruning_noise.py                # 24 trials x 30 epochs, warm-up 3, 300 arms per kind (about a minute)
    python benchmarks/pruning_noise.py --studies 50   # quicker

Three kinds of arm, each trial a configuration drawn at random (the curves are MSE-like,
lower is better, baseline b = 1/6 as on the adding problem; noise 0.4% of b per epoch and
per configuration, as the adding plateau's 0.167-0.169):

- plateau: every configuration sits on the baseline for all 30 epochs. Whatever a rule
  prunes, it prunes by noise; the arm's "best configuration" is noise under every rule.
- late escape: a quarter of the configurations (--escape-share) leave the plateau at a random epoch in
  10..20 (the tuned LSTM on adding T=60 left at about 15) and then fall to ~1% of b; the
  rest stay on it. A rule that prunes the escapers before they escape leaves the arm's best
  trial on the plateau: the verdict then rests on which trials noise kept.
- early separation: every configuration leaves the baseline in the first 2 epochs and
  settles at its own level (uniform on a log scale over two decades); the curves are in
  their final order early. Pruning should save most of the epochs and still find the
  configuration no pruning finds.

Printed per rule: trials pruned, epochs trained (and the speed-up over no pruning, in
epochs: what the wall time follows when a trial's cost is its epochs), how often the arm's
best completed trial is still on the plateau although a configuration that escapes was
tried (late escape), and how often the rule picks the configuration no pruning picks
(early separation).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import optuna

from grucli.tune import pruning

BASELINE = 1 / 6
NOISE = 0.004  # relative, per epoch and per configuration
RULES = {  # label -> (search.pruner, search.plateau)
    "none": ("none", "prune"),
    "asha (today)": ("asha", "prune"),
    "asha + plateau guard": ("asha", "wait"),
    "hyperband": ("hyperband", "prune"),
    "hyperband + guard": ("hyperband", "wait"),
}


def curve(kind: str, rng: np.random.Generator, epochs: int, share: float) -> tuple[np.ndarray, bool]:
    """One configuration's validation curve (epochs 1..E) and whether it ever escapes."""
    e = np.arange(1, epochs + 1)
    level = BASELINE * (1 + NOISE * rng.standard_normal())  # the configuration's own plateau
    noise = BASELINE * NOISE * rng.standard_normal(epochs)
    if kind == "plateau":
        return level + noise, False
    if kind == "late escape":
        if rng.random() >= share:
            return level + noise, False
        at = rng.integers(10, 21)
        fall = np.where(e < at, 1.0, 0.01 + 0.99 * np.exp(-(e - at) / 1.5))
        return level * fall + noise * fall, True
    floor = 10 ** rng.uniform(-3, -1)  # early separation: its final level, as a fraction of b
    fall = floor + (1 - floor) * np.exp(-e / 0.7)
    return level * fall * (1 + NOISE * rng.standard_normal(epochs)), True


def study(kind: str, rule: tuple[str, str], trials: int, epochs: int, warmup: int, seed: int,
          share: float = 0.25) -> dict:
    """One arm's study under one rule: the same configurations (seed) for every rule."""
    rng = np.random.default_rng(seed)
    curves = [curve(kind, rng, epochs, share) for _ in range(trials)]
    s = optuna.create_study(study_name="model.cell=lstm", direction="minimize",
                            pruner=pruning.make(rule[0], warmup, epochs, rule[1], "min"))
    used, pruned, best = 0, 0, (math.inf, -1)
    for i, (values, _) in enumerate(curves):
        t = s.ask()
        t.set_user_attr(pruning.BASELINE, BASELINE)
        for epoch, v in enumerate(values, start=1):
            t.report(float(v), epoch)
            used += 1
            if t.should_prune():
                s.tell(t, state=optuna.trial.TrialState.PRUNED)
                pruned += 1
                break
        else:
            s.tell(t, float(values.min()))  # the value at the best epoch, as a run's summary
            best = min(best, (float(values.min()), i))
    escaped = [i for i, (_, e) in enumerate(curves) if e]
    on_plateau = best[1] < 0 or not bool(curves[best[1]][0].min() < BASELINE * 0.95)
    return {"used": used, "pruned": pruned, "best": best[1], "stuck": bool(escaped) and on_plateau,
            "tried_escaper": bool(escaped)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=300, help="simulated arms per kind and rule")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--escape-share", type=float, default=0.25, help="late escape: share of configurations that escape")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    print(f"{args.studies} simulated arms per kind, {args.trials} trials x {args.epochs} epochs, warm-up "
          f"{args.warmup}, noise {NOISE:.1%} of the baseline, {args.escape_share:.0%} of late-escape configurations "
          "escape")
    for kind in ("plateau", "late escape", "early separation"):
        print(f"\n{kind}:")
        print(f"  {'rule':<22} {'pruned':>7} {'epochs':>7} {'speed-up':>8}  {'noise decides':>14}")
        full = args.trials * args.epochs
        run = lambda rule, k: study(kind, rule, args.trials, args.epochs, args.warmup, k, args.escape_share)  # noqa: E731
        reference = [run(RULES["none"], k)["best"] for k in range(args.studies)]
        for label, rule in RULES.items():
            rs = [run(rule, k) for k in range(args.studies)]
            pruned = np.mean([r["pruned"] for r in rs]) / args.trials
            used = np.mean([r["used"] for r in rs])
            if kind == "plateau":  # every prune is a coin flip: report the share of trials pruned
                decides = f"{pruned:.0%} pruned"
            elif kind == "late escape":
                tried = [r for r in rs if r["tried_escaper"]]
                decides = f"{np.mean([r['stuck'] for r in tried]):.1%} stuck"
            else:
                same = np.mean([r["best"] == ref for r, ref in zip(rs, reference)])
                decides = f"{1 - same:.1%} other"
            print(f"  {label:<22} {pruned:>7.0%} {used / full:>7.0%} {full / used:>7.2f}x  {decides:>14}")
    print("\nnoise decides: plateau = share of trials pruned (all by noise); late escape = arms whose best "
          "completed trial never left the baseline though an escaping configuration was tried; early "
          "separation = arms whose chosen configuration differs from the one no pruning chooses")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
