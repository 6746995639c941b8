"""`grucli init`: the task kind guessed from the columns (and said), a series' window,
horizon and season (from the timestamps), two commented experiment files that load and run
as written, the commands to run next, --task / --target, no overwriting, and clean refusals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from grucli.cli import app
from grucli.config import load_experiment
from grucli.grid import expand

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(cache_in_tmp):
    """Every test gets its own empty disk cache."""


def monthly(tmp_path, n=160):
    t = np.arange(n)
    df = pd.DataFrame({"month": pd.date_range("1990-01-01", periods=n, freq="MS").strftime("%Y-%m"),
                       "sales": (100 + t + 10 * np.sin(2 * np.pi * t / 12)).round(2)})
    df.to_csv(tmp_path / "sales.csv", index=False)
    return tmp_path / "sales.csv"


def gestures(tmp_path, n=80, steps=12):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n, steps)).round(3), columns=[f"x{i}" for i in range(steps)])
    df.insert(0, "gesture", ["wave", "point", "swipe", "tap"] * (n // 4))
    df.to_csv(tmp_path / "gestures.csv", index=False)
    return tmp_path / "gestures.csv"


def init(tmp_path, *args):
    return runner.invoke(app, ["init", *map(str, args)])


def test_a_monthly_series_gets_forecast_season_12_and_two_files_that_load(tmp_path):
    data = monthly(tmp_path)
    out = tmp_path / "exp" / "sales.yaml"
    res = init(tmp_path, data, "--out", out)
    assert res.exit_code == 0, res.output
    assert "guessed task: csv_forecast, because 'month' looks like time" in res.output
    assert "guessed column to forecast: 'sales' (the only numeric column" in res.output
    assert "guessed season: 12 (from the timestamps in 'month': monthly rows" in res.output
    assert f"grucli compare {out}" in res.output and f"grucli tune {out.with_name('sales_tune.yaml')}" in res.output
    text = out.read_text()
    assert text.startswith("# grucli compare sales.yaml\n") and "#   season: 12" in text
    raw = yaml.safe_load(text)
    assert raw["task"] == {"name": "csv_forecast", "path": "../sales.csv", "column": "sales", "window": 24,
                           "horizon": 3, "season": 12}
    exp = load_experiment(out)
    runs = expand(exp)
    assert sorted({r.config.model.cell for r in runs}) == ["gru", "lstm", "rnn"] and len(runs) == 9
    assert len({r.config.model.param_budget for r in runs}) == 1  # one budget for every cell
    tuned = load_experiment(out.with_name("sales_tune.yaml"))
    assert tuned.search is not None and "task.scaling" in tuned.search.space and tuned.search.final_seeds == 3


@pytest.mark.slow
def test_the_written_experiments_run(tmp_path):
    data = monthly(tmp_path)
    out = tmp_path / "sales.yaml"
    assert init(tmp_path, data, "--out", out).exit_code == 0
    results = tmp_path / "results"
    small = ["--set", "train.epochs=1", "--set", "train.max_steps=2", "--results", str(results)]
    res = runner.invoke(app, ["compare", str(out), *small, "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert len(list((results / "sales").glob("*/summary.json"))) == 9
    res = runner.invoke(app, ["tune", str(tmp_path / "sales_tune.yaml"), "--dry-run", "--results", str(results)])
    assert res.exit_code == 0 and "search task.scaling" in res.output, res.output


def test_numeric_columns_and_a_label_give_csv_classify(tmp_path):
    res = init(tmp_path, gestures(tmp_path), "--out", tmp_path / "g.yaml")
    assert res.exit_code == 0, res.output
    assert "guessed task: csv_classify, because 12 numeric columns" in res.output
    assert "guessed label: 'gesture'" in res.output
    task = yaml.safe_load((tmp_path / "g.yaml").read_text())["task"]
    assert task == {"name": "csv_classify", "path": "gestures.csv", "label": "gesture"}


def test_a_text_column_gives_text_classification_and_an_embedding(tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "great", "poor", "ok", "meh"]
    df = pd.DataFrame({"review": [" ".join(rng.choice(words, 6)) + f" number {i}" for i in range(60)],
                       "stars": ["1", "5", "3"] * 20})
    df.to_csv(tmp_path / "reviews.csv", index=False)
    res = init(tmp_path, tmp_path / "reviews.csv", "--out", tmp_path / "r.yaml")
    assert res.exit_code == 0, res.output
    raw = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert raw["task"]["text"] == "review" and raw["task"]["label"] == "stars" and raw["model"]["embed_dim"] == 32


def long_moves(tmp_path, n_seq=40, time="t", shuffle=True):
    """A long file: n_seq sequences of 6-9 steps, 3 channels, rows shuffled within each
    sequence when `time` orders them; the label is the same on every row of a sequence."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_seq):
        steps = np.arange(6 + i % 4)
        for t in (rng.permutation(steps) if shuffle else steps):
            out.append({"take": f"take{i:02d}", **({time: int(t)} if time else {}), "ax": round(rng.normal(), 3),
                        "ay": round(rng.normal(), 3), "az": round(rng.normal(), 3),
                        "move": ["up", "down", "left"][i % 3]})
    df = pd.DataFrame(out)
    df.to_csv(tmp_path / "moves.csv", index=False)
    return tmp_path / "moves.csv"


