"""How often "still improving" (grucli.budget.still_improving) lets noise decide: the rule
that makes a verdict inconclusive when a run's validation curve was still getting better
as its budget ended, simulated on curves whose truth is known.

    python benchmarks/still_improving_noise.py            # 4,000 curves per cell of the table

False flags: flat plateaus with independent noise (sd 3% of the level, e.g. a classifier at
chance whose validation accuracy jitters by a few points). Per run and per comparison of
2 cells x 3 seeds (the verdict is inconclusive when any of its 6 runs is flagged).
Detection: curves still falling, 0.5 + 0.5 exp(-3 t / n) with noise sd 0.01 (at the last
fifth the curve still drops by about 2 noise sds) and exp(-3 t / n) with 0.5% noise.
Rule 1 (grucli before this benchmark): the last fifth's best beats the best before it by
1%. Rule 2 (budget.RULE): ... and by more than the curve's own epoch-to-epoch noise there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's grucli

from grucli import budget  # noqa: E402


def rate(curves, goal: str, noise: float) -> float:
    saved, budget.NOISE = budget.NOISE, noise
    try:
        return float(np.mean([budget.still_improving(list(c), goal, "epochs") is True for c in curves]))
    finally:
        budget.NOISE = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curves", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rules = {"rule 1 (1% only)": 0.0, f"rule {budget.RULE} (1% and > noise)": budget.NOISE}
    print(f"{'epochs':>6} | {'rule':<24} | {'plateau: per run':>16} | {'per 6-run comparison':>20} | "
          f"{'falling to a floor':>18} | {'falling, 0.5% noise':>19}")
    for n in (8, 20, 60, 150):
        t = np.arange(n)
        plateau = 0.52 * (1 + 0.03 * rng.standard_normal((args.curves, n)))
        floor = 0.5 + 0.5 * np.exp(-3 * t / n) + 0.01 * rng.standard_normal((args.curves, n))
        decay = np.exp(-3 * t / n) * (1 + 0.005 * rng.standard_normal((args.curves, n)))
        for name, noise in rules.items():
            p = rate(plateau, "max", noise)
            print(f"{n:>6} | {name:<24} | {p:>16.3f} | {1 - (1 - p) ** 6:>20.3f} | "
                  f"{rate(floor, 'min', noise):>18.3f} | {rate(decay, 'min', noise):>19.3f}")


if __name__ == "__main__":
    main()
