"""What a run's training budget was, and whether it was enough: why it stopped, whether its
validation curve was still improving when it did, and the budget a verdict must state.
Pure functions on history rows and summaries; train/loop.py records them, tables state them.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from grucli.numbers import num

# Why a run stopped. Only the first two are the budget running out.
STOPPED_BY = ("epochs", "max_steps", "early_stopping", "target", "diverged", "pruned")
BY_BUDGET = ("epochs", "max_steps")
TAIL = 0.2  # the last fifth of a run's epochs (at least 2) ...
GAIN = 0.01  # ... improving on the best before them by at least 1% (relative) ...
NOISE = 1.0  # ... and by more than this many of the curve's own epoch-to-epoch noise = still improving;
WINDOW = 5  # or, from this many tail epochs on, the tail's mean beats the window before it by 1% ...
Z = 2.0  # ... and by this many standard errors (pooled within-window SD)
RULE = 3  # the rule's version, kept in each summary (1: 1% only; 2: no window means); store.reader re-judges older
MEANING = ("the run ran out of epochs or steps while its validation curve still got better over the last fifth of "
           "its epochs: that fifth's best beat the best before it by ≥ 1% and by more than the curve's own "
           "epoch-to-epoch noise, or (with 5 or more epochs in it) its mean beat the mean of the equally long "
           "window before it by ≥ 1% and by 2 standard errors")  # what reports print as the definition


def still_improving(values: Sequence[float], goal: str, stopped_by: str | None, solved: bool = False) -> bool | None:
    """True when a run that ran out of budget was still getting better over the last fifth
    of its epochs (at least 2): that fifth's best validation value beats the best before it
    by >= 1% AND by more than the curve's own noise there (the robust sd of its epoch-to-epoch
    changes: median |change| / (0.6745 sqrt 2)); or, when the fifth holds 5 epochs or more,
    its mean beats the mean of the equally long window just before it by >= 1% and by Z
    standard errors (pooled within-window sd), which catches a curve still falling under
    jagged noise that the best-vs-best comparison misses. Simulated
    (benchmarks/still_improving_noise.py): the 1% rule alone (rule 1) called a flat noisy
    plateau (a classifier at chance, its validation accuracy jittering by a few points)
    still improving in 9-16% of runs, so 43-65% of the comparisons of 2 cells x 3 seeds
    were inconclusive by chance; this rule 2-5% of runs (12-24% of comparisons). Curves
    still falling are caught as often as by rule 1 from ~40 epochs on (79-100% against
    86-99%); at 20 epochs or fewer under heavy noise less often (47-84% against 86-93%).
    False when it had flattened, had already reached the task's target (`solved`), or
    stopped for another reason (early stopping, target, divergence, pruning). None when
    there are too few epochs (< 3) to tell."""
    if stopped_by not in BY_BUDGET or solved:
        return False
    xs = [float(v) for v in values]
    if len(xs) < 3 or not all(math.isfinite(v) for v in xs):
        return None
    k = min(len(xs) - 1, max(2, math.ceil(TAIL * len(xs))))
    head, tail = xs[:-k], xs[-k:]
    pick = min if goal == "min" else max
    before, after = pick(head), pick(tail)
    gain = (before - after) if goal == "min" else (after - before)
    if gain > GAIN * max(abs(before), 1e-12) and gain > NOISE * noise(xs[-k - 1:]):
        return True
    return k >= WINDOW and _mean_moved(xs[-2 * k:-k], tail, goal)


def _mean_moved(before: list[float], tail: list[float], goal: str) -> bool:
    """The tail's mean beats the window before it by >= 1% and by Z standard errors."""
    mb, mt = statistics.fmean(before), statistics.fmean(tail)
    gain = (mb - mt) if goal == "min" else (mt - mb)
    df = len(before) + len(tail) - 2
    pooled = ((len(before) - 1) * statistics.variance(before) + (len(tail) - 1) * statistics.variance(tail)) / df
    return gain > GAIN * max(abs(mb), 1e-12) and gain > Z * math.sqrt(pooled * (1 / len(before) + 1 / len(tail)))


def noise(values: Sequence[float]) -> float:
    """The robust standard deviation of a curve's epoch-to-epoch changes: median |change|
    / (0.6745 sqrt 2), the sd of the values themselves if they were independent noise
    around a flat level (a smooth trend adds its slope, which the tail's gain exceeds)."""
    changes = sorted(abs(b - a) for a, b in zip(values, values[1:]))
    if not changes:
        return 0.0
    mid = len(changes) // 2
    median = changes[mid] if len(changes) % 2 else (changes[mid - 1] + changes[mid]) / 2
    return median / (0.6745 * math.sqrt(2))


def left_baseline(values: Sequence[float], baseline: float | None, goal: str, margin: float = 0.05) -> bool | None:
    """Whether the run's best validation value beat the task's trivial baseline by at least
    `margin` (relative). A run that never did sits on the baseline's plateau, which on the
    long-dependency tasks a cell often leaves only after many epochs: a verdict against it
    measures the budget. None when there is no baseline or no finite value."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if baseline is None or not math.isfinite(baseline) or not xs:
        return None
    best = min(xs) if goal == "min" else max(xs)
    return best < baseline * (1 - margin) if goal == "min" else best > baseline * (1 + margin)


def describe(epochs: Sequence[int], steps: Sequence[int], trials: int | None = None) -> str:
    """`8 epochs (1,250 steps) per run` over the runs compared; ranges where they differ
    (early stopping), and the tuning budget first when there was one."""
    def span(xs, unit):
        xs = [int(x) for x in xs if x is not None and x == x]
        if not xs:
            return None
        lo, hi = min(xs), max(xs)
        return f"{num(lo)} {unit.removesuffix('s') if lo == 1 else unit}" if lo == hi else f"{num(lo)}-{num(hi)} {unit}"

    parts = [span(epochs, "epochs"), span(steps, "steps")]
    text = parts[0] or ""
    if parts[1]:
        text = f"{text} ({parts[1]})" if text else parts[1]
    text = f"{text} per run" if text else "budget unknown"
    return f"{trials} trials per cell, then {text}" if trials else text
