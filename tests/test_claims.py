"""The claims suite: the verdict rules on hand-made numbers, an evaluator on hand-made run
folders, every claims experiment loading (at full and quick scale), and `grucli claims
--quick` end to end: every claim judged, the page, figures and CSVs written, resumed
without retraining, bad input refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import synthetic_results
from typer.testing import CliRunner

from grucli import claims
from grucli.metrics import LOG, RAW
from grucli.claims import evidence, run as claims_run, verdict
from grucli.claims.verdict import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, VERDICTS
from grucli.cli import app

ROOT = Path(__file__).resolve().parents[1] / "experiments" / "claims"
runner = CliRunner()


# --------------------------------------------------------------------------- verdict rules
LOW = [0.10, 0.11, 0.09, 0.10, 0.105]
HIGH = [0.20, 0.21, 0.19, 0.20, 0.205]
NOISY = [0.05, 0.30, 0.12, 0.25, 0.08]


def test_better_is_supported_when_a_wins_beyond_its_uncertainty():
    f = verdict.better(LOW, HIGH, "min", "lstm", "gru")
    assert f.verdict == SUPPORTED and "p < 0.001" in f.evidence  # numbers.p_text: a tiny p is not 1.2e-09


def test_better_is_not_supported_when_the_other_wins():
    assert verdict.better(HIGH, LOW, "min", "lstm", "gru").verdict == NOT_SUPPORTED


def test_better_tests_on_the_log_scale():
    """A 10x MSE ratio with log-normal spread: raw values hide it, logs show it."""
    a = [1e-4 * k for k in (1, 2, 1, 3, 10)]
    b = [10 * x for x in a]
    assert verdict.better(a, b, "min", "lstm", "gru", scale=LOG).verdict == SUPPORTED
    assert verdict.better(a, b, "min", "lstm", "gru", scale=RAW).verdict == INCONCLUSIVE


def test_the_goal_sets_the_direction():
    assert verdict.better(HIGH, LOW, "max", "lstm", "gru").verdict == SUPPORTED


def test_better_is_inconclusive_when_the_intervals_overlap():
    f = verdict.better(LOW, NOISY, "min", "lstm", "gru")
    assert f.verdict == INCONCLUSIVE and "not significant" in f.evidence


def test_a_holm_adjusted_p_can_turn_a_win_inconclusive():
    raw = verdict.better(LOW, HIGH, "min", "a", "b")
    assert raw.verdict == SUPPORTED
    assert verdict.better(LOW, HIGH, "min", "a", "b", p_adjusted=0.2).verdict == INCONCLUSIVE


def test_runs_still_improving_make_a_clear_difference_inconclusive():
    f = verdict.better(LOW, HIGH, "min", "lstm", "gru", still_improving=2)
    assert f.verdict == INCONCLUSIVE and "still improving" in f.evidence


def test_one_seed_is_never_a_verdict():
    assert verdict.better([0.1], [0.9], "min", "a", "b").verdict == INCONCLUSIVE


def test_comparable_is_supported_inside_the_margin():
    a = [1.00, 1.01, 0.99, 1.00, 1.005]
    b = [1.01, 1.00, 1.00, 1.005, 0.995]
    assert verdict.comparable(a, b, "gru", "lstm", scale=LOG, margin=1.25).verdict == SUPPORTED
    assert verdict.comparable(a, b, "gru", "lstm", scale=LOG).verdict == SUPPORTED  # the scale's default, 1.25


def test_comparable_is_not_supported_when_the_gap_exceeds_the_margin():
    f = verdict.comparable(LOW, HIGH, "gru", "lstm", scale=LOG, margin=1.25)  # a ratio of 0.5
    assert f.verdict == NOT_SUPPORTED and "outside the margin" in f.evidence
    # the margin is declared, never taken from the data: an absolute 0.2 on the raw scale holds the same gap
    assert verdict.comparable(LOW, HIGH, "gru", "lstm", scale=RAW, margin=0.2).verdict == SUPPORTED


def test_comparable_is_inconclusive_when_the_interval_crosses_the_margin():
    f = verdict.comparable(LOW, NOISY, "gru", "lstm", scale=LOG, margin=1.25)
    assert f.verdict == INCONCLUSIVE and "crosses" in f.evidence


def test_below_has_a_tolerance_band():
    assert verdict.below(90, 100, "gru", "lstm", tolerance=0.05).verdict == SUPPORTED
    assert verdict.below(110, 100, "gru", "lstm", tolerance=0.05).verdict == NOT_SUPPORTED
    assert verdict.below(98, 100, "gru", "lstm", tolerance=0.05).verdict == INCONCLUSIVE


def test_overall_names_which_findings_went_which_way():
    s = verdict.Finding("torch", SUPPORTED, "")
    n = verdict.Finding("fused", NOT_SUPPORTED, "")
    assert verdict.overall([s, s]) == SUPPORTED
    assert verdict.overall([]) == INCONCLUSIVE
    mixed = verdict.overall([s, n, s])
    assert mixed.startswith("mixed") and "supported: torch | torch" in mixed and "not supported: fused" in mixed
    assert verdict.overall([s, n, s], short=True) == "mixed: 2 supported, 1 not supported"


def test_exact_counts_keep_every_digit():
    assert "3,489 parameters vs lstm 4,641 parameters" in verdict.below(3489, 4641, "gru", "lstm",
                                                                      unit=" parameters").evidence


# --------------------------------------------------------------------------- an evaluator on made-up runs
def test_long_range_reads_the_longest_T_and_corrects_over_every_length(tmp_path):
    exp = synthetic_results.write_experiment(tmp_path, "lr", cells=("gru", "lstm"), seq_lens=(10, 40), seeds=3)
    ev = evidence.long_range([exp], claims.get("long_range").cells)
    assert [f.label for f in ev.findings] == ["adding, T = 40"]  # the claim is about the longest T only
    assert ev.findings[0].verdict == SUPPORTED  # the made-up LSTM's MSE is 0.4x the GRU's
    assert "Holm p" in ev.findings[0].evidence and "3 seeds" in ev.budget
    assert set(ev.table["config.task.seq_len"]) == {10, 40}  # the figure shows every length


def test_long_range_is_not_supported_when_the_gru_wins(tmp_path, monkeypatch):
    monkeypatch.setitem(synthetic_results.LEVEL, "gru", 0.005)
    exp = synthetic_results.write_experiment(tmp_path, "lr", cells=("gru", "lstm"), seq_lens=(10, 40), seeds=3)
    assert evidence.long_range([exp], claims.get("long_range").cells).findings[0].verdict == NOT_SUPPORTED


# --------------------------------------------------------------------------- the files
def test_every_claim_has_its_experiments_and_its_evaluator():
    files = sorted(p.name for p in ROOT.glob("*.yaml") if p.name != claims.LITERATURE)
    assert len(files) >= 11
    used = [name for c in claims.CLAIMS for name in c.experiments]
    assert sorted(used) == files  # no file without a claim, no claim without its file
    assert set(evidence.EVALUATORS) == set(claims.BY_ID)  # every claim's evaluator, found by its id


def test_the_papers_numbers_are_data_with_their_source_and_split():
    lit = claims.literature(ROOT)
    assert set(lit) <= set(claims.BY_ID) and {"counting", "polyphonic"} <= set(lit)
    for entries in lit.values():
        for e in entries:
            assert {"source", "split", "numbers", "verified"} <= set(e)
    assert not hasattr(evidence, "CHUNG_JSB")  # no paper's number in evaluator code


@pytest.mark.parametrize("claim,path", [(c, p) for c in claims.CLAIMS for p in c.paths(ROOT)],
                         ids=lambda v: getattr(v, "id", None) or Path(v).name)
@pytest.mark.parametrize("quick", [False, True])
def test_each_claims_experiment_loads(claim, path, quick):
    from grucli import bench
    from grucli.config import load_experiment
    from grucli.grid import expand
    from grucli.config import parse_yaml

    assert path.read_text().splitlines()[0] == f"# grucli claims experiments/claims/{path.name}"
    kind = claims_run.kind_of(path)
    if kind == "bench":
        extra = {k: parse_yaml(v, k) for k, v in (i.split("=", 1) for i in claim.quick)} if quick else {}
        cfg = bench.load_bench_config(path, **extra)
        assert {"gru", "lstm"} <= set(cfg.cells)
        return
    exp = load_experiment(path, claims_run.overrides(claim, kind, quick, path))
    assert exp.name.endswith("_quick") == quick
    if kind == "tune":
        # polyphonic tunes five cells on real data: 6 trials each keeps it near the others' time
        assert exp.search is not None and exp.search.trials >= (3 if quick else 6 if claim.id == "polyphonic" else 12)
    else:
        runs = expand(exp)
        assert len({r.config.model.cell for r in runs}) >= (1 if claim.id == "gru_to_rnn" else 2)


# --------------------------------------------------------------------------- grucli claims
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Every claim at its quick scale, once for this module (~1 minute on 2 cores)."""
    work = tmp_path_factory.mktemp("claims")
    res = runner.invoke(app, ["claims", "--quick", "--jobs", "2", "--results", str(work / "results"),
                              "--experiments", str(ROOT)])
    return work / "results", res


