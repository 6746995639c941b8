"""grucli report: tables, plot selection, robustness, and the files it writes. Results
folders are written by tests/synthetic_results.py (no training), except one tiny real run."""

import json
import re
import shutil

import pandas as pd
import pytest
from synthetic_results import write_experiment, write_run
from typer.testing import CliRunner

from grucli.cli import app
from grucli import tables, verdicts
from grucli.report import build_report, figure, plots
from grucli.store.reader import collect

PNG_ONLY = ("png",)  # SVG doubles the drawing time; the CLI test covers it


def views_of(*dirs):
    return tables.task_views(collect(list(dirs)).runs)


def test_plot_selection_follows_what_varies(tmp_path):
    swept = write_experiment(tmp_path, "swept", seq_lens=(10, 20, 40))
    (view,) = views_of(swept)
    assert view.settings == ["config.task.seq_len"]
    col = collect([swept])
    assert plots.select(view, col.histories) == ["forest", "learning_curves", "difficulty", "cost", "pareto"]

    flat = write_experiment(tmp_path, "flat", seq_lens=(10,))
    (view,) = views_of(flat)
    assert view.settings == []
    assert "difficulty" not in plots.select(view, collect([flat]).histories)

    sized = write_experiment(tmp_path, "sized", seq_lens=(10,), hidden_sizes=(16, 32, 64))
    (view,) = views_of(sized)
    assert view.settings == ["config.model.hidden_size"]
    assert "size" in plots.select(view, collect([sized]).histories)
    assert "difficulty" not in plots.select(view, collect([sized]).histories)

    # seq_len and hidden_size change together (as in a zip): neither is swept with the other fixed
    zipped = write_experiment(tmp_path, "zipped", seq_lens=(10, 20), hidden_sizes=(16, 32))
    for run in zipped.iterdir():
        cfg = (run / "config.yaml").read_text() if run.is_dir() else ""
        if ("seq_len: 10" in cfg) != ("hidden_size: 16" in cfg):
            shutil.rmtree(run)
    (view,) = views_of(zipped)
    assert view.settings == ["config.task.seq_len", "config.model.hidden_size"]
    assert plots.select(view, collect([zipped]).histories) == ["forest", "learning_curves", "cost", "pareto"]


def test_summary_params_and_head_to_head(tmp_path):
    (view,) = views_of(write_experiment(tmp_path))
    s = tables.summary_table(view)
    assert len(s) == 6 and set(s["n"]) == {3}
    row = s[(s["cell"] == "lstm") & (s["task.seq_len"] == 10)].iloc[0]
    assert row["mean"] == pytest.approx(0.02 * (1 + 0.05))  # seeds 0, 1, 2 -> factor 1.00, 1.05, 1.10
    assert row["baseline"] == pytest.approx(1 / 6) and row["params"] == 1297

    p = tables.params_table(view).set_index("cell")
    assert p.loc["gru", "ratio_to_lstm"] == pytest.approx(977 / 1297)
    assert p.loc["lstm", "ratio_to_lstm"] == 1.0

    h = verdicts.head_to_head(view)
    metric = h[h["family"] == "metric"]
    pairs = metric[["a", "b"]].drop_duplicates().values.tolist()
    assert pairs == [["gru", "lstm"], ["gru", "rnn"], ["lstm", "rnn"]]  # gru vs lstm first
    mse = metric[metric["setting"] == "task.seq_len=10"].set_index(["a", "b"])
    assert mse.loc[("gru", "lstm"), "verdict"] == "worse"  # from a's side: lstm better
    assert mse.loc[("gru", "rnn"), "verdict"] == "better"
    assert mse.loc[("lstm", "rnn"), "p_diff"] < 0.001
    assert set(mse["family_size"]) == {3} and mse["effect"].eq("ratio").all()
    assert mse.loc[("gru", "lstm"), "value"] == pytest.approx(0.05 / 0.02)  # ratio of geometric means
    speed = h[(h["family"] == "timing") & (h["a"] == "gru") & (h["b"] == "lstm")]
    assert set(speed["verdict"]) == {"better"}  # runs alone (no pack): independent timings, gru faster
    base = h[h["family"] == "baseline"].set_index(["setting", "a"])["verdict"]
    assert base[("task.seq_len=10", "gru")] == base[("task.seq_len=10", "lstm")] == "better"  # 0.05, 0.02 vs 1/6
    assert base[("task.seq_len=10", "rnn")] == "equivalent"  # 0.15-0.165 vs 0.167: within x/÷ 1.25
    assert base[("task.seq_len=20", "rnn")] == "worse"  # 0.30-0.33: the baseline wins


