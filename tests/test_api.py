"""The notebook API (grucli.compare / tune / load): the same runner, reader and figures as
the commands, errors raised (never an exit), silent without progress, light to import, and
the example notebook executed end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

import grucli
from grucli.cli import app
from grucli.errors import ConfigError, GrucliError

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter from the checkout's root; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_import_grucli_and_its_api_names_load_no_torch():
    code = ("import sys, grucli\n"
            "assert 'pandas' not in sys.modules, 'import grucli alone loads pandas'\n"
            "grucli.compare, grucli.load, grucli.tune, grucli.GrucliError\n"
            "assert callable(grucli.tune) and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n")
    _python(code)


def test_tune_is_the_package_and_the_function_whichever_is_imported_first():
    code = ("import grucli.tune.run as tuning\nfrom grucli.tune import study\nimport grucli\n"
            "assert grucli.tune.run is tuning and grucli.tune.study is study\n"
            "try:\n    grucli.tune('missing.yaml', progress=False)\n"
            "except grucli.ConfigError as e:\n    print(e)\n")
    done = _python(code)
    assert done.stdout.strip() == "missing.yaml: experiment file not found"


def test_compare_trains_silently_and_returns_what_the_cli_shows(write_yaml, tiny_experiment, results, capfd):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru"]}, seeds=[0]))
    res = grucli.compare(path, set={"seeds": [0, 1], "train.lr": 0.002}, jobs=1, results=results, progress=False)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == "", printed

    runs = res.runs
    assert len(runs) == 4 and set(runs["state"]) == {"ok"}
    assert set(runs["seed"]) == {0, 1} and set(runs["config.train.lr"]) == {0.002}, "the set mapping is applied"
    assert set(res.summary["cell"]) == {"rnn", "gru"} and set(res.summary["n"]) == {2}

    shown = CliRunner().invoke(app, ["compare", str(path), "--set", "seeds=[0,1]", "--set", "train.lr=0.002",
                                     "--results", str(results), "--show"])
    assert shown.exit_code == 0, shown.output
    assert res.answer and all(line in shown.output for line in res.answer), (res.answer, shown.output)

    hist = res.histories
    assert list(hist.columns[:4]) == ["experiment", "run_id", "cell", "seed"]
    assert len(hist) == sum(len(pd.read_csv(results / "tiny_adding" / r / "history.csv")) for r in runs["run_id"])
    one = runs["run_id"].iloc[0]
    pd.testing.assert_frame_equal(res.history(one), pd.read_csv(results / "tiny_adding" / one / "history.csv"),
                                  check_dtype=False)

    stamps = {p: p.stat().st_mtime_ns for p in (results / "tiny_adding").glob("*/summary.json")}
    again = grucli.compare(path, set=["seeds=[0,1]", "train.lr=0.002"], jobs=1, results=results, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "the second call resumes: nothing retrained"
    assert again.answer == res.answer


def test_load_gives_the_reports_figures(write_yaml, tiny_experiment, results, tmp_path):
    path = write_yaml(tiny_experiment(grid={"model.cell": ["rnn", "gru"]}, seeds=[0, 1]))
    assert CliRunner().invoke(app, ["compare", str(path), "--jobs", "1", "--results", str(results)]).exit_code == 0
    res = grucli.load(results / "tiny_adding")
    figures = res.figures()
    assert figures and all(isinstance(f, Figure) for f in figures.values())
    assert set(res.captions) == set(figures)
    written = res.report(tmp_path / "report", formats=("md",))
    assert [p.name for p in written] == ["report.md"]
    stems = {p.stem for p in (tmp_path / "report" / "figures").glob("*.png")}
    assert stems == set(figures), "the same figures as the report, by the same names"
    assert grucli.load(results).answer == res.answer, "a results root reads the same"


def test_errors_raise_with_the_clis_line_and_never_exit(write_yaml, tiny_experiment, results):
    path = write_yaml(tiny_experiment())
    with pytest.raises(ConfigError, match="train.epochz"):
        grucli.compare(path, set={"train.epochz": 3}, results=results, progress=False)
    with pytest.raises(GrucliError, match="jobs=0: must be at least 1"):
        grucli.compare(path, jobs=0, results=results, progress=False)
    with pytest.raises(GrucliError, match="no such results folder"):
        grucli.load(results / "nothing")
    assert not results.exists(), "nothing written"


def test_tune_returns_the_study_and_its_answer(write_yaml, tiny_experiment, results, capfd):
    exp = tiny_experiment(name="tiny_tune", grid={"model.cell": ["rnn", "gru"]})
    exp["search"] = {"trials": 2, "sampler": "random", "pruner": "none",
                     "space": {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, "final_seeds": 2}
    study = grucli.tune(write_yaml(exp), jobs=1, results=results, progress=False)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == "", printed
    assert list(study.tuned["arm"]) == ["model.cell=rnn", "model.cell=gru"]
    assert list(study.tuned["trials"]) == [2, 2] and list(study.tuned["final_n"]) == [2, 2]
    assert len(study.trials) == 4 and set(study.trials["experiment"]) == {"tiny_tune"}
    assert any(line.startswith("tiny_tune, at an equal budget of 2 trials per cell") for line in study.answer)
    manifest = json.loads((results / "tiny_tune" / "tune.json").read_text())
    finals = {r for a in manifest["arms"] for r in a["final_runs"]}
    assert set(study.summary["n"]) == {2} and len(finals) == 4, "the tables judge the final runs, not the trials"


def test_the_example_notebook_runs_end_to_end(tmp_path, monkeypatch):
    """examples/quickstart.ipynb as a user runs it from examples/, at its own tiny scale,
    its results in a folder of the test's own. The kernel imports this checkout's grucli."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    params[0].source += f"\nRESULTS = {str(tmp_path / 'results')!r}"
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "examples")}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert "image/png" in kinds, "a figure is shown"
    assert "application/vnd.jupyter.widget-view+json" in kinds, "rich's progress renders in a Jupyter widget"
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Holm over 3 comparisons" in text and "at an equal budget of 3 trials per cell" in text
    assert len(list((tmp_path / "results" / "long_dependency").glob("*/summary.json"))) == 9
    assert (tmp_path / "results" / "tune_adding" / "tune.json").is_file()
