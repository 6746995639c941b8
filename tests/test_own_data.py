"""Your own data, bad and good: every bad CSV gives one line naming the file, the row and the
column, exit code 2 and nothing under results/; the `missing:` policy; the notes that say what
the preparation did (rows left out, gaps filled)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from grucli.cli import app

runner = CliRunner()
TRAIN = {"epochs": 1, "batch_size": 16, "max_steps": 2, "threads": 1}
MODEL = {"cell": "gru", "hidden_size": 4}


@pytest.fixture(autouse=True)
def _own_cache(cache_in_tmp):
    """Every test gets its own empty disk cache."""


def rows(n: int = 40, steps: int = 5, seed: int = 0) -> pd.DataFrame:
    """n labelled sequences (classes a/b alternate), `steps` numeric columns s0..; text cells."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, steps)).round(3).astype(str), columns=[f"s{i}" for i in range(steps)])
    df["label"] = ["a" if i % 2 else "b" for i in range(n)]
    return df


def series(n: int = 120) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"t": t, "y": np.sin(t / 3).round(4).astype(str), "label": (t == 100).astype(int)})


def run(tmp_path, task: dict, files: dict[str, pd.DataFrame | str], command: str = "train"):
    for name, content in files.items():
        if isinstance(content, str):
            (tmp_path / name).write_text(content)
        else:
            content.to_csv(tmp_path / name, index=False)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "own", "task": task, "model": MODEL, "train": TRAIN}))
    results = tmp_path / "results"
    res = runner.invoke(app, [command, str(exp), "--results", str(results)])
    return res, exp, results


def one_error_line(res, exp, results) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {exp}: task."), lines[0]
    assert not results.exists()
    return lines[0]