def test_a_long_multichannel_file_gets_id_and_time(tmp_path):
    res = init(tmp_path, long_moves(tmp_path), "--out", tmp_path / "m.yaml")
    assert res.exit_code == 0, res.output
    assert "'take' names 40 sequences of about 8 rows each and 'move' is the same on every row" in res.output
    assert "guessed id: 'take' (40 sequences), time: 't' (orders the steps of each)" in res.output
    assert "guessed channels: ax, ay, az (3 per step)" in res.output
    task = yaml.safe_load((tmp_path / "m.yaml").read_text())["task"]
    assert task == {"name": "csv_classify", "path": "moves.csv", "label": "move", "id": "take", "time": "t"}
    from grucli.tasks import TASKS

    run = expand(load_experiment(tmp_path / "m.yaml"))[0]
    data = TASKS["csv_classify"].build(run.config.task)
    assert data.input_size == 3 and len(data.train) + len(data.val) + len(data.test) == 40  # one sequence per id


def test_a_long_file_without_a_step_column_keeps_file_order_and_a_split_column(tmp_path):
    data = long_moves(tmp_path, time=None, shuffle=False)
    df = pd.read_csv(data)
    df["part"] = np.where(df["take"].str[-2:].astype(int) >= 30, "test", "train")  # constant per sequence
    df.to_csv(data, index=False)
    res = init(tmp_path, data, "--out", tmp_path / "m.yaml")
    assert res.exit_code == 0, res.output
    assert "time: none (no column orders the steps: file order)" in res.output
    task = yaml.safe_load((tmp_path / "m.yaml").read_text())["task"]
    assert task == {"name": "csv_classify", "path": "moves.csv", "label": "move", "id": "take", "split": "part"}
    assert "10 test" in res.output  # the official split was kept: takes 30-39


def test_a_wide_file_with_a_repeated_label_is_not_taken_for_long(tmp_path):
    res = init(tmp_path, gestures(tmp_path), "--out", tmp_path / "g.yaml")
    assert res.exit_code == 0 and "id:" not in yaml.safe_load((tmp_path / "g.yaml").read_text())["task"], res.output


def test_short_text_cells_are_read_as_characters(tmp_path):
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = ["".join(rng.choice(letters, rng.integers(3, 9))).title() + ("a" if i % 2 else "o") for i in range(300)]
    pd.DataFrame({"name": names, "gender": ["female" if i % 2 else "male" for i in range(300)]}).to_csv(
        tmp_path / "names.csv", index=False)
    res = init(tmp_path, tmp_path / "names.csv", "--out", tmp_path / "n.yaml")
    assert res.exit_code == 0, res.output
    assert "guessed text: 'name', read as characters (short cells" in res.output
    task = yaml.safe_load((tmp_path / "n.yaml").read_text())["task"]
    assert task["text"] == "name" and task["unit"] == "char" and task["label"] == "gender"
    assert task["max_len"] == max(len(n) for n in names)


def test_a_0_1_column_beside_a_series_gives_anomaly(tmp_path):
    t = np.arange(400)
    df = pd.DataFrame({"value": np.sin(t / 5).round(3), "is_anomaly": (np.abs(t - 300) < 3).astype(int)})
    df.to_csv(tmp_path / "sensor.csv", index=False)
    res = init(tmp_path, tmp_path / "sensor.csv", "--out", tmp_path / "s.yaml")
    assert res.exit_code == 0, res.output
    task = yaml.safe_load((tmp_path / "s.yaml").read_text())["task"]
    assert task["name"] == "csv_anomaly" and task["column"] == "value" and task["label"] == "is_anomaly"


