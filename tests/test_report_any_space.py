"""`grucli report` on any search space: text and boolean choices are categories in the
tuned tables and figures (a text choice crashed the report); and a report that fails
halfway leaves the previous report whole (it is written in a temporary folder first)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from grucli.cli import app

runner = CliRunner()

TINY = {
    "name": "tc",
    "task": {"name": "adding", "seq_len": 5, "n_train": 32, "n_val": 16, "n_test": 16},
    "model": {"hidden_size": 4},
    "train": {"epochs": 2, "batch_size": 16, "threads": 1, "eval_batch_size": 64},
    "grid": {"model.cell": ["gru", "lstm"]},
    "search": {"trials": 4, "sampler": "random", "pruner": "none", "final_seeds": 2,
               "space": {"train.lr": {"log_uniform": [1.0e-3, 3.0e-2]},
                         "train.optimizer": {"choice": ["adam", "sgd"]},
                         "model.bidirectional": {"choice": [False, True]}}},
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tc")
    (tmp / "tc.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    res = runner.invoke(app, ["tune", str(tmp / "tc.yaml"), "--results", str(tmp / "results"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    return tmp / "results" / "tc"


@pytest.mark.slow
def test_text_and_boolean_choices_report_as_categories(tuned, tmp_path):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", str(tuned), "--out", str(out), "--format", "md"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    best = pd.read_csv(out / "tables" / "tc_tuned_comparison.csv")
    for arm in best.to_dict("records"):
        assert arm["best.train.optimizer"] in ("adam", "sgd")
        assert f"| {arm['best.train.optimizer']} |" in md  # shown as the text it is
    imp = pd.read_csv(out / "tables" / "tc_tuned_importance.csv")
    assert {"train.optimizer", "model.bidirectional"} <= set(imp["param"])
    assert (out / "figures" / "tc_tune_sensitivity.png").is_file()


def test_positions_put_each_choice_at_its_own_category():
    from grucli.report.tuned import _positions

    xs = _positions(pd.Series(["sgd", "adam", "sgd", True]), {"kind": "choice", "choices": ["adam", "sgd", True]})
    assert [round(x) for x in xs] == [1, 0, 1, 2]


@pytest.mark.slow
def test_a_failed_report_leaves_the_previous_one_whole(tuned, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    assert runner.invoke(app, ["report", str(tuned), "--out", str(out)]).exit_code == 0
    (out / "mine.txt").write_text("my notes")  # a file of the user's in the report folder
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from grucli.report import tuned as tuned_mod

    def broken(*a, **k):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(tuned_mod, "blocks", broken)
    with pytest.raises(RuntimeError):
        from grucli.report import build_report

        build_report([tuned], out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the previous report, whole, and the user's file
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".rep")]  # no staging folder left
    monkeypatch.undo()
    from grucli.report import build_report

    res = build_report([tuned], out)
    assert res.out == out and all(Path(p).is_file() and out in Path(p).parents for p in res.files + res.figures)
    assert (out / "mine.txt").read_text() == "my notes"


@pytest.mark.slow
def test_a_first_report_that_fails_leaves_no_folder(tuned, tmp_path, monkeypatch):
    from grucli.report import build_report
    from grucli.report import tuned as tuned_mod

    monkeypatch.setattr(tuned_mod, "blocks", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build_report([tuned], tmp_path / "fresh")
    assert list(tmp_path.iterdir()) == []


def test_an_integer_setting_gets_whole_number_ticks_in_the_sensitivity_plot():
    """(model.num_layers {int: [1, 3]} had ticks at 1.25, 1.5, ...)"""
    from grucli.report.tuned import sensitivity
    from grucli.tune.analysis import Tuned

    space = {"model.num_layers": {"kind": "int", "low": 1, "high": 3, "choices": []},
             "model.hidden_size": {"kind": "log_int", "low": 2, "high": 5, "choices": []}}
    trials = pd.DataFrame({"arm": ["model.cell=gru"] * 4, "state": ["ok", "ok", "pruned", "ok"],
                           "value": [0.3, 0.2, 0.25, 0.1], "param.model.num_layers": [1, 3, 2, 2],
                           "param.model.hidden_size": [2, 5, 3, 4]})
    t = Tuned(Path("."), {"name": "ti", "metric": "mse", "goal": "min", "space": space,
                          "arms": [{"label": "model.cell=gru"}]}, trials, pd.DataFrame())
    (drawn,) = sensitivity(t)
    for ax, expected in zip(drawn.figure.axes, ([1, 2, 3], [2, 3, 4, 5])):
        ax.figure.canvas.draw()
        assert [round(x, 6) for x in ax.get_xticks() if ax.get_xlim()[0] <= x <= ax.get_xlim()[1]] == expected
        assert [tick.get_text() for tick in ax.get_xticklabels()] == [str(v) for v in expected]