def _with(df: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    df = df.astype(object)
    df.loc[row, col] = value
    return df


BAD = {  # name -> (task, file contents, what the line must say)
    "missing label": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                      lambda: _with(rows(), 6, "label", ""),
                      ["task.label: ", "d.csv: data row 7: the label (column 'label') is empty", "missing: drop_row"]),
    "blank cell inside a sequence": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                                     lambda: _with(rows(), 3, "s2", ""),
                                     ["data row 4: column 's2' is empty inside the sequence"]),
    "non-numeric cell in a sequence": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                                       lambda: _with(rows(), 11, "s1", "abc"),
                                       ["column 's1': non-numeric value 'abc' in data row 12"]),
    "class with one example": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                               lambda: _with(rows(), 9, "label", "c"),
                               ["task.label: ", "class 'c' has a single example (data row 10)", "at least 2"]),
    "single class": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                     lambda: rows().assign(label="a"), ["task.label: ", "has a single class ('a')"]),
    "regression label": ({"name": "csv_classify", "path": "d.csv", "label": "label"},
                         lambda: rows(500).assign(label=[f"{0.1 * i:.1f}" for i in range(500)]),
                         ["task.label: ", "500 distinct numbers in 500 rows", "regression"]),
    "empty file": ({"name": "csv_classify", "path": "d.csv", "label": "label"}, lambda: "",
                   ["task.path: ", "d.csv: the file is empty"]),
    "header only": ({"name": "csv_classify", "path": "d.csv", "label": "label"}, lambda: "s0,s1,label\n",
                    ["task.path: ", "a header line (columns: s0, s1, label) but no data rows"]),
    "label case mismatch": ({"name": "csv_classify", "path": "d.csv", "label": "Label"}, lambda: rows(),
                            ["task.label: ", "no column 'Label' (did you mean 'label'?)"]),
    "text column misspelt": ({"name": "csv_classify", "path": "d.csv", "label": "label", "text": "bdy"},
                             lambda: pd.DataFrame({"body": ["x y"] * 10, "label": ["a", "b"] * 5}),
                             ["task.text: ", "no column 'bdy' (did you mean 'body'?)"]),
    "columns list misspelt": ({"name": "csv_classify", "path": "d.csv", "label": "label", "columns": ["s0", "S1"]},
                              lambda: rows(), ["task.columns: ", "no column 'S1' (did you mean 's1'?)"]),
    "forecast column case": ({"name": "csv_forecast", "path": "d.csv", "column": "Y", "window": 5},
                             lambda: series(), ["task.column: ", "no column 'Y' (did you mean 'y'?)"]),
    "anomaly column": ({"name": "csv_anomaly", "path": "d.csv", "column": "vaule", "label": "label"},
                       lambda: series().rename(columns={"y": "value"}), ["task.column: ", "(did you mean 'value'?)"]),
    "anomaly label": ({"name": "csv_anomaly", "path": "d.csv", "column": "y", "label": "LABEL"},
                      lambda: series(), ["task.label: ", "(did you mean 'label'?)"]),
    "anomaly empty value": ({"name": "csv_anomaly", "path": "d.csv", "column": "y", "label": "label", "window": 4},
                            lambda: _with(series(), 30, "y", ""),
                            ["task.column: ", "data row 31: the value (column 'y') is empty"]),
    "forecast non-numeric cell": ({"name": "csv_forecast", "path": "d.csv", "column": "y", "window": 5},
                                  lambda: _with(series(), 40, "y", "12 kg"),  # ('n/a' is a missing value: a gap)
                                  ["task.column: ", "column 'y': non-numeric value '12 kg' in data row 41"]),
    "far label name": ({"name": "csv_classify", "path": "d.csv", "label": "species"}, lambda: rows(),
                       ["task.label: ", "no column 'species'; columns: s0, s1, s2, s3, s4, label"]),
    "translate source": ({"name": "csv_translate", "path": "d.csv", "source": "EN", "target": "fr"},
                         lambda: pd.DataFrame({"en": ["a b"] * 10, "fr": ["c d"] * 10}),
                         ["task.source: ", "(did you mean 'en'?)"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_gives_one_line_naming_file_row_and_column(case, tmp_path):
    task, content, expected = BAD[case]
    res, exp, results = run(tmp_path, task, {"d.csv": content()})
    line = one_error_line(res, exp, results)
    for part in expected:
        assert part in line, line


FLOW_CASES = ["missing label", "single class", "regression label", "header only", "label case mismatch"]


@pytest.mark.parametrize("command", ["compare", "tune"])
@pytest.mark.parametrize("case", FLOW_CASES)
def test_bad_data_stops_compare_and_tune_before_anything_is_written(case, command, tmp_path):
    """The commands of the flow (not only train) refuse bad data with the same one line."""
    task, content, expected = BAD[case]
    (tmp_path / "d.csv").write_text(content()) if isinstance(content(), str) else content().to_csv(
        tmp_path / "d.csv", index=False)
    exp = {"name": "own", "task": task, "model": MODEL, "train": TRAIN, "grid": {"model.cell": ["rnn", "gru"]}}
    if command == "tune":
        exp["search"] = {"trials": 2, "space": {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, "final_seeds": 1}
    else:
        exp["seeds"] = 2
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    results = tmp_path / "results"
    res = runner.invoke(app, [command, str(tmp_path / "exp.yaml"), "--results", str(results), "--jobs", "1"])
    line = one_error_line(res, tmp_path / "exp.yaml", results)
    for part in expected:
        assert part in line, line


def test_a_far_column_name_gets_a_bounded_list_not_every_column(tmp_path):
    wide = pd.DataFrame(np.zeros((4, 362), dtype=int), columns=[f"feature_{i:03d}" for i in range(362)])
    wide["label"] = ["a", "b", "a", "b"]
    res, exp, results = run(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "kind"}, {"d.csv": wide})
    line = one_error_line(res, exp, results)
    assert "no column 'kind'; 363 columns, first: feature_000, feature_001" in line, line
    assert "feature_100" not in line and len(line) < 400, line


def test_missing_drop_row_leaves_rows_out_and_says_which(tmp_path):
    df = _with(_with(rows(), 6, "label", ""), 3, "s2", "")
    task = {"name": "csv_classify", "path": "d.csv", "label": "label", "missing": "drop_row"}
    res, exp, results = run(tmp_path, task, {"d.csv": df})
    assert res.exit_code == 0, res.output
    assert "note: " in res.output and "left out 2 of 40 rows that miss a value (missing: drop_row): data rows 4, 7" \
        in res.output, res.output
    summary = next(results.glob("own/*/summary.json"))
    assert summary.is_file()
    from grucli.tasks import TASKS
    from grucli.config import load_experiment
    from grucli.grid import expand

    data = TASKS["csv_classify"].build(expand(load_experiment(exp))[0].config.task)
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 38


def test_trailing_empty_cells_still_end_a_shorter_sequence(tmp_path):
    df = rows()
    df.loc[df.label == "a", ["s3", "s4"]] = ""
    res, exp, results = run(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label"}, {"d.csv": df})
    assert res.exit_code == 0, res.output
    assert "left out" not in res.output


def test_forecast_gaps_are_announced_when_filled(tmp_path):
    df = _with(_with(series(), 20, "y", ""), 50, "y", "")
    res, exp, results = run(tmp_path, {"name": "csv_forecast", "path": "d.csv", "column": "y", "window": 5},
                            {"d.csv": df})
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if line.startswith("note: ")]
    assert any("2 empty cell(s) (data rows 21, 51): `gaps: interpolate` fills them" in n for n in notes), res.output


def test_anomaly_missing_drop_row(tmp_path):
    df = _with(series(), 30, "y", "")
    task = {"name": "csv_anomaly", "path": "d.csv", "column": "y", "label": "label", "window": 4, "missing": "drop_row"}
    res, exp, results = run(tmp_path, task, {"d.csv": df})
    assert res.exit_code == 0, res.output
    assert "left out 1 of 120 rows that miss a value (missing: drop_row): data row 31" in res.output, res.output


def test_the_missing_key_at_its_default_keeps_old_run_ids(tmp_path):
    """Run ids of configs written before `missing` existed (computed with that code)."""
    from grucli.config import load_experiment
    from grucli.grid import expand

    (tmp_path / "rows.csv").write_text("s0,s1,label\n1,2,a\n3,4,b\n5,6,a\n7,8,b\n")
    (tmp_path / "series.csv").write_text("y,v,label\n" + "".join(f"{i},{i},{int(i == 5)}\n" for i in range(20)))
    ids = {}
    for t in [{"name": "csv_classify", "path": "rows.csv", "label": "label"},
              {"name": "csv_forecast", "path": "series.csv", "column": "y"},
              {"name": "csv_anomaly", "path": "series.csv", "column": "v", "label": "label"}]:
        (tmp_path / "e.yaml").write_text(yaml.safe_dump({"name": "x", "task": t}))
        ids[t["name"]] = expand(load_experiment(tmp_path / "e.yaml"))[0].run_id
    assert ids == {"csv_classify": "a7833f01612f", "csv_forecast": "9ec3f56d1167", "csv_anomaly": "7e62ee47f2d4"}


# --------------------------------------------------------------------------- small splits
def test_small_validation_and_test_splits_get_one_note_line(tmp_path):
    res, exp, results = run(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label"}, {"d.csv": rows(40)})
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if "validation holds" in line]
    assert len(notes) == 1, res.output
    assert notes[0].startswith("note: ") and "validation holds 4 sequences: early stopping" in notes[0]
    assert "test holds 8 sequences (one is 0.12 of an accuracy): the intervals over seeds" in notes[0]


def test_forecast_and_anomaly_count_windows_and_large_splits_get_no_note(tmp_path):
    from grucli.tasks.anomaly import CsvAnomalyConfig, build_csv_anomaly
    from grucli.tasks.user_files import CsvClassifyConfig, CsvForecastConfig, build_csv_classify, build_csv_forecast

    rows(400).to_csv(tmp_path / "big.csv", index=False)
    big = build_csv_classify.__wrapped__(CsvClassifyConfig(path=str(tmp_path / "big.csv"), label="label"))
    assert len(big.val) >= 30 and len(big.test) >= 30 and big.info["notes"] == []
    series(120).to_csv(tmp_path / "s.csv", index=False)
    fc = build_csv_forecast.__wrapped__(CsvForecastConfig(path=str(tmp_path / "s.csv"), column="y", window=5))
    assert len(fc.val) < 30
    assert [n for n in fc.info["notes"] if f"validation holds {len(fc.val)} windows" in n and "accuracy" not in n]
    an = build_csv_anomaly.__wrapped__(CsvAnomalyConfig(path=str(tmp_path / "s.csv"), column="y", window=4))
    assert any(f"validation holds {len(an.val)} windows" in n for n in an.info["notes"])


# --------------------------------------------------------------------------- official splits
def _build(tmp_path, task: dict):
    from grucli.config import load_experiment
    from grucli.grid import expand
    from grucli.tasks import TASKS

    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({"name": "own", "task": task}))
    run_ = expand(load_experiment(tmp_path / "exp.yaml"))[0]
    return TASKS[task["name"]].build.__wrapped__(run_.config.task), run_


def test_a_split_column_keeps_the_official_split_and_is_not_a_feature(tmp_path):
    df = rows(60)
    df["s0"] = [str(i) for i in range(60)]  # the row number, to find rows again after z-scoring
    df["split"] = ["train"] * 36 + ["Val"] * 8 + ["test"] * 16
    df.to_csv(tmp_path / "d.csv", index=False)
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label", "split": "split"})
    assert (len(data.train), len(data.val), len(data.test)) == (36, 8, 16)
    assert data.input_size == 1 and data.train.x.shape[1] == 5  # s0..s4, the split column left out
    # the test rows are rows 44..59: their s0 (first step) is the largest after scaling
    assert float(data.test.x[:, 0, 0].min()) > float(data.train.x[:, 0, 0].max())
    assert data.info["split"] == "official"
    # no row says val: validation carved from train by val_frac
    df["split"] = ["train"] * 44 + ["test"] * 16
    df.to_csv(tmp_path / "d.csv", index=False)
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label", "split": "split",
                                "val_frac": 0.25})
    assert len(data.test) == 16 and len(data.val) == 12 and len(data.train) == 32  # 6 of each class's 22
    assert "carved from train" in data.info["split"]