def test_report_files_from_synthetic_folder(tmp_path):
    exp = write_experiment(tmp_path)
    res = build_report([exp], figure_formats=PNG_ONLY)
    out = exp / "report"
    assert res.out == out and res.runs == 18 and res.notes == []
    md = (out / "report.md").read_text()
    order = [md.index(h) for h in ("## What was run", "## Head-to-head verdicts", "## Tables", "## Figures")]
    assert order == sorted(order)
    assert "3 seeds (0–2)" in md and "Test CPU" in md and "torch 2.13.0+cpu" in md
    assert "lstm better" in md and "Holm over 3 comparisons" in md  # the family is the setting's 3 pairs
    for name in ("summary", "params", "head_to_head", "runs", "not_averaged"):
        assert (out / "tables" / f"{name}.csv").exists()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["adding_cost.png", "adding_difficulty_seq_len.png", "adding_forest.png",
                    "adding_learning_curves.png", "adding_pareto.png"]
    for name in pngs:
        assert md.count(f"(figures/{name})") == 1
    # the forest plot is the Answer's picture: right after its lines, before anything else
    assert md.index("## Answer") < md.index("lstm better") < md.index("(figures/adding_forest.png)") < md.index(
        "## What was run")
    assert md.index("## Figures") < md.index("(figures/adding_learning_curves.png)")
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    assert "<script>" in html and 'class="sortable"' in html


def test_one_seed_says_no_interval(tmp_path):
    exp = write_experiment(tmp_path, seeds=1, seq_lens=(10,))
    res = build_report([exp], formats=("md",), figure_formats=PNG_ONLY)
    assert any("one seed" in n and "no confidence intervals" in n for n in res.notes)
    s = pd.read_csv(exp / "report" / "tables" / "summary.csv")
    assert s["lo"].isna().all() and set(s["n"]) == {1}
    h = pd.read_csv(exp / "report" / "tables" / "head_to_head.csv")
    assert h["verdict"].str.startswith("not testable").all()


def test_one_cell_has_no_head_to_head(tmp_path):
    exp = write_experiment(tmp_path, cells=("gru",))
    res = build_report([exp], formats=("md",), figure_formats=PNG_ONLY)
    assert any("only one cell (gru): no head-to-head" in n for n in res.notes)
    md = (exp / "report" / "report.md").read_text()
    assert "no head-to-head" in md
    h = pd.read_csv(exp / "report" / "tables" / "head_to_head.csv")
    assert set(h["family"]) == {"baseline"}  # no pair of cells; the one cell is still checked against the baseline


