"""What a finished (or partly finished) tune says, from its files alone: tune.json,
trials.csv and the run folders (through the one reader). No torch: `grucli report` and
`grucli tune` both call it. Importance uses Optuna's fANOVA on an in-memory copy of each
arm's completed trials, so tune.db is never needed to re-plot.

    comparison(t)     per arm: trials done / pruned / failed, best validation value and
                      its configuration, test metric of the final seeds (mean, 95% CI)
    head_to_head(t)   every pair of arms on the final seeds, and each arm against the best
                      trivial baseline, judged as compare judges a setting (grucli.verdicts)
    best_so_far(t)    per arm, the best validation value after each counted trial
    importance(t)     per arm and searched key: fANOVA importance, its spread over
                      bootstrap resamples of the trials
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from grucli import metrics, stats, tables, verdicts
from grucli.declared import DEFAULT as DEFAULT_SPEC
from grucli.declared import VerdictSpec
from grucli.errors import GrucliError
from grucli.store import COUNTED
from grucli.numbers import num
from grucli.tables import TaskView

MANIFEST, TRIALS = "tune.json", "trials.csv"
BOOTSTRAP = 20  # resamples of an arm's trials for the spread of its importances


@dataclass
class Tuned:
    exp_dir: Path
    manifest: dict
    trials: pd.DataFrame  # trials.csv
    runs: pd.DataFrame  # every run folder (store.reader)

    @property
    def metric(self) -> str:
        return self.manifest["metric"]

    @property
    def goal(self) -> str:
        return self.manifest["goal"]

    @property
    def select(self) -> str:
        """The validation metric the trials were chosen on (the test metric unless the task says)."""
        return self.manifest.get("selected_on") or self.metric

    @property
    def select_goal(self) -> str:
        return self.manifest.get("select_goal") or self.goal

    @property
    def declared(self) -> VerdictSpec:
        """The experiment's verdict section as tune recorded it (the defaults for older studies)."""
        try:
            return VerdictSpec(**self.manifest["verdict"]) if isinstance(self.manifest.get("verdict"), dict) else DEFAULT_SPEC
        except ValueError:
            return DEFAULT_SPEC

    @property
    def arms(self) -> list[dict]:
        return self.manifest["arms"]

    @property
    def space(self) -> dict:
        return self.manifest["space"]

    def finals(self, arm: dict) -> pd.DataFrame:
        """The arm's final runs that finished ok."""
        runs = self.runs
        if runs.empty:
            return runs
        return runs[runs["run_id"].isin(arm.get("final_runs") or []) & (runs["state"] == "ok")]


def is_tuned(exp_dir: Path) -> bool:
    return (Path(exp_dir) / MANIFEST).is_file()