def test_quick_run_judges_every_claim_and_writes_the_page(quick_run):
    results, res = quick_run
    assert res.exit_code == 0, res.output
    page = (results / "claims_quick" / "claims.md").read_text()
    assert page.startswith("# What the notes say, what we measured")
    assert "Quick scale" in page
    for i, c in enumerate(claims.CLAIMS, 1):
        assert f"## {i}. {c.id}" in page
        assert f"grucli claims {c.id} --quick" in page
        assert (results / "claims_quick" / "figures" / f"{c.id}.png").stat().st_size > 1000
    rows = pd.read_csv(results / "claims_quick" / "claims.csv")
    assert set(rows["claim"]) == {c.id for c in claims.CLAIMS}
    assert set(rows["verdict"]) <= set(VERDICTS)
    assert "not measured yet" not in page and "could not evaluate" not in page
    assert (results / "claims_quick" / "figures" / "params.svg").is_file()
    # every verdict in the terminal says the budget it was reached at
    assert "at exact counts" in res.output and res.output.count("seeds per setting") >= 5


def test_exact_claims_hold_even_at_the_quick_scale(quick_run):
    results, _ = quick_run
    rows = pd.read_csv(results / "claims_quick" / "claims.csv").set_index("claim")
    assert (rows.loc[["params"], "verdict"] == SUPPORTED).all()  # counts need no training
    assert rows.loc["gru_to_rnn", "verdict"] == SUPPORTED  # forced gates = the RNN, on trained weights
    gap = float(re.search(r"\|h_forced - h_rnn\| = ([0-9.e+-]+)", rows.loc["gru_to_rnn", "evidence"]).group(1))
    assert gap <= 1e-12