@pytest.mark.parametrize("n_train, expected", [
    (40, (32, 300, 60)),  # 2 batches an epoch: epochs and patience grow so a run gets ~600 steps
    (98, (32, 150, 30)),
    (2000, (32, 30, 6)),  # 63 batches an epoch: the floor of 30 epochs
    (24416, (128, 30, 6)),  # a large set: larger batches keep an epoch short
])
def test_the_schedule_follows_the_size_of_the_data(n_train, expected):
    from grucli.starter import schedule

    assert schedule(n_train) == expected


def test_a_small_data_set_gets_more_epochs_and_a_longer_patience_in_the_file(tmp_path):
    res = init(tmp_path, gestures(tmp_path), "--out", tmp_path / "g.yaml")  # 80 rows: 56 train
    assert res.exit_code == 0, res.output
    text = (tmp_path / "g.yaml").read_text()
    train = yaml.safe_load(text)["train"]
    assert (train["batch_size"], train["epochs"], train["early_stopping"]) == (32, 300, 60), train
    assert "epochs: 300                # about 600 optimiser steps at most" in text


def test_task_and_target_force_the_guess(tmp_path):
    data = gestures(tmp_path)
    res = init(tmp_path, data, "--task", "csv_forecast", "--target", "x3", "--out", tmp_path / "f.yaml")
    assert res.exit_code == 0, res.output
    assert "guessed task: csv_forecast (--task)" in res.output
    assert yaml.safe_load((tmp_path / "f.yaml").read_text())["task"]["column"] == "x3"


def test_existing_files_are_kept_unless_force(tmp_path):
    data, out = monthly(tmp_path), tmp_path / "sales.yaml"
    out.write_text("# mine\n")
    res = init(tmp_path, data, "--out", out)
    assert res.exit_code == 2 and "exists: not overwritten (--force" in res.output
    assert out.read_text() == "# mine\n" and not (tmp_path / "sales_tune.yaml").exists()
    assert init(tmp_path, data, "--out", out, "--force").exit_code == 0
    assert out.read_text().startswith("# grucli compare")


@pytest.mark.parametrize("spelling", ["", "NA", "N/A", "n/a", "#N/A"])
def test_the_common_spellings_of_no_value_are_missing_cells_like_an_empty_one(tmp_path, spelling):
    """(A series with 'n/a' in it was 'cannot tell the task': the column read as text.)"""
    data = monthly(tmp_path)
    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    df.loc[5, "sales"] = spelling
    df.to_csv(data, index=False)
    res = init(tmp_path, data, "--out", tmp_path / "s.yaml")
    assert res.exit_code == 0, res.output
    assert "guessed task: csv_forecast" in res.output and "1 empty cell(s) (data row 6)" in res.output


