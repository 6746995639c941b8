"""Real-data tasks on tiny generated files: every loader, every data error (one clear line,
exit 2, nothing in results/), padding invariance, paths relative to the experiment file,
the disk cache, `grucli sample`. Bundled data sets are checked in test_bundled_data.py."""

from __future__ import annotations

import importlib.util
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from grucli.cli import app
from grucli.config import load_experiment
from grucli.errors import DataError
from grucli.grid import expand
from grucli.model import SequenceModel
from grucli.objectives import Forecast, NextToken
from grucli.tasks import TASKS
from grucli.tasks import cache as cache_mod
from grucli.tasks.forecast import ForecastConfig
from grucli.tasks.text import CharLMConfig, build_char_lm
from grucli.tasks.uea import parse_ts
from grucli.tasks.user_files import CsvClassifyConfig, CsvForecastConfig, build_csv_classify, build_csv_forecast
from grucli.tasks.vocab import SPECIALS, UNK

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_cache(cache_in_tmp):
    """Every test gets its own empty disk cache (the conftest fixture, for the whole module)."""


def fresh(build, cfg):
    """Build without the disk cache."""
    return build.__wrapped__(cfg)


@pytest.fixture
def series_csv(tmp_path):
    """100 rows: y = t (a ramp), with gaps at rows 10 and 90; column 'word' is text."""
    y = [str(float(t)) for t in range(100)]
    y[10] = y[90] = ""
    path = tmp_path / "series.csv"
    pd.DataFrame({"t": range(100), "y": y, "word": ["a"] * 100}).to_csv(path, index=False)
    return path