def load(exp_dir: Path, runs: pd.DataFrame | None = None) -> Tuned:
    exp_dir = Path(exp_dir)
    try:
        manifest = json.loads((exp_dir / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise GrucliError(f"{exp_dir / MANIFEST}: unreadable ({e})") from None
    try:
        trials = pd.read_csv(exp_dir / TRIALS)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        trials = pd.DataFrame(columns=["arm", "trial", "state", "value"])
    if runs is None:
        from grucli.store import reader

        runs = reader.collect([exp_dir], histories=False).runs
    return Tuned(exp_dir, manifest, trials, runs)


def budget_text(t: Tuned) -> str:
    """`24 trials per cell (at most 30 epochs each, asha pruning from epoch 3), selected on
    validation mse, tested on 5 fresh seeds`."""
    b = t.manifest["budget"]
    cap = f"at most {b['epochs']} epochs each" + (f" or {num(b['max_steps'])} steps" if b.get("max_steps") else "")
    prune = f", {b['pruner']} pruning from epoch {b['warmup_epochs']}" if b["pruner"] != "none" else ", no pruning"
    seeds = len(b["final_seeds"])
    return (f"{b['trials']} trials per cell ({cap}{prune}; {b['sampler']} sampler), selected on validation "
            f"{t.select}, tested on {seeds} fresh seed{'s' * (seeds != 1)}")


def view_of(t: Tuned) -> TaskView:
    """The final runs of every arm as one task view whose "cells" are the arms (short
    labels), so the tuned verdicts are judged exactly as compare's: on the metric's scale,
    Holm over the pairs of arms, the baselines first (grucli.verdicts)."""
    parts = []
    for arm in t.arms:
        f = t.finals(arm)
        if len(f):
            parts.append(f.assign(cell=short_label(arm["label"])))
    runs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["cell", "seed", "value", "state"])
    task = str(runs["task"].dropna().iloc[0]) if "task" in runs and runs["task"].notna().any() else t.manifest["name"]
    return TaskView(task, t.metric, t.goal, None, [], runs, t.select, t.declared, bool(t.manifest.get("until_decided")))


def comparison(t: Tuned) -> pd.DataFrame:
    scale = metrics.scale_of(t.metric)
    view = view_of(t)
    base = verdicts.best_baseline(view, view.runs) if len(view.runs) else None
    rows = []
    for arm in t.arms:
        trials = t.trials[t.trials["arm"] == arm["label"]] if len(t.trials) else t.trials
        states = trials["state"].value_counts().to_dict() if len(trials) else {}
        finals = t.finals(arm)
        test = finals.get(f"test.{t.metric}", pd.Series(dtype=float)) if len(finals) else pd.Series(dtype=float)
        e = stats.estimate(test.tolist(), scale)
        best = arm.get("best") or {}
        improving = int(finals["still_improving"].fillna(False).astype(bool).sum()) if "still_improving" in finals else 0
        plateau = int((finals["left_baseline"] == False).sum()) if "left_baseline" in finals else 0  # noqa: E712
        rows.append({"arm": arm["label"], "trials": sum(states.get(s, 0) for s in COUNTED),
                     "pruned": states.get("pruned", 0), "diverged": states.get("diverged", 0),
                     "failed": states.get("failed", 0), "best_trial": best.get("trial"),
                     "best_val": best.get("value"), **{f"best.{k}": v for k, v in (best.get("params") or {}).items()},
                     "params": _first(finals, "params"), "final_n": e.n, "scale": scale.name, "test_centre": e.centre,
                     "test_lo": e.lo, "test_hi": e.hi,
                     "baseline": None if base is None else base[1], "baseline_value": None if base is None else base[2],
                     "epochs": _mean(finals, "timing.epochs"), "train_time_s": _mean(finals, "timing.train_time_s"),
                     "still_improving": improving, "at_baseline": plateau})
    return pd.DataFrame(rows)


def head_to_head(t: Tuned) -> pd.DataFrame:
    """Every pair of arms on their final seeds' test metric (one family: Holm over the
    pairs), and each arm against the best trivial baseline."""
    view = view_of(t)
    if view.runs.empty:
        return pd.DataFrame()
    look = verdicts.judge(view, view.runs[view.runs["state"] == "ok"])
    rows = [{**r, "family": "metric"} for r in look.rows] + [{**r, "family": "baseline"} for r in look.baseline]
    return pd.DataFrame(rows)


def short_label(label: str) -> str:
    """`model.cell=gru` -> `gru`: the arm's value when one key makes the arms."""
    parts = label.split(" ")
    return parts[0].split("=", 1)[1] if len(parts) == 1 and "=" in parts[0] else label


def answer(t: Tuned) -> list[str]:
    """The verdict lines, to be read under budget_text(t): the budget they were reached at.
    The same words as compare's Answer (grucli.verdicts), the baseline first."""
    comp = comparison(t)
    if comp.empty or comp["final_n"].max() == 0:
        return ["no final runs yet: nothing to compare"]
    view = view_of(t)
    h2h = verdicts.head_to_head(view)
    summary = tables.summary_table(view)
    lines = [line.removeprefix(f"{view.task}: ") for line in verdicts.answers(view, summary, h2h)]
    best = ", ".join(f"{short_label(r.arm)} {num(r.best_val)}" for r in comp.itertuples())
    if lines:  # the budget is the header's (budget_text); the unconverged runs stay
        head, _, tail = lines[0].partition(" -- at ")
        flags = tail.partition("; ")[2]
        lines[0] = f"{head}; best validation of each arm's trials: {best}" + (f"; {flags}" if flags else "")
    on_plateau = {a["label"]: int(a.get("pruned_on_plateau") or 0) for a in t.arms}
    for r in comp.itertuples():
        noise = on_plateau.get(r.arm, 0)
        if r.at_baseline:
            lines.append(f"{short_label(r.arm)}: {r.at_baseline} of {r.final_n} final runs never left the trivial "
                         "baseline: no trial found a way off the plateau within this budget"
                         + (f" (and its pruner stopped {noise} trial(s) while every trial sat on it: chosen by noise)"
                            if noise else "") + "; that measures the budget, not whether the cell can learn the task")
        elif noise:
            lines.append(f"{short_label(r.arm)}: its pruner stopped {noise} trial(s) while no trial of the arm had "
                         "left the baseline (search.plateau: prune): those were chosen by noise")
    return lines


def best_so_far(t: Tuned) -> pd.DataFrame:
    """arm, trial (0-based position among counted trials), value, best (running best of ok trials)."""
    rows = []
    for arm in t.arms:
        trials = t.trials[(t.trials["arm"] == arm["label"]) & t.trials["state"].isin(COUNTED)].sort_values("trial")
        best = math.nan
        for pos, r in enumerate(trials.itertuples()):
            v = r.value if r.state == "ok" else math.nan
            if v == v and (best != best or (v < best if t.select_goal == "min" else v > best)):
                best = v
            rows.append({"arm": arm["label"], "position": pos + 1, "trial": r.trial, "state": r.state,
                         "value": r.value, "best": best})
    return pd.DataFrame(rows)


def importance(t: Tuned, resamples: int = BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """arm, param, importance (fANOVA on all completed trials), lo / hi (2.5 and 97.5
    percentiles over `resamples` bootstrap resamples of them), n (trials used)."""
    import warnings

    import numpy as np

    rows = []
    keys = list(t.space)
    if not keys:
        return pd.DataFrame()
    dists = _distributions(t.space)
    rng = np.random.default_rng(seed)
    for arm in t.arms:
        ok = t.trials[(t.trials["arm"] == arm["label"]) & (t.trials["state"] == "ok")]
        if len(ok) < 3:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = _fanova(ok, keys, dists, t.select_goal, seed)
            boots = [_fanova(ok.iloc[rng.integers(0, len(ok), len(ok))], keys, dists, t.select_goal, seed)
                     for _ in range(resamples)]
        for k in keys:
            samples = [b.get(k, math.nan) for b in boots]
            samples = [s for s in samples if s == s]
            rows.append({"arm": arm["label"], "param": k, "importance": full.get(k, math.nan),
                         "lo": float(np.percentile(samples, 2.5)) if samples else math.nan,
                         "hi": float(np.percentile(samples, 97.5)) if samples else math.nan, "n": len(ok)})
    return pd.DataFrame(rows)


def _distributions(space: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for k, d in space.items():
        if d["kind"] == "choice":
            out[k] = CategoricalDistribution(d["choices"])
        elif d["kind"] in ("int", "log_int"):
            out[k] = IntDistribution(int(d["low"]), int(d["high"]), log=d["kind"] == "log_int")
        else:
            out[k] = FloatDistribution(float(d["low"]), float(d["high"]), log=d["kind"] == "log_uniform")
    return out


def _fanova(trials: pd.DataFrame, keys: list[str], dists: dict, goal: str, seed: int) -> dict:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if goal == "min" else "maximize")
    for r in trials.to_dict("records"):
        params = {k: _native(r[f"param.{k}"], dists[k]) for k in keys}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(r["value"])))
    try:
        return {k: float(v) for k, v in get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed)).items()}
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}


def _native(value, dist):
    """A CSV cell back to the parameter's own type (choices compare by value)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        for c in dist.choices:
            if str(c) == str(value) or (isinstance(c, (int, float)) and not isinstance(c, bool)
                                        and _num_eq(c, value)):
                return c
        return value
    if isinstance(dist, IntDistribution):
        return int(value)
    return float(value)


def _num_eq(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _first(df: pd.DataFrame, col: str):
    return df[col].dropna().iloc[0] if col in df and df[col].notna().any() else None


def _mean(df: pd.DataFrame, col: str):
    return float(df[col].mean()) if col in df and df[col].notna().any() else None


__all__ = ["Tuned", "load", "is_tuned", "budget_text", "comparison", "head_to_head", "answer", "best_so_far",
           "importance"]
