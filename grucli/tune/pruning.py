"""The pruning rules of `search.pruner`, and the plateau guard of `search.plateau`.

A pruner compares trials at the same epoch and stops the ones that lag. On a task whose
trials all sit on the trivial baseline's plateau for the first epochs (the long adding
problem: every trial predicts about the mean, MSE ~1/6), that comparison is between noise:
ASHA keeps a third of them by chance and stops the one that would have left the plateau
at epoch 15, and the arm's "best configuration" is then picked by noise too
(benchmarks/pruning_noise.py simulates how often).

`PlateauGuard` wraps any of these pruners: while no trial of the arm has left the task's
trivial baseline by the epoch being judged (`budget.left_baseline`, the same test the run's
`left_baseline` records), it prunes nothing; once one has, the wrapped pruner decides as
usual, and every comparison it makes has a real curve in it. Each trial's baseline is its
user attribute `baseline` (set by the driver from the trial's task); another trial without
one never counts as having left it, and a judged trial without one (a task with no baseline
on the selection metric) is left to the wrapped pruner alone.
"""

from __future__ import annotations

from typing import Callable

import optuna
from optuna.pruners import BasePruner

from grucli import budget

BASELINE = "baseline"  # trial user attr: the task's trivial baseline on the selection metric
REDUCTION = 3  # ASHA's and Hyperband's reduction factor: a third of a rung goes on


def asha(warmup: int, epochs: int) -> BasePruner:
    """Asynchronous successive halving: rungs at warmup * 3^k epochs, the top third goes on."""
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup, reduction_factor=REDUCTION)


def hyperband(warmup: int, epochs: int) -> BasePruner:
    """Hyperband (Li et al. 2018): several ASHA brackets, each trial in one (by a hash of its
    number); bracket s first judges at warmup * 3^s epochs, so some trials run long before
    anything compares them."""
    return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=max(epochs, warmup + 1),
                                          reduction_factor=REDUCTION)


def median(warmup: int, epochs: int) -> BasePruner:
    """Stop a trial below the median of the earlier trials at the same epoch (after 5 trials)."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup - 1)


def none(warmup: int, epochs: int) -> BasePruner:
    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Callable[[int, int], BasePruner]] = {
    "asha": asha, "hyperband": hyperband, "median": median, "none": none}  # search.pruner


def left_by(trial: optuna.trial.FrozenTrial, step: int, goal: str) -> bool:
    """Whether the trial's validation curve up to `step` left its task's trivial baseline."""
    values = [v for s, v in trial.intermediate_values.items() if s <= step]
    return bool(budget.left_baseline(values, trial.user_attrs.get(BASELINE), goal))


class PlateauGuard(BasePruner):
    """`inner` prunes only once some trial of the study left the baseline by the judged step."""

    def __init__(self, inner: BasePruner, goal: str):
        self.inner, self.goal = inner, goal

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or not self.inner.prune(study, trial):
            return False
        if trial.user_attrs.get(BASELINE) is None:  # a task without a baseline on this metric: no plateau to
            return True  # tell, the pruner alone decides
        return any(left_by(t, step, self.goal) for t in study.get_trials(deepcopy=False))


def pruned_on_plateau(trials: list[optuna.trial.FrozenTrial], goal: str) -> int:
    """How many pruned trials were stopped while no trial of the study had left the baseline
    by the epoch they were stopped at: stopped by noise (none under the guard)."""
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state == TrialState.PRUNED and t.last_step is not None
               and not any(left_by(u, t.last_step, goal) for u in trials))


def make(kind: str, warmup: int, epochs: int, plateau: str, goal: str) -> BasePruner:
    """The pruner of `search.pruner` = kind, guarded unless `search.plateau` = prune."""
    inner = PRUNERS[kind](warmup, epochs)
    return inner if plateau == "prune" or kind == "none" else PlateauGuard(inner, goal)