def test_a_second_run_trains_nothing_and_rewrites_the_page(quick_run):
    results, _ = quick_run
    before = {p.name for p in (results / "claims_params_quick").iterdir()}
    res = runner.invoke(app, ["claims", "params", "counting", "--quick", "--results", str(results),
                              "--experiments", str(ROOT)])
    assert res.exit_code == 0, res.output
    assert " ok #" not in res.output  # nothing trained again
    assert {p.name for p in (results / "claims_params_quick").iterdir()} == before
    assert "params" in res.output and "counting" in res.output and "speed" not in res.output.split("page:")[0]


def test_runs_left_by_an_earlier_version_of_the_file_are_not_evidence(quick_run):
    results, _ = quick_run
    before = pd.read_csv(results / "claims_quick" / "data" / "counting.csv")
    import shutil

    fake = synthetic_results.write_run(results / "claims_counting_quick", "0123456789ab", "gru", 8, seed=7)
    res = runner.invoke(app, ["claims", "counting", "--read", "--quick", "--results", str(results),
                              "--experiments", str(ROOT)])
    shutil.rmtree(fake)
    assert res.exit_code == 0, res.output
    after = pd.read_csv(results / "claims_quick" / "data" / "counting.csv")
    assert len(after) == len(before) and 7 not in set(after["seed"])