def test_a_separate_test_file_relative_to_the_experiment_and_in_the_run_id(tmp_path):
    rows(40).to_csv(tmp_path / "train.csv", index=False)
    rows(12, seed=1).to_csv(tmp_path / "test.csv", index=False)
    task = {"name": "csv_classify", "path": "train.csv", "test_path": "test.csv", "label": "label"}
    data, run_ = _build(tmp_path, task)
    assert len(data.test) == 12 and len(data.train) + len(data.val) == 40
    assert run_.config.task.test_path == str((tmp_path / "test.csv").resolve())
    rows(12, seed=2).to_csv(tmp_path / "test.csv", index=False)
    _, again = _build(tmp_path, task)
    assert again.run_id != run_.run_id  # other test data, another run id


def test_official_split_on_a_text_column(tmp_path):
    df = pd.DataFrame({"body": ["good fine"] * 15 + ["bad awful"] * 15, "label": ["pos"] * 15 + ["neg"] * 15})
    df["part"] = (["train"] * 10 + ["test"] * 5) * 2
    df.to_csv(tmp_path / "d.csv", index=False)
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label", "text": "body",
                                "split": "part", "min_count": 1})
    assert len(data.test) == 10 and len(data.train) + len(data.val) == 20 and len(data.val) >= 2


