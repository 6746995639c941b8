"""The pruning rules of grucli tune (grucli/tune/pruning.py): the plateau guard holds every
pruner off while each trial of an arm sits on the task's trivial baseline and lets it act
once one trial left it; search.pruner / search.plateau validate; the guard is part of a
study's fingerprint without changing the fingerprint of studies made before it."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from grucli.tune import pruning
from test_tune import TINY, studies, tune, with_search, write

B = 1 / 6  # the adding problem's baseline MSE


def study_with(curves: list[list[float]], kind: str = "asha", plateau: str = "wait", warmup: int = 1):
    """An in-memory study whose finished trials followed `curves` (epochs 1..n), each with
    the task's baseline as grucli's driver records it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(study_name="all", direction="minimize", pruner=pruning.make(kind, warmup, 9, plateau, "min"))
    for values in curves:
        t = s.ask()
        t.set_user_attr(pruning.BASELINE, B)
        for epoch, v in enumerate(values, start=1):
            t.report(v, epoch)
            t.should_prune()  # as a worker does: records the trial at each rung it reaches
        s.tell(t, min(values))
    return s


def judged(s, values: list[float]) -> bool:
    """Whether the pruner stops a new trial after reporting `values` (epochs 1..n)."""
    t = s.ask()
    t.set_user_attr(pruning.BASELINE, B)
    for epoch, v in enumerate(values, start=1):
        t.report(v, epoch)
    return t.should_prune()


PLATEAU = [[B * 1.001, B * 0.999, B * 1.000], [B * 0.998, B * 1.002, B * 0.999], [B * 0.997, B * 0.998, B * 0.998]]
LAGGING = [B * 1.004]  # worse than every trial so far at epoch 1, still on the baseline


def test_plain_asha_prunes_a_trial_that_lags_by_noise_on_the_plateau():
    assert judged(study_with(PLATEAU, plateau="prune"), LAGGING)  # what the guard exists for


@pytest.mark.parametrize("kind", ["asha", "hyperband", "median"])
def test_the_guard_does_not_prune_while_every_trial_sits_on_the_baseline(kind):
    curves = PLATEAU * 2  # the median pruner starts after 5 trials
    assert not judged(study_with(curves, kind), LAGGING)
    assert judged(study_with(curves, kind, plateau="prune"), LAGGING)  # (Hyperband: trial 6 of "all" is in bracket 0)


@pytest.mark.parametrize("kind", ["asha", "median"])
def test_the_guard_prunes_once_a_trial_left_the_baseline_by_the_judged_epoch(kind):
    left = [B * 0.5, B * 0.2, B * 0.1]  # below 95% of the baseline from epoch 1
    assert judged(study_with(PLATEAU * 2 + [left], kind), LAGGING)


def test_a_trial_that_left_the_baseline_only_later_does_not_lift_the_guard_earlier():
    late = [B * 1.0, B * 0.999, B * 0.5]  # leaves at epoch 3: epoch 1 was still a plateau
    s = study_with(PLATEAU + [late])
    assert not judged(s, LAGGING)  # judged at epoch 1
    t = s.ask()
    t.set_user_attr(pruning.BASELINE, B)
    for epoch, v in enumerate([B * 1.01, B * 1.01, B * 1.01], start=1):
        t.report(v, epoch)
    assert t.should_prune()  # judged at epoch 3 (ASHA's rung 3): now a curve has left it


def test_a_task_without_a_baseline_leaves_the_decision_to_the_pruner():
    s = study_with(PLATEAU)
    t = s.ask()  # its task has no baseline on the selection metric: nothing to call a plateau
    t.set_user_attr(pruning.BASELINE, None)
    t.report(LAGGING[0], 1)
    assert t.should_prune()


def test_a_trial_without_a_baseline_never_lifts_the_guard():
    s = study_with(PLATEAU)
    t = s.ask()  # no baseline recorded (e.g. told before the guard existed)
    for epoch, v in enumerate([B * 0.1, B * 0.1, B * 0.1], start=1):
        t.report(v, epoch)
    s.tell(t, B * 0.1)
    assert not judged(s, LAGGING)