def test_broken_and_unfinished_runs_are_named_and_never_averaged(tmp_path):
    exp = write_experiment(tmp_path, seq_lens=(10,))
    ids = sorted(p.name for p in exp.iterdir() if p.is_dir())  # rnn seeds 0-2, gru 0-2, lstm 0-2
    (exp / ids[0] / "summary.json").write_text("{not json")  # rnn: corrupt
    old = json.loads((exp / ids[4] / "summary.json").read_text())
    for key in ("schema", "metric", "goal"):
        old.pop(key)
    (exp / ids[4] / "summary.json").write_text(json.dumps(old))  # gru: an older grucli's summary
    (exp / ids[8] / "summary.json").unlink()  # lstm: still in progress, config.yaml and history only
    (exp / ids[3] / "history.csv").unlink()  # gru: finished, history lost
    write_run(exp, "ffffffffffff", "lstm", 10, 7, status="diverged")
    write_run(exp, "eeeeeeeeeeee", "gru", 10, 8, status="failed")

    res = build_report([exp], formats=("md", "html"), figure_formats=PNG_ONLY)
    text = "\n".join(res.notes)
    assert f"synth/{ids[0]}: summary.json is unreadable" in text
    assert f"synth/{ids[4]}: summary.json lacks metric, goal (no schema field: an older grucli)" in text
    assert f"synth/{ids[3]}: history.csv missing" in text
    assert "1 run(s) in progress" in text and "2 run(s) diverged or failed" in text

    s = pd.read_csv(exp / "report" / "tables" / "summary.csv").set_index("cell")
    assert s.loc["rnn", "n"] == 2
    assert s.loc["gru", "n"] == 2 and s.loc["gru", "failed"] == 1
    assert s.loc["lstm", "n"] == 2 and s.loc["lstm", "diverged"] == 1 and s.loc["lstm", "in_progress"] == 1
    excluded = pd.read_csv(exp / "report" / "tables" / "not_averaged.csv")
    assert set(excluded["state"]) == {"unreadable", "in progress", "diverged", "failed"}
    assert (exp / "report" / "report.html").exists()


def test_nothing_finished_yet(tmp_path):
    exp = write_experiment(tmp_path, cells=("gru", "lstm"), seq_lens=(10,), seeds=1)
    for run in (p for p in exp.iterdir() if p.is_dir()):
        (run / "summary.json").unlink()
    res = build_report([exp], formats=("md",))
    assert res.plots == {"adding": []} and res.figures == []
    assert any("no finished runs yet" in n for n in res.notes)
    assert any("2 run(s) in progress" in n for n in res.notes)


def test_panel_titles_shorten_long_values():
    label = tables.setting_label(["config.task.path", "config.model.hidden_size"],
                                 ["/very/long/path/to/some/data/file.csv", float("nan")], max_value=16)
    assert label == "task.path=/very/l…ile.csv, model.hidden_size=unset"


