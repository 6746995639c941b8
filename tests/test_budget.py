"""The budget a verdict states: when a run counts as still improving (grucli.budget), and
runs judged by an older rule judged again from their history (grucli.store.reader)."""

import json

import pandas as pd
import pytest

import synthetic_results
from grucli import budget
from grucli.store import reader

# A flat but noisy plateau (a classifier at chance): the last fifth's best (0.56) beats the
# best before it (0.55) by 1.8%, well inside the curve's own epoch-to-epoch jitter (~0.05).
PLATEAU = [0.50, 0.55, 0.49, 0.54, 0.50, 0.53, 0.49, 0.55, 0.50, 0.54, 0.51, 0.53, 0.50, 0.54, 0.49, 0.55,
           0.51, 0.56, 0.50, 0.555]


def test_a_noisy_plateau_is_not_still_improving_though_its_best_moved_1_percent(monkeypatch):
    assert budget.still_improving(PLATEAU, "max", "epochs") is False
    monkeypatch.setattr(budget, "NOISE", 0.0)  # rule 1: the 1% gain alone
    assert budget.still_improving(PLATEAU, "max", "epochs") is True


@pytest.mark.parametrize("curve", [[1 / (1 + 0.1 * t) for t in range(30)], [0.5, 0.4, 0.3],
                                   [1.0, 0.8, 0.7, 0.65, 0.6, 0.57, 0.55, 0.53]])
def test_a_curve_still_falling_is_still_improving(curve):
    assert budget.still_improving(curve, "min", "epochs") is True
    assert budget.still_improving(curve, "min", "early_stopping") is False  # stopped for another reason
    assert budget.still_improving([-v for v in curve], "max", "max_steps") is True


def test_the_noise_is_the_robust_sd_of_the_changes():
    assert budget.noise([1.0]) == 0.0
    assert budget.noise([0.0, 1.0, 0.0, 1.0]) == pytest.approx(1 / (0.6745 * 2 ** 0.5))
    assert budget.noise([0.0, 0.0, 0.0, 5.0]) == 0.0  # one jump is not the curve's noise


def _rule1_run(exp, run_id, curve, flagged):
    run = synthetic_results.write_run(exp, run_id, "gru", 10, 0)
    hist = pd.read_csv(run / "history.csv").iloc[[0] * len(curve)].reset_index(drop=True)
    hist["epoch"], hist["val_accuracy"] = range(1, len(curve) + 1), curve
    hist.to_csv(run / "history.csv", index=False)
    s = json.loads((run / "summary.json").read_text())
    s.update(stopped_by="epochs", selected_on="accuracy", select_goal="max", still_improving=flagged)
    (run / "summary.json").write_text(json.dumps(s))
    return run


def test_the_reader_judges_an_older_rules_flag_again_from_history(tmp_path):
    exp = tmp_path / "old"
    _rule1_run(exp, "plateau", PLATEAU, True)
    _rule1_run(exp, "falling", [0.3, 0.4, 0.5, 0.6], True)
    col = reader.collect([exp], histories=False)
    flags = dict(zip(col.runs["run_id"], col.runs["still_improving"]))
    assert flags == {"plateau": False, "falling": True}
    assert any("1 run(s) that an older grucli called still improving are not" in n for n in col.notes)


def test_a_flag_of_todays_rule_is_kept_as_written(tmp_path):
    exp = tmp_path / "new"
    run = _rule1_run(exp, "plateau", PLATEAU, True)
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "still_improving_rule": budget.RULE}))
    col = reader.collect([exp], histories=False)
    assert col.runs["still_improving"].tolist() == [True] and not any("still improving" in n for n in col.notes)


# statsmodels' elec_equip series, an rnn's validation RMSE over 40 epochs (a new user's run):
# still falling (6.1 -> 5.2 over the last 15 epochs) under jagged noise, so the last fifth's
# best beats the best before it by less than the curve's epoch-to-epoch noise.
JAGGED_FALL = [11.37, 9.19, 8.5, 8.6, 7.97, 8.08, 7.33, 7.25, 7.26, 6.98, 7.13, 7.07, 6.81, 6.98, 6.67, 6.76, 6.71,
               6.74, 6.55, 6.61, 6.53, 6.37, 6.42, 6.26, 6.13, 5.88, 5.81, 5.8, 5.46, 5.41, 5.56, 5.27, 5.5, 5.26, 5.64,
               5.32, 5.6, 5.03, 5.5, 5.18]


def test_a_curve_still_falling_under_jagged_noise_is_caught_by_its_window_means(monkeypatch):
    assert budget.still_improving(JAGGED_FALL, "min", "epochs") is True
    monkeypatch.setattr(budget, "WINDOW", 10**9)  # rule 2: best against best only
    assert budget.still_improving(JAGGED_FALL, "min", "epochs") is False


def test_a_long_flat_plateau_is_not_caught_by_the_window_means_either():
    assert budget.still_improving(PLATEAU * 8, "max", "epochs") is False  # 160 epochs, the same level throughout