REFUSED = {  # file contents, options, what the one line says
    "empty file": ("", [], "the file is empty"),
    "cannot tell": ("a,b\nx,y\nz,w\n", [], "cannot tell the task"),
    "too few rows": ("month,y\n" + "".join(f"2000-{m:02d},{m}\n" for m in range(1, 13)), [], "too few to forecast"),
    "unknown target": (None, ["--target", "gestur"], "--target gestur: no such column (did you mean 'gesture'?)"),
    "unknown task": (None, ["--task", "uea"], "--task uea: init writes one of csv_forecast"),
    "no label": (None, ["--task", "csv_anomaly"], "cannot tell which column is the 0/1 label"),
    "empty time cell": ("month,y\n" + "".join(f"{'' if m == 40 else f'{2000 + m // 12}-{m % 12 + 1:02d}'},{m}\n"
                                              for m in range(120)),
                        [], "d.csv: data row 41: the time (column 'month') is empty; fill it in"),  # (was read silently)
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_init_cannot_guess_is_one_line_and_writes_nothing(case, tmp_path):
    content, options, expected = REFUSED[case]
    if content is None:
        data = gestures(tmp_path)
    else:
        data = tmp_path / "d.csv"
        data.write_text(content)
    res = init(tmp_path, data, "--out", tmp_path / "x.yaml", *options)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and expected in lines[0], res.output
    assert not (tmp_path / "x.yaml").exists()


def test_a_ts_file_and_its_test_sibling(tmp_path):
    head = "@problemName m\n@classLabel true a b\n@data\n"
    rng = np.random.default_rng(0)
    case = lambda i: ",".join(f"{v:.2f}" for v in rng.normal(size=6)) + ":" + ",".join(  # noqa: E731
        f"{v:.2f}" for v in rng.normal(size=6)) + (":a" if i % 2 else ":b")
    (tmp_path / "m_TRAIN.ts").write_text(head + "\n".join(case(i) for i in range(40)) + "\n")
    (tmp_path / "m_TEST.ts").write_text(head + "\n".join(case(i) for i in range(20)) + "\n")
    res = init(tmp_path, tmp_path / "m_TRAIN.ts", "--out", tmp_path / "m.yaml")
    assert res.exit_code == 0, res.output
    assert "40 cases, 2 channel(s), length 6, 2 classes" in res.output and "test_path: m_TEST.ts" in res.output
    task = yaml.safe_load((tmp_path / "m.yaml").read_text())["task"]
    assert task == {"name": "csv_classify", "path": "m_TRAIN.ts", "test_path": "m_TEST.ts"}
    assert len(expand(load_experiment(tmp_path / "m.yaml"))) == 9
    (tmp_path / "bad.ts").write_text("1,2:a\n")
    res = init(tmp_path, tmp_path / "bad.ts", "--out", tmp_path / "b.yaml")
    assert res.exit_code == 2 and "bad.ts:1: a data line before @data" in res.output


# --------------------------------------------------------------------------- the whole flow on data grucli does not ship
# The README's "Tried as a user would" data sets, written by the same script a user runs
# (examples/foreign/export.py reads the installed packages' files); then init, compare,
# report, tune, report at tiny scale, as the commands init prints.
EXPORT = Path(__file__).resolve().parent.parent / "examples" / "foreign" / "export.py"
FOREIGN = {  # name -> (package holding the data, what init must guess)
    "airline": ("aeon", "guessed season: 12 (from the timestamps in 'Date'"),  # seasonal series
    "nile": ("statsmodels", "guessed season: none"),  # yearly, no season
    "watch": ("seglearn", "guessed id: 'id' (140 sequences), time: 't'"),  # long file, 6 channels, 7 classes
    "names": ("gender_guesser", "guessed text: 'name', read as characters"),  # labelled text
    "gestures": ("aeon", "test_path: PickupGestureWiimoteZ_TEST.ts"),  # .ts with its official test file
}
TINY_RUN = ["--set", "train.epochs=1", "--set", "train.max_steps=2", "--jobs", "1"]
TINY_TUNE = ["--set", "search.trials=2", "--set", "search.final_seeds=1", *TINY_RUN]


def _export():
    spec = importlib.util.spec_from_file_location("foreign_export", EXPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_init_compare_report_tune_report_on_data_grucli_does_not_use(name, tmp_path, monkeypatch):
    package, guessed = FOREIGN[name]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install -e '.[real]')")
    data = _export().EXPORTS[name][0](tmp_path)
    monkeypatch.chdir(tmp_path)  # as a user: the experiment files beside the data, results/ under it
    res = init(tmp_path, data.name)
    assert res.exit_code == 0 and guessed in res.output, res.output
    stem = data.stem.replace("_TRAIN", "")
    commands = [line.split()[1:] for line in res.output.splitlines() if line.strip().startswith("grucli ")]
    compare, report, tune, report_tuned = (c for c in commands if "--dry-run" not in c)
    assert compare == ["compare", f"{stem}.yaml"] and tune == ["tune", f"{stem}_tune.yaml"], commands
    res = runner.invoke(app, [*compare, "--set", "seeds=1", *TINY_RUN])
    assert res.exit_code == 0 and "Answer" in res.output, res.output
    assert len(list((tmp_path / report[1]).glob("*/summary.json"))) == 3  # rnn, gru, lstm
    res = runner.invoke(app, [*report, "--format", "md"])
    assert res.exit_code == 0 and (tmp_path / report[1] / "report" / "report.md").is_file(), res.output
    res = runner.invoke(app, [*tune, *TINY_TUNE])  # forecasting spaces hold a text choice (task.scaling)
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*report_tuned, "--format", "md"])
    assert res.exit_code == 0 and (tmp_path / report_tuned[1] / "report" / "report.md").is_file(), res.output