def test_cli_several_experiments_into_one_report(tmp_path):
    a = write_experiment(tmp_path / "r", "a", cells=("gru",), seq_lens=(10,), seeds=2)
    b = write_experiment(tmp_path / "r", "b", cells=("lstm",), seq_lens=(10,), seeds=2)
    out = tmp_path / "combined"
    result = CliRunner().invoke(app, ["report", str(a), str(b), "--out", str(out), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists() and not (out / "report.md").exists()
    assert list((out / "figures").glob("*.svg"))
    h = pd.read_csv(out / "tables" / "head_to_head.csv")
    pairs = h.loc[h["family"] == "metric", ["a", "b"]].drop_duplicates().values.tolist()
    assert pairs == [["gru", "lstm"]]  # compared across experiments


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such results folder" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no runs here" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--format", "pdf"])
    assert result.exit_code == 2 and "--format pdf" in result.output


def test_report_from_a_real_tiny_training(tmp_path):
    exp_file = tmp_path / "tiny.yaml"
    exp_file.write_text(
        "name: tiny\ntask: {name: adding, seq_len: 5, n_train: 64, n_val: 32, n_test: 32}\n"
        "model: {hidden_size: 8}\ntrain: {epochs: 2, batch_size: 32, threads: 1}\n"
        "seeds: 2\ngrid: {model.cell: [gru, lstm]}\n")
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(exp_file), "--results", str(tmp_path / "results")])
    assert trained.exit_code == 0, trained.output
    exp = tmp_path / "results" / "tiny"
    before = {p: p.stat().st_mtime for p in exp.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["report", str(exp), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert all(p.stat().st_mtime == t for p, t in before.items())  # report only reads the runs
    s = pd.read_csv(exp / "report" / "tables" / "summary.csv")
    assert sorted(s["cell"]) == ["gru", "lstm"] and set(s["n"]) == {2}
    p = pd.read_csv(exp / "report" / "tables" / "params.csv").set_index("cell")
    assert p.loc["gru", "ratio_to_lstm"] == pytest.approx(0.75, abs=0.02)
    assert (exp / "report" / "figures" / "adding_learning_curves.png").exists()


def test_inspect_outputs_get_their_section(tmp_path):
    from matplotlib.figure import Figure

    exp = write_experiment(tmp_path, cells=("gru", "lstm"), seq_lens=(10,), seeds=1)
    run = next(p for p in sorted(exp.iterdir()) if p.is_dir())
    (run / "inspect").mkdir()
    (run / "inspect" / "inspect.json").write_text(json.dumps({
        "schema": 1, "layer": 0, "gates": {"z": {"mean": 0.8, "share_lt_0.1": 0.05, "share_gt_0.9": 0.4}},
        "hidden": {"mean_norm": 1.5}, "gradient": {"ratio": 0.01, "ratio_init": 0.001}}))
    (exp / "inspect").mkdir()
    Figure(figsize=(2, 1)).savefig(exp / "inspect" / "compare_gradient_flow.png")
    res = build_report([exp], figure_formats=PNG_ONLY)
    md = (res.out / "report.md").read_text()
    assert "## Inside the cells (grucli inspect)" in md
    assert "0.8 [5% \\| 40%]" in md and "(../inspect/compare_gradient_flow.png)" in md
    html = (res.out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list((res.out / "figures").glob("*.png"))) + 1
    assert pd.read_csv(res.out / "tables" / "inspect.csv")["grad_ratio"].tolist() == [0.01]


def test_rebuilding_removes_stale_figures_but_nothing_else(tmp_path):
    exp = write_experiment(tmp_path, seq_lens=(10, 20), seeds=2)
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "mine.png").write_bytes(b"not the report's")
    build_report([exp], out, formats=("md",), figure_formats=PNG_ONLY)
    assert (out / "figures" / "adding_difficulty_seq_len.png").exists()
    for run in [p for p in exp.iterdir() if p.is_dir() and "seq_len: 20" in (p / "config.yaml").read_text()]:
        shutil.rmtree(run)  # seq_len no longer varies: no difficulty plot
    build_report([exp], out, formats=("md",), figure_formats=PNG_ONLY)
    assert not (out / "figures" / "adding_difficulty_seq_len.png").exists()
    assert (out / "figures" / "mine.png").read_bytes() == b"not the report's"


def _errorbar_ends(fig) -> list[tuple[float, float]]:
    """(lower, upper) end of every vertical error bar drawn in a figure."""
    from matplotlib.container import ErrorbarContainer

    ends = []
    for ax in fig.axes:
        for c in ax.containers:
            if isinstance(c, ErrorbarContainer):
                for seg in c.lines[2][0].get_segments():
                    ends.append((min(seg[:, 1]), max(seg[:, 1])))
    return ends


def _as_accuracy(exp, values: dict) -> None:
    """Rewrite a synthetic folder as a bounded metric: test accuracy per (cell, seed), the
    majority class at 0.5, higher is better."""
    for path in exp.glob("*/summary.json"):
        s = json.loads(path.read_text())
        acc = values[(s["cell"], s["seed"])]
        s.update(metric="accuracy", goal="max", target=0.99, baseline={"accuracy": 0.5},
                 test={"accuracy": acc}, val={"accuracy": acc}, train={"accuracy": acc})
        path.write_text(json.dumps(s))


def test_error_bars_stay_inside_the_metric_range(tmp_path):
    """On a bounded metric with a wide spread (the issue's copy RNN: 0.49, 0.60, 1.00, a
    t interval up to 1.36) the bars stop at 1; on a log metric spanning decades (a t
    interval far below 0) they are the geometric mean's interval, above 0."""
    acc = write_experiment(tmp_path, "acc", seq_lens=(10, 20))
    spread = [0.49, 0.60, 1.00]
    _as_accuracy(acc, {(c, s): v for c in ("rnn", "gru", "lstm") for s, v in enumerate(spread)})
    (view,) = views_of(acc)
    (drawn,) = plots.difficulty(view, {})
    ends = _errorbar_ends(drawn.figure)
    assert ends and all(0.0 <= lo <= hi <= 1.0 for lo, hi in ends)
    assert max(hi for _, hi in ends) == pytest.approx(1.0)  # cut at the range, not dropped
    mean = sum(spread) / 3
    assert any(lo < mean - 0.2 for lo, _ in ends)  # still the wide interval below the mean

    mse = write_experiment(tmp_path, "mse", seq_lens=(10, 20))
    for path in mse.glob("*/summary.json"):  # seeds 1e-4, 1e-2, 1: mean 0.34, t interval from -1.1
        s = json.loads(path.read_text())
        s["test"]["mse"] = 10.0 ** (2 * s["seed"] - 4)
        path.write_text(json.dumps(s))
    (view,) = views_of(mse)
    (drawn,) = plots.difficulty(view, {})
    ends = _errorbar_ends(drawn.figure)
    assert ends and all(lo > 0 for lo, _ in ends)
    ax = drawn.figure.axes[0]
    centres = [y for c in ax.containers if c.get_label() == "gru" for y in c.lines[0].get_ydata()]
    assert centres == pytest.approx([0.01, 0.01])  # the geometric mean of 1e-4, 1e-2, 1
    (cost,) = plots.cost(view, {})
    assert all(lo >= 0 for lo, _ in _errorbar_ends(cost.figure))  # timings: log scale too


def test_estimate_and_error_bars_follow_the_scale():
    from grucli import metrics

    centre, lo, hi = figure.estimate([0.49, 0.60, 1.00], metrics.scale_of("accuracy"))
    assert centre == pytest.approx(0.6967, abs=1e-3) and hi == 1.0 and 0 < lo < 0.1
    centre, lo, hi = figure.estimate([1e-4, 1e-2, 1.0], metrics.scale_of("mse"))
    assert centre == pytest.approx(0.01) and 0 < lo < 1e-4 and hi > 1.0
    assert lo * hi == pytest.approx(centre**2)  # symmetric in logs
    assert figure.estimate([0.3], metrics.scale_of("mse")) == pytest.approx((0.3, 0.3, 0.3))  # n = 1: no bar
    below, above = figure.yerr([(0.5, 0.4, 0.8), (0.3, 0.3, 0.3), (float("nan"),) * 3])
    assert below == pytest.approx([0.1, 0.0, 0.0]) and above == pytest.approx([0.3, 0.0, 0.0])


def test_forest_rows_follow_the_verdicts(tmp_path):
    from grucli.report import forest

    (view,) = views_of(write_experiment(tmp_path, seq_lens=(10, 20)))
    h = verdicts.head_to_head(view)
    rows, cut = forest.rows(h)
    assert cut == 0
    assert [r.label for r in rows[:3]] == ["seq_len=10: gru vs lstm", "seq_len=10: gru vs rnn",
                                           "seq_len=10: lstm vs rnn"]
    assert [r.panel for r in rows] == ["metric"] * 6 + ["baseline"] * 6
    for panel in ("metric", "baseline"):
        assert [r.verdict for r in rows if r.panel == panel] == h.loc[h["family"] == panel, "verdict"].tolist()
    assert all(r.colour == forest.VERDICT_COLOURS[r.verdict] for r in rows)
    assert len({forest.VERDICT_COLOURS[w] for w in ("better", "worse", "equivalent", "undecided")}) == 4
    first = rows[0]  # read as its label: gru over lstm, a ratio above 1, lstm's win is gru's "worse"
    assert first.ratio and first.value == pytest.approx(2.5) and first.lo < 2.5 < first.hi
    assert first.verdict == "worse" and first.margin == 1.25
    base = {r.label: r for r in rows if r.panel == "baseline"}
    assert base["seq_len=10: rnn vs trivial baseline"].verdict == "equivalent"
    assert base["seq_len=20: rnn vs trivial baseline"].verdict == "worse"

    (drawn,) = plots.forest(view, {})
    assert drawn.answer and drawn.name == "adding_forest"
    cells, baseline = [ax for ax in drawn.figure.axes if ax.get_title(loc="left")]
    assert cells.get_xscale() == "log" and cells.get_xlim()[0] < 1 < cells.get_xlim()[1]
    assert [t.get_text() for t in cells.get_yticklabels()] == [r.label for r in rows if r.panel == "metric"]


def test_forest_rows_handle_missing_infinite_undecided_and_many(tmp_path):
    from grucli.report import forest

    def row(verdict, value, lo, hi, seeds=None, setting="task.seq_len=10", family="metric"):
        return {"setting": setting, "family": family, "a": "gru", "b": "lstm", "effect": "difference",
                "value": value, "lo": lo, "hi": hi, "margin": 0.02, "verdict": verdict, "seeds_needed": seeds}

    h = pd.DataFrame([row("undecided", 0.01, -0.05, 0.07, seeds=14), row("undecided", 0.0, -0.5, 0.5, seeds=5000),
                      row("not testable", 0.3, None, None), row("not testable", float("nan"), None, None),
                      row("undecided", 0.1, -float("inf"), 0.2), row("timing-only", 1, 0, 2, family="timing")])
    rows, cut = forest.rows(h)
    assert len(rows) == 5 and cut == 0  # timing rows are not the Answer's
    assert [r.note for r in rows] == ["undecided, ~14 seeds", "undecided, > 1,000 seeds", "not testable (n < 2)",
                                      "not testable (n < 2)", "undecided"]
    assert rows[2].value == 0.3 and rows[2].lo is None and rows[3].value is None
    assert rows[4].lo == -float("inf") and not rows[4].ratio
    fig = forest.figure("copy", rows, "accuracy", "max")  # draws without error: the infinite end is an arrow
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] < -0.5 and ax.get_xlim()[1] > 0.5
    assert "a better ▶" in ax.get_xlabel()  # higher is better: a's side is on the right

    many = pd.DataFrame([row("better", 0.1, 0.05, 0.15, setting=f"task.seq_len={i}") for i in range(40)])
    rows, cut = forest.rows(many, max_rows=25)
    assert len(rows) == 25 and cut == 15
    assert "15 left out" in forest.caption("copy", rows, cut)

    long = pd.DataFrame([{**row("better", 0.1, 0.05, 0.15, family="baseline"), "b": "baseline",
                          "baseline": "seasonal naive baseline",
                          "setting": "task.path=/data/some/very/long/folder/monthly.csv, model.hidden_size=64"}])
    (r,) = forest.rows(long)[0]
    assert r.label.endswith("size=64: gru vs seasonal naive baseline") and "…" in r.label  # the pair is kept
    assert r.label.startswith("path=/data") and len(r.label) <= forest.MAX_LABEL