@pytest.fixture
def rows_csv(tmp_path):
    """30 rows, label up/down, 6 step columns; 'down' rows are 4 steps long (empty cells)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        up = i % 2 == 0
        steps = list(rng.normal(1.0 if up else -1.0, 0.1, 6).round(3))
        cells = [str(v) for v in steps] if up else [str(v) for v in steps[:4]] + ["", ""]
        rows.append([*cells, "up" if up else "down"])
    path = tmp_path / "rows.csv"
    pd.DataFrame(rows, columns=[f"s{i}" for i in range(6)] + ["label"]).to_csv(path, index=False)
    return path


@pytest.fixture
def texts_csv(tmp_path):
    texts = ["good great fine"] * 20 + ["bad awful poor"] * 20
    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": texts, "label": ["pos"] * 20 + ["neg"] * 20}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- forecasting
def test_csv_forecast_windows_split_in_time_and_baselines_by_hand(series_csv):
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5, horizon=2, val_frac=0.2, test_frac=0.2)
    data = fresh(build_csv_forecast, cfg)
    assert data.train.x.shape[1:] == (5, 1) and data.train.y.shape[1] == 2 + 1  # H targets + anchor
    last_train_target = data.train.y[:, :2].max()
    assert last_train_target < data.val.y[:, :2].min() <= data.val.y[:, :2].max() < data.test.y[:, :2].min()
    # on a ramp (gaps interpolated back onto it) the naive forecast is off by 1 and 2 steps
    assert data.baseline["mae"] == pytest.approx(1.5)
    assert data.baseline["rmse"] == pytest.approx(math.sqrt((1 + 4) / 2))
    assert data.baseline["mase"] == pytest.approx(1.5)  # one-step changes on train are all 1
    assert "snaive_rmse" not in data.baseline  # no season given
    assert data.metric == "rmse" and data.goal == "min"


def test_window_scaling_follows_the_trend_and_the_objective_inverts_it(series_csv):
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5, horizon=1)
    data = fresh(build_csv_forecast, cfg)
    # relative to each window's last value, every ramp window looks the same
    assert torch.allclose(data.train.x[0], data.test.x[-1], atol=1e-5)
    obj: Forecast = data.objective
    future, anchor = data.test.y[:, :1], data.test.y[:, 1:]
    perfect = (future - anchor) / obj.scale
    m = obj.metrics(perfect, data.test.y)
    assert m["rmse"] == pytest.approx(0, abs=1e-4) and m["mae"] == pytest.approx(0, abs=1e-4)
    assert float(obj.loss(perfect, data.test.y)) == pytest.approx(0, abs=1e-8)
    zero = obj.metrics(torch.zeros_like(perfect), data.test.y)  # predicting "no change" is the naive forecast
    assert zero["mae"] == pytest.approx(data.baseline["mae"], rel=1e-5)


def test_global_scaling_is_fitted_on_train_only(series_csv, tmp_path):
    cfg = dict(column="y", window=5, scaling="global")
    a = fresh(build_csv_forecast, CsvForecastConfig(path=str(series_csv), **cfg))
    df = pd.read_csv(series_csv)
    df.loc[80:, "y"] = 1000.0  # change the test part only
    other = tmp_path / "other.csv"
    df.to_csv(other, index=False)
    b = fresh(build_csv_forecast, CsvForecastConfig(path=str(other), **cfg))
    assert torch.equal(a.train.x, b.train.x)
    assert a.objective.scale == b.objective.scale


def test_gaps_interpolate_skips_gap_targets_and_drop_skips_gap_windows(series_csv):
    base = dict(path=str(series_csv), column="y", window=5, horizon=1, val_frac=0.2, test_frac=0.2)
    interp = fresh(build_csv_forecast, CsvForecastConfig(**base))
    drop = fresh(build_csv_forecast, CsvForecastConfig(**base, gaps="drop"))
    targets = torch.cat([interp.train.y[:, 0], interp.val.y[:, 0], interp.test.y[:, 0]])
    assert 10.0 not in targets.tolist() and 90.0 not in targets.tolist()
    assert 11.0 in targets.tolist()  # input window holds the (interpolated) gap, target is real
    n_interp = sum(len(s) for s in (interp.train, interp.val, interp.test))
    n_drop = sum(len(s) for s in (drop.train, drop.val, drop.test))
    assert n_interp - n_drop == 2 * 5  # each gap also sits inside 5 input windows


def test_seasonal_naive_baseline(tmp_path):
    t = np.arange(120)
    path = tmp_path / "season.csv"
    pd.DataFrame({"y": np.sin(2 * np.pi * t / 12) + 0.01 * t}).to_csv(path, index=False)
    data = fresh(build_csv_forecast, CsvForecastConfig(path=str(path), column="y", window=12, season=12))
    assert data.baseline["snaive_mae"] == pytest.approx(0.12, rel=1e-6)  # a year of trend
    assert data.baseline["snaive_mae"] < data.baseline["mae"]


def test_forecast_rejects_unknown_bundled_series_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown forecast data set 'co3' \(did you mean 'co2'\?\); valid: co2, sunspots, elnino"):
        ForecastConfig(dataset="co3")


# --------------------------------------------------------------------------- classification
def test_csv_classify_numeric_rows_with_variable_lengths(rows_csv):
    data = fresh(build_csv_classify, CsvClassifyConfig(path=str(rows_csv), label="label", val_frac=0.2, test_frac=0.2))
    assert data.info["class_names"] == ["down", "up"] and data.output_size == 2 and data.input_size == 1
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 30
    for s in (data.train, data.val, data.test):
        assert sorted(set(s.lengths.tolist())) == [4, 6]
        assert set(s.lengths[s.y == 0].tolist()) == {4}  # 'down' rows end after 4 steps
        assert bool((s.x[s.y == 0, 4:] == 0).all())  # right-padded
    assert data.baseline["accuracy"] == pytest.approx(0.5, abs=0.2)


def test_csv_classify_text_column_vocabulary_from_train_only(texts_csv, tmp_path):
    df = pd.read_csv(texts_csv)
    df.loc[len(df)] = ["zebra", "pos"]  # a word seen once
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    data = fresh(build_csv_classify, CsvClassifyConfig(path=str(path), label="label", text="text", min_count=1))
    vocab = data.info["vocab"]
    assert data.tokens and vocab[:2] == SPECIALS[:2] and vocab[UNK] == "<unk>" and {"good", "bad"} <= set(vocab)
    assert data.train.x.shape[1] == 3 and set(data.train.lengths.tolist()) <= {1, 3}  # "zebra" is one word
    train_words = {vocab[i] for i in data.train.x.flatten().tolist()}
    assert ("zebra" in vocab) == ("zebra" in train_words)


def test_ts_parser_multichannel_variable_length():
    text = """# comment
