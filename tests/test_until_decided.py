"""compare --until-decided: seeds added look by look to undecided settings only, resumable,
and the Answer says at which look each setting stopped."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from grucli import tables, verdicts
from grucli.cli import app
from grucli.store import reader

runner = CliRunner()

EXP = """
name: seq
task: {name: adding, seq_len: 8, n_train: 64, n_val: 32, n_test: 32}
model: {cell: gru, hidden_size: 6}
train: {epochs: 1, max_steps: 2, batch_size: 16, lr: 1.0e-2}
grid:
  model.cell: [rnn, gru]
  task.seq_len: [6, 8]
seeds: 2
verdict: {looks: [2, 3]}
"""


def test_until_decided_adds_seeds_only_to_undecided_settings_and_says_where_it_stopped(tmp_path):
    path = tmp_path / "seq.yaml"
    path.write_text(EXP)
    res = tmp_path / "results"
    out = runner.invoke(app, ["compare", str(path), "--results", str(res), "--until-decided", "--jobs", "1"])
    assert out.exit_code == 0, out.output
    assert "look 1 (2 seeds per cell" in out.output
    exp_dir = res / "seq"
    info = json.loads((exp_dir / "experiment.json").read_text())
    assert info["until_decided"] is True and info["verdict"]["looks"] == [2, 3]
    runs = reader.collect([exp_dir], histories=False).runs
    per_setting = runs.groupby(["config.task.seq_len", "cell"]).size()
    assert set(per_setting) <= {2, 3}  # the first look's seeds everywhere, the second's only where undecided
    col = reader.collect([exp_dir], histories=False)
    (view,) = tables.task_views(col.runs, col.experiments)
    assert view.sequential and view.declared.looks == [2, 3]
    lines = [line for line in verdicts.answers(view, tables.summary_table(view), verdicts.head_to_head(view))
             if line.startswith("adding, task.seq_len=")]
    assert len(lines) == 2
    for line in lines:
        seq_len = int(line.split("task.seq_len=")[1].split(":")[0])
        n = int(per_setting.loc[(seq_len, "gru")])
        assert f"at look {1 if n == 2 else 2} of 2 ({n} seeds per cell" in line, line
        assert "Holm over 1 comparison" in line
    # resumable: the same command trains nothing more
    again = runner.invoke(app, ["compare", str(path), "--results", str(res), "--until-decided", "--jobs", "1"])
    assert again.exit_code == 0 and len(reader.collect([exp_dir], histories=False).runs) == len(runs)
    # --show with --until-decided shows every look's runs, as the run itself ended (it showed only
    # the first look's seeds and called the later ones "not in this grid")
    shown = runner.invoke(app, ["compare", str(path), "--results", str(res), "--until-decided", "--show"])
    assert shown.exit_code == 0 and "not in this grid" not in shown.output, shown.output
    assert shown.output.count("│ 3 │") == int((per_setting == 3).sum()), shown.output


def test_a_bad_verdict_section_is_one_line_per_mistake(tmp_path):
    """Both mistakes are said, one `error:` line each (the second was hidden behind '[+1 more]')."""
    path = tmp_path / "bad.yaml"
    path.write_text(EXP.replace("verdict: {looks: [2, 3]}", "verdict: {looks: [3, 2], margn: 1.1}"))
    out = runner.invoke(app, ["compare", str(path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert out.output.strip().splitlines() == [
        f"error: {path}: unknown key 'verdict.margn' (did you mean 'verdict.margin'?)",
        f"error: {path}: verdict.looks: must increase, got [3, 2]"], out.output
    assert not (tmp_path / "r").exists()


TUNE = """
name: tseq
task: {name: adding, seq_len: 6, n_train: 64, n_val: 32, n_test: 32}
model: {cell: gru, hidden_size: 4}
train: {epochs: 1, max_steps: 2, batch_size: 16}
grid:
  model.cell: [rnn, gru]
search:
  trials: 2
  sampler: random
  pruner: none
  final_seeds: 2
  space:
    train.lr: {log_uniform: [1.0e-3, 1.0e-2]}
verdict: {looks: [2, 3]}
"""


def test_tune_until_decided_adds_final_seeds_in_looks(tmp_path):
    from grucli.tune import analysis

    path = tmp_path / "tseq.yaml"
    path.write_text(TUNE)
    out = runner.invoke(app, ["tune", str(path), "--results", str(tmp_path / "r"), "--until-decided", "--jobs", "1"])
    assert out.exit_code == 0, out.output
    t = analysis.load(tmp_path / "r" / "tseq")
    assert t.manifest["until_decided"] is True
    n = {len(a["final_runs"]) for a in t.manifest["arms"]}
    assert len(n) == 1 and n <= {2, 3}  # every arm at the same look
    view = analysis.view_of(t)
    look = verdicts.judge(view, view.runs)
    assert view.sequential and look.seeds == n.pop()
    # a decided first look stops there; an undecided one goes on to the cap
    assert look.decided or look.index == 2


def test_a_margin_that_means_nothing_on_the_metric_scale_is_one_line(tmp_path):
    """adding reports MSE (log scale): its margin is a ratio above 1; 0.5 is refused before
    anything is written, by compare and by tune."""
    path = tmp_path / "m.yaml"
    path.write_text(EXP.replace("verdict: {looks: [2, 3]}", "verdict: {margin: 0.5}"))
    out = runner.invoke(app, ["compare", str(path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output
    assert "verdict.margin is a ratio on the log scale" in out.output and not (tmp_path / "r").exists()
    tuned = tmp_path / "t.yaml"
    tuned.write_text(TUNE.replace("verdict: {looks: [2, 3]}", "verdict: {margin: 0.5}"))
    out = runner.invoke(app, ["tune", str(tuned), "--results", str(tmp_path / "r")])
    assert out.exit_code == 2 and "verdict.margin" in out.output and not (tmp_path / "r").exists()