def test_one_forest_per_task_on_its_own_scale(tmp_path):
    mse = write_experiment(tmp_path / "r", "mse", seq_lens=(10,))
    acc = write_experiment(tmp_path / "r", "acc", seq_lens=(10,))
    _as_accuracy(acc, {(c, s): {"rnn": 0.6, "gru": 0.8, "lstm": 0.9}[c] + 0.01 * s
                       for c in ("rnn", "gru", "lstm") for s in range(3)})
    for path in acc.glob("*/summary.json"):
        s = json.loads(path.read_text())
        path.write_text(json.dumps({**s, "task": "copy"}))
    res = build_report([mse, acc], tmp_path / "out", formats=("md",), figure_formats=PNG_ONLY)
    names = {p.name for p in res.figures}
    assert {"adding_forest.png", "copy_forest.png"} <= names
    md = (res.out / "report.md").read_text()
    assert md.index("(figures/adding_forest.png)") < md.index("## What was run")
    assert md.index("(figures/copy_forest.png)") < md.index("## What was run")
    views = {v.task: v for v in tables.task_views(collect([mse, acc]).runs)}
    (copy_forest,) = plots.forest(views["copy"], {})
    assert copy_forest.figure.axes[0].get_xscale() == "linear"  # a difference of accuracies, null at 0
    assert "difference" in copy_forest.caption