# --------------------------------------------------------------------------- the config key
@pytest.mark.parametrize("changes,message", [
    ({"plateau": "maybe"}, "search.plateau: Input should be 'wait' or 'prune' (got 'maybe')"),
    ({"pruner": "hyper"}, "search.pruner: Input should be 'asha', 'hyperband', 'median' or 'none' (got 'hyper')"),
])
def test_an_unknown_pruner_or_plateau_rule_is_one_line(tmp_path, changes, message):
    res = tune(write(tmp_path, with_search(**changes)), tmp_path / "results")
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_every_pruner_the_config_accepts_has_a_rule():
    from typing import get_args

    from grucli.tune.space import SearchSpec

    assert set(get_args(SearchSpec.model_fields["pruner"].annotation)) == set(pruning.PRUNERS)


def test_the_fingerprint_keeps_studies_made_before_the_guard_and_tells_the_guard_apart(tmp_path):
    """A study made under `plateau: prune` (what every study was before the key) keeps its
    fingerprint; resuming it under `plateau: wait` is refused, naming the key."""
    from grucli.config import load_experiment
    from grucli.errors import ConfigError
    from grucli.tune import study as st

    exp = load_experiment(write(tmp_path, with_search(pruner="asha", plateau="prune")))
    arm = st.arms_of(exp)[0]
    before = arm.fingerprint(exp.search)
    assert set(before) == {"arm", "space", "sampler", "pruner", "warmup_epochs", "seed"}
    storage = st.storage(tmp_path)
    st.open_study(storage, arm, exp.search, "min", "x.yaml")
    guarded = load_experiment(write(tmp_path, with_search(pruner="asha", plateau="wait"), "g.yaml"))
    with pytest.raises(ConfigError, match=r"search\.plateau differ\) \(made before search\.plateau.*--set search\.plateau=prune"):
        st.open_study(storage, st.arms_of(guarded)[0], guarded.search, "min", "g.yaml")
    assert st.open_study(storage, arm, exp.search, "min", "x.yaml") is not None  # the old one resumes as it was
    unpruned = load_experiment(write(tmp_path, with_search(pruner="none", plateau="wait"), "n.yaml"))
    assert "plateau" not in st.arms_of(unpruned)[0].fingerprint(unpruned.search)  # nothing to guard


# --------------------------------------------------------------------------- end to end
def test_a_tune_on_a_plateau_prunes_nothing_with_the_guard_and_does_without(tmp_path):
    """lr 1e-6: no trial moves off adding's baseline. The driver records each trial's
    baseline; the workers' guarded ASHA prunes none of them, plain ASHA some (by noise), and
    tune.json counts those as pruned on the plateau."""
    exp = json.loads(json.dumps(TINY))
    exp["grid"] = {"model.cell": ["gru"]}
    exp["search"].update(trials=6, pruner="asha", warmup_epochs=1, space={"train.lr": {"log_uniform": [1e-7, 1e-6]}})
    pruned = {}
    for plateau in ("wait", "prune"):
        exp["search"]["plateau"] = plateau
        res = tune(write(tmp_path, exp, f"{plateau}.yaml"), tmp_path / plateau)
        assert res.exit_code == 0, res.output
        trials = pd.read_csv(tmp_path / plateau / "tt" / "trials.csv")
        pruned[plateau] = int((trials["state"] == "pruned").sum())
        (found,) = studies(tmp_path / plateau / "tt").values()
        assert [t.user_attrs.get(pruning.BASELINE) for t in found] == [pytest.approx(B)] * 6
        manifest = json.loads((tmp_path / plateau / "tt" / "tune.json").read_text())
        assert manifest["budget"]["plateau"] == plateau
        assert manifest["arms"][0]["pruned_on_plateau"] == pruned[plateau]  # every pruned trial: by noise
    assert pruned == {"wait": 0, "prune": pruned["prune"]} and pruned["prune"] >= 1, pruned