SPLIT_ERRORS = {
    "odd split value": ({"split": "split"}, lambda d: d.assign(split=["train"] * 30 + ["tset"] + ["test"] * 9),
                        ["task.split: ", "data row 31: column 'split' says 'tset'; expected train, val or test"]),
    "no test rows": ({"split": "split"}, lambda d: d.assign(split="train"),
                     ["task.split: ", "the official split (column 'split') has no test rows"]),
    "missing test file": ({"test_path": "nope.csv"}, lambda d: d, ["task.test_path: ", "nope.csv: file not found"]),
}


@pytest.mark.parametrize("case", sorted(SPLIT_ERRORS))
def test_official_split_errors_are_one_line(case, tmp_path):
    extra, make, expected = SPLIT_ERRORS[case]
    task = {"name": "csv_classify", "path": "d.csv", "label": "label", **extra}
    res, exp, results = run(tmp_path, task, {"d.csv": make(rows(40))})
    line = one_error_line(res, exp, results)
    for part in expected:
        assert part in line, line


def test_split_and_test_path_together_are_refused(tmp_path):
    task = {"name": "csv_classify", "path": "d.csv", "label": "label", "split": "s", "test_path": "t.csv"}
    res, exp, results = run(tmp_path, task, {"d.csv": rows(), "t.csv": rows()})
    assert res.exit_code == 2 and "either split" in res.output and not results.exists(), res.output