def test_forecast_figures_draw_the_seasonal_naive_baseline_too():
    import pandas as pd
    from matplotlib.figure import Figure

    from grucli.report.plots import _baseline_lines

    ax = Figure().add_subplot()
    runs = pd.DataFrame({"baseline_value": [0.48, 0.48], "seasonal_baseline_value": [0.14, 0.14]})
    assert _baseline_lines(ax, runs) == [0.48, 0.14]
    assert [line.get_label() for line in ax.get_lines()] == ["naive baseline", "seasonal-naive baseline"]
    ax2 = Figure().add_subplot()
    assert _baseline_lines(ax2, pd.DataFrame({"baseline_value": [0.5], "seasonal_baseline_value": [None]})) == [0.5]


def test_difficulty_axis_is_log_when_the_sweep_spans_ten_times(tmp_path):
    """Training-set sizes 250 ... 8000 (data efficiency) read on a log axis; 10 vs 20 does not."""
    import matplotlib.pyplot as plt

    for lens, scale in [((10, 20), "linear"), ((10, 40, 160), "log")]:
        exp = write_experiment(tmp_path, f"span{len(lens)}", seq_lens=lens, seeds=2)
        (view,) = views_of(exp)
        (drawn,) = plots.difficulty(view, collect([exp]).histories)
        ax = drawn.figure.axes[0]
        assert ax.get_xscale() == scale
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in lens]  # the sizes actually run
        plt.close(drawn.figure)