@problemName Tiny
@timeStamps false
@univariate false
@classLabel true a b
@data
1,2,3:4,5,6:a
7,8:9,10:b
"""
    series, labels, classes = parse_ts(text, "tiny.ts")
    assert classes == ["a", "b"] and labels == ["a", "b"]
    assert series[0].shape == (3, 2) and series[1].shape == (2, 2)
    assert series[0][:, 1].tolist() == [4, 5, 6]


# --------------------------------------------------------------------------- char_lm
def test_char_lm_on_a_text_file_chunks_vocab_and_unigram_baseline(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("abab" * 50)  # 200 characters, a and b equally frequent
    data = fresh(build_char_lm, CharLMConfig(path=str(path), seq_len=10, val_frac=0.1, test_frac=0.1))
    assert data.head == "each" and data.tokens and data.metric == "bpc"
    assert data.info["vocab"][2:] == ["a", "b"]
    assert data.train.x.shape == (15, 10) and data.train.lengths is None  # 160 characters: 15 full chunks
    assert data.test.x.shape == (2, 10) and data.test.lengths.tolist() == [10, 9]  # test scores every character
    assert torch.equal(data.train.x[0, 1:], data.train.y[0, :-1])  # y is x shifted by one
    # add-one smoothed unigram over {<unk>: 1, a: 81, b: 81}: about 1 bit per character
    assert data.baseline["bpc"] == pytest.approx(-math.log2(81 / 163), rel=1e-6)


def test_next_token_objective_reports_bits_per_character():
    out = torch.zeros(2, 3, 4)  # uniform over 4 tokens -> 2 bits
    y = torch.tensor([[0, 1, 2], [3, 0, -100]])
    m = NextToken(4).metrics(out, y)
    assert m["bpc"] == pytest.approx(2.0) and m["ce"] == pytest.approx(math.log(4))


# --------------------------------------------------------------------------- errors
def _error(build, cfg) -> str:
    with pytest.raises(DataError) as e:
        fresh(build, cfg)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_data_errors_are_one_clear_line(tmp_path, series_csv, rows_csv):
    missing = tmp_path / "nope.csv"
    assert "nope.csv: file not found" in _error(build_csv_forecast, CsvForecastConfig(path=str(missing), column="y"))
    assert "no column 'z'" in _error(build_csv_forecast, CsvForecastConfig(path=str(series_csv), column="z"))
    msg = _error(build_csv_forecast, CsvForecastConfig(path=str(series_csv), column="word"))
    assert "non-numeric value 'a' in data row 1" in msg
    msg = _error(build_csv_forecast, CsvForecastConfig(path=str(series_csv), column="y", window=80))
    assert "too few for window 80" in msg
    one = tmp_path / "one.csv"
    pd.read_csv(rows_csv).assign(label="up").to_csv(one, index=False)
    assert "single class" in _error(build_csv_classify, CsvClassifyConfig(path=str(one), label="label"))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert "empty" in _error(build_char_lm, CharLMConfig(path=str(empty)))
    bad = tmp_path / "bad.csv"
    pd.read_csv(rows_csv).assign(s2="x").to_csv(bad, index=False)
    assert "column 's2': non-numeric value 'x'" in _error(build_csv_classify, CsvClassifyConfig(path=str(bad), label="label"))


def test_missing_optional_extra_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "statsmodels" else real(name, *a))
    msg = _error(TASKS["forecast"].build, ForecastConfig(dataset="sunspots"))
    assert "'statsmodels' package, which is not installed: pip install 'grucli[real]'" in msg


CLI_ERRORS = {  # task, what the line says, the key path it names
    "missing file": ({"name": "csv_forecast", "path": "nope.csv", "column": "y"}, "file not found", "task.path"),
    "missing column": ({"name": "csv_forecast", "path": "series.csv", "column": "z"}, "no column 'z'", "task.column"),
    "non-numeric": ({"name": "csv_forecast", "path": "series.csv", "column": "word"}, "non-numeric value", "task.column"),
    "too few rows": ({"name": "csv_forecast", "path": "series.csv", "column": "y", "window": 99}, "too few", "task.path"),
    "season too long": ({"name": "csv_forecast", "path": "series.csv", "column": "y", "season": 9999}, "reaches back",
                        "task.season"),
    "one class": ({"name": "csv_classify", "path": "one.csv", "label": "label"}, "single class", "task.label"),
    "empty text": ({"name": "char_lm", "path": "empty.txt"}, "empty", "task.path"),
    "unknown data set": ({"name": "uea", "dataset": "GunPont"}, "did you mean 'GunPoint'", "task.dataset"),
}


@pytest.mark.parametrize("case", sorted(CLI_ERRORS))
def test_cli_data_error_exits_2_with_one_line_and_writes_nothing(case, tmp_path, series_csv, rows_csv):
    task, expected, key = CLI_ERRORS[case]
    pd.read_csv(rows_csv).assign(label="up").to_csv(tmp_path / "one.csv", index=False)
    (tmp_path / "empty.txt").write_text("")
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "bad", "task": task, "train": {"epochs": 1}}))
    results = tmp_path / "results"
    res = runner.invoke(app, ["train", str(exp), "--results", str(results)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], res.output
    # the experiment file (at the key's line for a config value) and the key path
    assert re.search(rf"{re.escape(str(exp))}(:\d+)?: {re.escape(key)}: ", lines[0]), res.output
    assert not results.exists()


# --------------------------------------------------------------------------- padding
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("head", ["last", "each"])
def test_a_sequence_alone_and_padded_in_a_batch_gives_the_same_output(cell, head):
    torch.manual_seed(0)
    model = SequenceModel(cell, input_size=3, output_size=2, hidden_size=5, head=head).eval()
    short, long_ = torch.randn(1, 4, 3), torch.randn(1, 7, 3)
    batch = torch.zeros(2, 7, 3)
    batch[0, :4], batch[1] = short[0], long_[0]
    with torch.no_grad():
        alone = model(short)
        padded = model(batch, torch.tensor([4, 7]))
    if head == "last":
        torch.testing.assert_close(padded[0], alone[0])
    else:
        torch.testing.assert_close(padded[0, :4], alone[0])


# --------------------------------------------------------------------------- paths and cache
def _user_experiment(folder, data_name="series.csv"):
    folder.mkdir(parents=True, exist_ok=True)
    exp = folder / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "mine", "task": {"name": "csv_forecast", "path": f"data/{data_name}",
                                                             "column": "y", "window": 5}}))
    return exp


def test_paths_are_relative_to_the_experiment_file_and_run_ids_follow_content(tmp_path, series_csv, monkeypatch):
    a = _user_experiment(tmp_path / "a")
    (tmp_path / "a" / "data").mkdir()
    shutil.copy(series_csv, tmp_path / "a" / "data" / "series.csv")
    monkeypatch.chdir(tmp_path)  # not the experiment's folder
    run_a = expand(load_experiment(a))[0]
    assert run_a.config.task.path == str((tmp_path / "a" / "data" / "series.csv").resolve())
    assert run_a.config.task.content_sha256
    # the same project somewhere else: same run id
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    assert expand(load_experiment(tmp_path / "moved" / "exp.yaml"))[0].run_id == run_a.run_id
    # other data in the file: another run id
    with open(tmp_path / "moved" / "data" / "series.csv", "a") as f:
        f.write("100,100.0,a\n")
    assert expand(load_experiment(tmp_path / "moved" / "exp.yaml"))[0].run_id != run_a.run_id


def test_grid_over_data_files_resolves_every_path(tmp_path, series_csv):
    folder = tmp_path / "p"
    (folder / "d").mkdir(parents=True)
    shutil.copy(series_csv, folder / "d" / "one.csv")
    exp = folder / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "g", "task": {"name": "csv_forecast", "path": "d/one.csv", "column": "y"},
                                   "grid": {"task.path": ["d/one.csv", "d/two.csv"]}}))
    paths = [r.config.task.path for r in expand(load_experiment(exp))]
    assert paths == [str((folder / "d" / n).resolve()) for n in ("one.csv", "two.csv")]


def test_disk_cache_prepares_once(series_csv, cache_in_tmp, monkeypatch):
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5)
    build = TASKS["csv_forecast"].build
    first = build(cfg)
    files = list(cache_in_tmp.glob("csv_forecast-*.pt"))
    assert len(files) == 1 and not list(cache_in_tmp.glob("*.tmp"))
    import grucli.tasks.user_files as uf

    monkeypatch.setattr(uf, "read_csv", lambda path: pytest.fail("parsed again"))
    again = build(cfg)
    assert torch.equal(first.train.x, again.train.x) and again.baseline == first.baseline
    assert cache_mod.cache_path(cfg) == files[0]
    assert cache_mod.cache_path(cfg.model_copy(update={"window": 6})) != files[0]


def test_a_corrupt_cache_entry_is_rebuilt(series_csv, cache_in_tmp):
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5)
    path = cache_mod.cache_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="ignoring the data cache"):
        assert len(TASKS["csv_forecast"].build(cfg).train) > 0


class _Planted:
    """A pickle that runs code when loaded with weights_only=False."""

    def __reduce__(self):
        import os

        return (os.system, ("touch planted-cache-ran",))


def test_a_planted_cache_file_cannot_run_code(series_csv, cache_in_tmp, tmp_path, monkeypatch):
    """A cache file planted in a cloned project (a pickle whose loading runs a command) is
    read with weights_only: the command never runs, the file is set aside with one warning
    line, and the data are rebuilt."""
    monkeypatch.chdir(tmp_path)
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5)
    path = cache_mod.cache_path(cfg)
    path.parent.mkdir(parents=True)
    torch.save({"format": "grucli-task-cache", "payload": _Planted()}, path)
    with pytest.warns(RuntimeWarning, match="ignoring the data cache"):
        data = TASKS["csv_forecast"].build(cfg)
    assert len(data.train) > 0 and not (tmp_path / "planted-cache-ran").exists()


def test_a_cache_made_for_another_config_is_not_trusted(series_csv, cache_in_tmp):
    cfg = CsvForecastConfig(path=str(series_csv), column="y", window=5)
    other = cfg.model_copy(update={"window": 6})
    build = TASKS["csv_forecast"].build
    build(other)
    cache_mod.cache_path(other).replace(cache_mod.cache_path(cfg))  # the other config's data under this key
    with pytest.warns(RuntimeWarning, match="made for another task config"):
        data = build(cfg)
    assert data.train.x.shape[1] == 5


# --------------------------------------------------------------------------- CLI
def test_tasks_lists_every_task_with_its_data_source():
    res = runner.invoke(app, ["tasks"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    for name in ("forecast", "uea", "sentiment", "char_lm", "csv_forecast", "csv_classify"):
        assert name in res.output
    assert "statsmodels" in res.output and "pydoc_data.topics" in res.output


def test_train_then_sample_a_tiny_char_model(tmp_path):
    (tmp_path / "book.txt").write_text("the cat sat on the mat. " * 40)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "lm", "task": {"name": "char_lm", "path": "book.txt", "seq_len": 20},
                                   "model": {"hidden_size": 8}, "train": {"epochs": 1, "threads": 1}}))
    results = tmp_path / "results"
    res = runner.invoke(app, ["train", str(exp), "--results", str(results)])
    assert res.exit_code == 0, res.output
    run_dir = next(p for p in (results / "lm").iterdir() if p.is_dir())
    res = runner.invoke(app, ["sample", str(run_dir), "--prime", "the ", "--length", "30"])
    assert res.exit_code == 0, res.output
    text = res.output.rstrip("\n")
    assert text.startswith("the ") and len(text) == 34 and set(text) <= set("the cat sat on mat.")
    greedy = [runner.invoke(app, ["sample", str(run_dir), "-t", "0", "-n", "10"]).output for _ in range(2)]
    assert greedy[0] == greedy[1]
    odd = runner.invoke(app, ["sample", str(run_dir), "--prime", "the 日", "--length", "5"])
    assert odd.exit_code == 0 and "not in the run's vocabulary" in odd.output and "'日'" in odd.output


def test_sample_refuses_a_run_that_is_not_a_character_model(tmp_path, rows_csv):
    exp = tmp_path / "exp.yaml"
    shutil.copy(rows_csv, tmp_path / "r.csv")
    exp.write_text(yaml.safe_dump({"name": "cls", "task": {"name": "csv_classify", "path": "r.csv", "label": "label"},
                                   "model": {"hidden_size": 4}, "train": {"epochs": 1, "threads": 1}}))
    results = tmp_path / "results"
    assert runner.invoke(app, ["train", str(exp), "--results", str(results)]).exit_code == 0
    run_dir = next(p for p in (results / "cls").iterdir() if p.is_dir())
    res = runner.invoke(app, ["sample", str(run_dir)])
    assert res.exit_code == 2 and "not a per-step token model" in res.output


def test_paths_inside_whole_task_sections_are_resolved(tmp_path, series_csv):
    folder = tmp_path / "p"
    (folder / "d").mkdir(parents=True)
    shutil.copy(series_csv, folder / "d" / "one.csv")
    section = {"name": "csv_forecast", "path": "d/one.csv", "column": "y"}
    exp = folder / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "s", "task": {"name": "adding"},
                                   "zip": [{"task": [section], "model.hidden_size": [8]}],
                                   "include": [{"task": section}]}))
    expected = str((folder / "d" / "one.csv").resolve())
    assert {r.config.task.path for r in expand(load_experiment(exp))} == {expected}


def test_forecast_lines_and_tables_show_the_seasonal_naive_baseline_and_no_reached_share():
    """A forecast with a season has two baselines and the seasonal one is often the stronger:
    the run line and the compare table show both. Tasks without a target have no 'reached'."""
    from grucli import tables
    from grucli.commands.common import baseline_text

    df = pd.DataFrame({
        "task": ["csv_forecast"] * 2, "cell": ["gru", "lstm"], "state": ["ok", "ok"], "metric": ["rmse"] * 2,
        "goal": ["min"] * 2, "value": [0.15, 0.2], "baseline_value": [0.48, 0.48],
        "baseline.snaive_rmse": [0.14, 0.14], "target": [None, None], "reached_target": [False, False],
        "params": [10, 12],
    })
    (view,) = tables.task_views(df)
    rows = tables.summary_table(view)
    assert rows["baseline_snaive"].tolist() == [0.14, 0.14]
    assert view.target is None
    assert baseline_text(0.48, 0.14) == "naive 0.48 / seasonal naive 0.14"
    assert baseline_text(0.48) == "0.48"