# --------------------------------------------------------------------------- long format
def long_file(n_seq: int = 40, seed: int = 0) -> pd.DataFrame:
    """n_seq sequences of 5-8 steps, 3 channels (ax, ay, az), rows shuffled within each
    sequence (t says the order); class 'up' has a rising ax."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_seq):
        up, T = i % 2 == 0, 5 + i % 4
        for t in rng.permutation(T):
            out.append({"id": f"s{i}", "t": int(t), "ax": round((t if up else -t) + rng.normal(0, 0.1), 3),
                        "ay": round(rng.normal(), 3), "az": round(rng.normal(), 3), "label": "up" if up else "down"})
    return pd.DataFrame(out)


def test_a_long_file_gives_one_multichannel_sequence_per_id_in_time_order(tmp_path):
    df = long_file()
    df.to_csv(tmp_path / "d.csv", index=False)
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label", "id": "id", "time": "t"})
    assert data.input_size == 3 and sum(len(s) for s in (data.train, data.val, data.test)) == 40
    assert data.info["columns"] == 3
    for s in (data.train, data.val, data.test):
        assert set(s.lengths.tolist()) <= {5, 6, 7, 8}
        for x, n, y in zip(s.x, s.lengths, s.y):
            ax = x[:n, 0]
            steps = ax[1:] - ax[:-1]  # sorted by t: ax rises for up (class 1), falls for down (class 0)
            assert bool((steps > 0).all()) == (int(y) == 1)


LONG_ERRORS = {
    "label changes": (lambda d: _with(d, 3, "label", "down" if d.loc[3, "label"] == "up" else "up"),
                      ["task.label: ", "the label changes within it"]),
    "empty channel cell": (lambda d: _with(d, 7, "ay", ""), ["task.path: ", "column 'ay' is empty in data row 8",
                                                            "sequence 's1'"]),
    "wrong id column": (lambda d: d.rename(columns={"id": "ID"}), ["task.id: ", "no column 'id' (did you mean 'ID'?)"]),
    "empty time cell": (lambda d: _with(d, 7, "t", ""), ["task.time: ", "the time (column 't') is empty in data row 8",
                                                         "sequence 's1'"]),  # (was read silently)
}


@pytest.mark.parametrize("case", sorted(LONG_ERRORS))
def test_long_format_errors_are_one_line(case, tmp_path):
    make, expected = LONG_ERRORS[case]
    task = {"name": "csv_classify", "path": "d.csv", "label": "label", "id": "id", "time": "t"}
    res, exp, results = run(tmp_path, task, {"d.csv": make(long_file())})
    line = one_error_line(res, exp, results)
    for part in expected:
        assert part in line, line


def test_long_format_drop_row_leaves_the_whole_sequence_out(tmp_path):
    df = _with(long_file(), 7, "ay", "")
    df.to_csv(tmp_path / "d.csv", index=False)
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "d.csv", "label": "label", "id": "id",
                                "missing": "drop_row"})
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 39
    assert any("left out 1 of 40 sequences that miss a value (missing: drop_row): sequence 's1'" in n
               for n in data.info["notes"])


# --------------------------------------------------------------------------- .ts files of your own
TS = """# a comment
% a comment as in ARFF
@problemName Tiny
@timeStamps false
@univariate false
@classLabel true a b
@data
"""


def ts_cases(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        T = 4 + i % 3
        chans = [",".join(f"{v:.3f}" for v in rng.normal(size=T)) for _ in range(2)]
        lines.append(":".join(chans) + (":a" if i % 2 else ":b"))
    return "\n".join(lines) + "\n"


def test_your_own_ts_files_train_and_test(tmp_path):
    (tmp_path / "m_TRAIN.ts").write_text(TS + ts_cases(30))
    (tmp_path / "m_TEST.ts").write_text(TS + ts_cases(10, seed=1))
    data, _ = _build(tmp_path, {"name": "csv_classify", "path": "m_TRAIN.ts", "test_path": "m_TEST.ts"})
    assert data.input_size == 2 and len(data.test) == 10 and len(data.train) + len(data.val) == 30
    assert data.info["class_names"] == ["a", "b"]


TS_ERRORS = {
    "no @data": (TS.replace("@data\n", "") , "no @data line"),
    "data before the header ends": ("1,2:3,4:a\n" + TS, ":1: a data line before @data"),
    "classLabel without true": (TS.replace("@classLabel true a b", "@classLabel a b"), "@classLabel must say true"),
    "channels differ": (TS + "1,2:3,4:a\n1,2:b\n", ":9: 1 channel(s), the cases before have 2"),
    "class not declared": (TS + "1,2:3,4:a\n1,2:3,4:c\n", ":9: class 'c' is not one @classLabel declares (a, b)"),
    "empty file": ("", "no @data line"),
}


@pytest.mark.parametrize("case", sorted(TS_ERRORS))
def test_a_malformed_ts_file_is_one_line(case, tmp_path):
    content, expected = TS_ERRORS[case]
    res, exp, results = run(tmp_path, {"name": "csv_classify", "path": "m.ts"}, {"m.ts": content})
    line = one_error_line(res, exp, results)
    assert "task.path: " in line and expected in line, line


# --------------------------------------------------------------------------- csv_anomaly, several channels
def two_channel_series(n: int = 400) -> pd.DataFrame:
    t = np.arange(n)
    a, b = np.sin(2 * np.pi * t / 20), np.cos(2 * np.pi * t / 25)
    b[300:305] += 4.0  # the anomaly is in the second channel only
    return pd.DataFrame({"a": a.round(4), "b": b.round(4), "label": ((t >= 300) & (t < 305)).astype(int)})


def test_csv_anomaly_forecasts_several_channels_together(tmp_path):
    two_channel_series().to_csv(tmp_path / "d.csv", index=False)
    data, run_ = _build(tmp_path, {"name": "csv_anomaly", "path": "d.csv", "channels": ["a", "b"], "label": "label",
                                   "window": 10, "normal_frac": 0.5})
    assert data.input_size == 2 and data.output_size == 2
    assert data.train.x.shape[1:] == (10, 2) and data.train.y.shape[1] == 4  # a, b, label, scored
    assert float(data.test.y[:, 2].sum()) == 5  # the 5 anomalous steps are test targets
    # the objective scores a step by its error over both channels: a forecaster right on a and
    # wrong on b exactly at the anomaly finds it (PR-AUC 1); one wrong on a elsewhere does not
    import torch

    from grucli.objectives import AnomalyForecast

    y = data.test.y
    wrong_on_b = y[:, :2].clone()
    wrong_on_b[y[:, 2] == 1, 1] += 3.0
    assert AnomalyForecast(1.0).metrics(wrong_on_b, y)["pr_auc"] == pytest.approx(1.0)
    elsewhere = y[:, :2].clone()
    elsewhere[y[:, 2] == 0, 0] += torch.linspace(0, 3, int((y[:, 2] == 0).sum()))
    assert AnomalyForecast(1.0).metrics(elsewhere, y)["pr_auc"] < 0.5
    assert torch.equal(AnomalyForecast(1.0).loss_terms(y[:, :2], y), torch.zeros(len(y)))
    res, exp, results = run(tmp_path, {"name": "csv_anomaly", "path": "d.csv", "channels": ["a", "b"],
                                       "label": "label", "window": 10, "normal_frac": 0.5}, {})
    assert res.exit_code == 0, res.output


def test_csv_anomaly_channel_errors_name_the_column(tmp_path):
    df = _with(two_channel_series(), 40, "b", "")
    task = {"name": "csv_anomaly", "path": "d.csv", "channels": ["a", "b"], "label": "label", "window": 10}
    line = one_error_line(*run(tmp_path, task, {"d.csv": df}))
    assert "task.channels: " in line and "data row 41: the value (column 'b') is empty" in line, line
    line = one_error_line(*run(tmp_path, {**task, "channels": ["a", "B"]}, {"d.csv": two_channel_series()}))
    assert "task.channels: " in line and "no column 'B' (did you mean 'b'?)" in line, line