def test_a_single_cell_answer_keeps_its_budget_flags_and_does_not_say_did_best(tmp_path):
    import json

    import synthetic_results

    from grucli import tables
    from grucli.store import reader

    exp = synthetic_results.write_experiment(tmp_path, "one", cells=("gru",), seq_lens=(10,), seeds=2)
    for path in exp.glob("*/summary.json"):
        s = json.loads(path.read_text())
        path.write_text(json.dumps({**s, "still_improving": True, "left_baseline": False}))
    (view,) = tables.task_views(reader.collect([exp], histories=False).runs)
    (line,) = verdicts.answers(view, tables.summary_table(view), verdicts.head_to_head(view))
    assert "gru (the only cell here)" in line and "did best" not in line
    assert "at 3 epochs (12 steps) per run" in line
    assert "still improving when training stopped: gru 2/2" in line
    assert "never left the trivial baseline: gru 2/2" in line


def test_the_cost_figure_says_which_runs_trained_in_packs(tmp_path):
    exp = write_experiment(tmp_path, "packs")
    (view,) = views_of(exp)
    (alone,) = plots.cost(view, {})
    assert "packs" not in alone.caption
    for summary in exp.glob("*/summary.json"):  # the GRU's seeds trained as packs of 3
        d = json.loads(summary.read_text())
        d["timing"]["pack_size"] = 3 if d["cell"] == "gru" else 1
        summary.write_text(json.dumps(d))
    (view,) = views_of(exp)
    (packed,) = plots.cost(view, {})
    assert "6 of 18 runs trained in packs" in packed.caption and "share of their pack's steps" in packed.caption


def test_the_summary_caption_says_geometric_mean_and_a_pack_s_time_is_one_value(tmp_path):
    """(The caption said 'mean ± 95% CI' over a column of geometric means; and the seeds of a
    pack, which share one measured time, showed s/epoch '0.0102 [0.0102, 0.0102]'.)"""
    from grucli.report import compose

    exp = write_experiment(tmp_path, seq_lens=(10,))
    for path in exp.glob("*/summary.json"):
        s = json.loads(path.read_text())
        shared = {"epoch_time_s": 0.5, "throughput_seq_s": 400.0, "train_time_s": 1.5} if s["cell"] == "gru" else {}
        s["timing"].update(pack_size=3, pack_id=f"pack-{s['cell']}", **shared)
        path.write_text(json.dumps(s))
    (view,) = views_of(exp)
    caption = compose.summary_caption(view, packed=True)
    assert caption.startswith("test mse: geometric mean [95% CI] over the n ok seeds (lower is better)")
    assert "train s/epoch, latency ms/batch, latency ms/seq: geometric mean [95% CI]" in caption
    assert "throughput seq/s, peak process memory MB: mean [95% CI]" in caption and "±" not in caption
    row = tables.summary_table(view).set_index("cell").loc["gru"]
    assert row["epoch_time_s"] == pytest.approx(0.5) and row["epoch_time_s_lo"] is None  # one pack: one time
    assert row["latency_batch_ms_lo"] < row["latency_batch_ms_hi"]  # measured per run: an interval