def test_a_partly_run_experiment_is_judged_and_marked_incomplete(quick_run):
    import shutil

    results, _ = quick_run
    runs = sorted(p for p in (results / "claims_counting_quick").iterdir() if (p / "summary.json").is_file())
    shutil.rmtree(runs[0])  # as if the grid had been stopped one run short
    res = runner.invoke(app, ["claims", "counting", "--read", "--quick", "--results", str(results),
                              "--experiments", str(ROOT)])
    assert res.exit_code == 0, res.output
    total = sum(1 for d in ("claims_counting_quick", "claims_counting_next_quick")  # the claim's two experiments
                for p in (results / d).iterdir() if (p / "summary.json").is_file()) + 1  # + the one removed
    assert f"incomplete ({total - 1} of {total} runs finished)" in res.output
    page = (results / "claims_quick" / "claims.md").read_text()
    assert "**Incomplete**" in page
    rows = pd.read_csv(results / "claims_quick" / "claims.csv").set_index("claim")
    assert not rows.loc[["counting"], "complete"].any() and rows.loc[["params"], "complete"].all()


def test_read_only_says_what_is_not_measured(tmp_path):
    res = runner.invoke(app, ["claims", "memory", "--read", "--results", str(tmp_path), "--experiments", str(ROOT)])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "claims" / "claims.md").read_text()
    assert "not measured yet" in page and "grucli claims memory" in page
    assert not any(p.is_dir() and p.name.startswith("claims_") for p in tmp_path.iterdir())  # nothing trained


@pytest.mark.parametrize("args,message", [
    (["nosuch"], "unknown claim 'nosuch'"),
    (["experiments/claims/nosuch.yaml"], "not an experiment of any claim"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    res = runner.invoke(app, ["claims", *args, "--results", str(tmp_path / "r"), "--experiments", str(ROOT)])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_a_bad_claims_file_stops_before_any_claim_trains(tmp_path):
    import shutil

    root = tmp_path / "claims"
    shutil.copytree(ROOT, root)
    (root / "speed.yaml").write_text("cells: [gru, nosuch]\n")
    res = runner.invoke(app, ["claims", "params", "speed", "--quick", "--results", str(tmp_path / "r"),
                              "--experiments", str(root)])
    assert res.exit_code == 2
    assert "speed.yaml: cells: unknown cell 'nosuch'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # params, listed first, did not train


def test_the_claims_page_draws_its_comparisons_as_forest_rows():
    """Findings that compare two cells become forest rows on their scale, coloured from the
    first cell's side (supported 'a better' claim -> better; comparable inside the margin ->
    equivalent); exact findings (parameter counts) are not drawn."""
    from grucli.claims import page
    from grucli.claims.run import Outcome
    from grucli.claims.evidence import Evidence

    a = [1e-4 * k for k in (1, 2, 1, 3, 10)]
    found = [verdict.better(a, [10 * x for x in a], "min", "gru", "lstm", scale=LOG, label="adding"),
             verdict.comparable([1.0, 1.01, 0.99], [1.0, 1.005, 0.995], "gru", "lstm", scale=LOG, label="tuned"),
             verdict.below(3489, 4641, "gru", "lstm"),
             verdict.better(a, a, "min", "gru", "rnn", scale=LOG, label="gru vs rnn")]
    claim = claims.CLAIMS[0]
    frames = page.forest_frame([Outcome(claim, [], Evidence(found, "b", None, "", None))])
    assert list(frames) == ["ratio"]
    f = frames["ratio"]
    assert list(f["verdict"]) == ["better", "equivalent", "undecided"] and list(f["a"]) == ["gru", "gru", "gru"]
    assert list(f["setting"]) == [f"{claim.id}: adding", f"{claim.id}: tuned", claim.id]  # no "gru vs rnn: gru vs rnn"
    assert f["value"].iloc[0] == pytest.approx(0.1) and f["margin"].iloc[1] == pytest.approx(1.25)


def test_an_inconclusive_finding_says_how_many_seeds_would_decide_it():
    wide = verdict.better([1e-4, 1e-3, 1e-2], [2e-4, 2e-3, 2e-2], "min", "gru", "lstm", scale=LOG)
    assert wide.verdict == INCONCLUSIVE and "seeds per cell would decide it" in wide.evidence
    # a tight tie: already powered for the margin, so more seeds are not what is missing
    tie = verdict.better([1.0, 1.01, 0.99], [1.0, 1.005, 0.995], "min", "gru", "lstm", scale=LOG)
    assert tie.verdict == INCONCLUSIVE and "would not make the claim hold" in tie.evidence
