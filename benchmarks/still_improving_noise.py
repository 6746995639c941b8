"""How often "still improving" (grucli.budget.still_improving) lets noise decide: the rule
that makes a verdict inconclusive when a run's validation curve was still getting better
as its budget ended, simulated on curves whose truth is known.

    python benchmarks/still_improving_noise.py            # 4,000 curves per cell of the table

False flags: flat plateaus with independent noise (sd 3% of the level, e.g. a classifier at
chance whose validation accuracy jitters by a few points). Per run and per comparison of
2 cells x 3 seeds (the verdict is inconclusive when any of its 6 runs is flagged).
Detection, curves still falling: 0.5 + 0.5 exp(-3 t / n) with noise sd 0.01 (at the last
fifth the curve still drops by about 2 noise sds); 8 - 3 (1 - exp(-2 t / n)) with independent
noise sd 0.15 (a forecast's RMSE, e.g. statsmodels' elec_equip series), and the same with
jagged, anti-correlated noise (e_t - 0.8 e_(t-1)).
Rule 1 (the 1% gain alone), rule 2 (and more than the curve's epoch-to-epoch noise), rule 3
(budget.RULE: rule 2, or from 5 tail epochs on the tail's mean 2 standard errors better
than the window before it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's grucli

from grucli import budget  # noqa: E402


RULES = {"rule 1": {"NOISE": 0.0, "WINDOW": 10**9}, "rule 2": {"NOISE": budget.NOISE, "WINDOW": 10**9},
         f"rule {budget.RULE}": {"NOISE": budget.NOISE, "WINDOW": budget.WINDOW}}


def rate(curves, goal: str, rule: dict) -> float:
    saved = {k: getattr(budget, k) for k in rule}
    for k, v in rule.items():
        setattr(budget, k, v)
    try:
        return float(np.mean([budget.still_improving(list(c), goal, "epochs") is True for c in curves]))
    finally:
        for k, v in saved.items():
            setattr(budget, k, v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curves", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'epochs':>6} | {'rule':<6} | {'plateau: per run':>16} | {'per 6-run comparison':>20} | "
          f"{'falling to a floor':>18} | {'falling, noisy':>14} | {'falling, jagged':>15}")
    for n in (8, 20, 40, 60, 150):
        t = np.arange(n)
        plateau = 0.52 * (1 + 0.03 * rng.standard_normal((args.curves, n)))
        floor = 0.5 + 0.5 * np.exp(-3 * t / n) + 0.01 * rng.standard_normal((args.curves, n))
        level = 8 - 3 * (1 - np.exp(-2 * t / n))
        noisy = level + 0.15 * rng.standard_normal((args.curves, n))
        e = rng.standard_normal((args.curves, n + 1))
        jagged = level + 0.15 * (e[:, 1:] - 0.8 * e[:, :-1])
        for name, rule in RULES.items():
            p = rate(plateau, "max", rule)
            print(f"{n:>6} | {name:<6} | {p:>16.3f} | {1 - (1 - p) ** 6:>20.3f} | {rate(floor, 'min', rule):>18.3f} | "
                  f"{rate(noisy, 'min', rule):>14.3f} | {rate(jagged, 'min', rule):>15.3f}")


if __name__ == "__main__":
    main()
