"""The verdicts: from one task's runs (a grucli.tables.TaskView) to head-to-head rows, the
baseline check and the Answer lines. Pure and torch-free; compare, report and tune call it.

How a setting is judged (one Answer):
1. The family is the question: the comparisons of one setting's cells on the test metric
   (gru vs lstm, gru vs rnn, lstm vs rnn), Holm-corrected over that family only, so another
   experiment or setting in the folder never changes this setting's verdicts. Timings are a
   family of their own, and so is the baseline check.
2. Each comparison is tested on the metric's scale (grucli.metrics): ratios of geometric
   means for log-scale metrics, differences otherwise; four words: better, worse,
   equivalent (within the margin declared in the experiment's `verdict:` section, before
   the data), undecided.
3. Baselines first: every cell against the best trivial baseline of the task; where none
   beats it, the Answer says so before anything else.
4. Under --until-decided (the experiment records it), the setting is judged at planned
   looks (e.g. 4, 6, 9, 12 seeds per cell, the first seeds in seed order) at Pocock's
   constant per-look level, and stops at the first look where every comparison is decided.
5. Undecided comparisons say how many seeds per cell would decide them (grucli.power).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import pandas as pd

from grucli import budget, metrics, power, stats
from grucli.declared import VerdictSpec
from grucli.metrics import Scale
from grucli.numbers import interval, num, p_text
from grucli.store.reader import OK
from grucli.tables import TaskView, order_cells, packed_runs, per_pack, plain, setting_label

SPEED = "timing.epoch_time_s"
SPEED_LABEL = "train s/epoch (steady state)"


@dataclass
class Look:
    """A setting judged at one look: the seeds used, the level, the rows."""

    index: int  # 1-based look; 0 when there is no sequential plan
    seeds: int  # most seeds per cell used at this look
    alpha: float  # the per-look level (Pocock) or alpha
    rows: list[dict] = field(default_factory=list)  # metric comparisons
    baseline: list[dict] = field(default_factory=list)  # each cell against the best baseline

    @property
    def decided(self) -> bool:
        return bool(self.rows) and all(stats.decided(r["verdict"]) for r in self.rows)


def sequential_alpha(spec: VerdictSpec, sequential: bool) -> float:
    return power.pocock_alpha(tuple(spec.looks), spec.alpha) if sequential else spec.alpha


def first_seeds(ok: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """Each cell's first `n` finished seeds in seed order (all with None)."""
    if n is None:
        return ok
    return ok.sort_values("seed").groupby("cell", sort=False, group_keys=False).head(n)


def paired(ok: pd.DataFrame) -> bool:
    """Seeds are paired when every run's data were drawn with its own seed
    (task.data_seed: per_seed): the runs of one seed then share their data across cells."""
    col = "config.task.data_seed"
    if col not in ok or not len(ok):
        return False
    own = ok[col].astype(str).eq("per_seed") | ok[col].astype(str).eq(ok["seed"].astype(str))
    return bool(own.all())


def _values(ok: pd.DataFrame, cell: str, column: str, seeds: list | None = None) -> list:
    g = ok[ok["cell"] == cell].sort_values("seed")
    if seeds is not None:
        g = g[g["seed"].isin(seeds)]
    return g[column].tolist() if column in g else []


def compare_cells(ok: pd.DataFrame, column: str, scale: Scale, margin: float | None, goal: str,
                  alpha: float) -> list[dict]:
    """Every pair of cells on `column`, decided as one family (Holm over it)."""
    pairs = list(itertools.combinations(order_cells(ok["cell"].unique()), 2))
    is_paired = paired(ok)
    effects = []
    for a, b in pairs:
        common = None
        if is_paired:
            common = sorted(set(ok.loc[ok["cell"] == a, "seed"]) & set(ok.loc[ok["cell"] == b, "seed"]))
        effects.append(stats.effect(_values(ok, a, column, common), _values(ok, b, column, common), scale, margin,
                                    paired=is_paired))
    decisions = stats.decide(effects, goal, alpha)
    return [effect_row(a, b, e, d, scale, alpha) for (a, b), e, d in zip(pairs, effects, decisions)]


def effect_row(a: str, b: str, e: stats.Effect, d: stats.Decision, scale: Scale, alpha: float) -> dict:
    """One comparison as a table row, with the seeds per cell that would decide it."""
    row = {"a": a, "b": b, "scale": scale.name, "n_a": e.n_a, "n_b": e.n_b, "centre_a": e.centre_a,
           "centre_b": e.centre_b, "effect": "ratio" if scale.ratio else "difference", "value": e.value,
           "lo": e.lo, "hi": e.hi, "margin": e.margin, "p_diff": e.p_diff, "p_equiv": e.p_equiv,
           "p_holm": d.p_diff, "p_equiv_holm": d.p_equiv, "family_size": d.family, "verdict": d.word,
           "paired": e.paired, "hedges_g": e.hedges_g, "seeds_needed": None}
    if d.word == stats.UNDECIDED and e.margin is not None:
        delta = math.log(e.margin) if scale.ratio else e.margin
        df = (e.n_a - 1) if e.paired else (e.n_a + e.n_b - 2)
        row["seeds_needed"] = power.seeds_needed(e.sd, df, delta, alpha / max(d.family, 1), paired=e.paired)
    return row


def baseline_candidates(view: TaskView, g: pd.DataFrame) -> dict[str, str]:
    """column -> name of each trivial baseline of the metric the runs carry."""
    out = {}
    if "baseline_value" in g and g["baseline_value"].notna().any():
        out["baseline_value"] = _baseline_name(g, "")
    for col in g.columns:
        if col.startswith("baseline.") and col.endswith(f"_{view.metric}") and g[col].notna().any():
            prefix = col.removeprefix("baseline.").removesuffix(f"_{view.metric}")
            out[col] = _baseline_name(g, prefix)
    return out


BASELINE_NAMES = {"": "trivial baseline", "snaive": "seasonal naive baseline"}


def _baseline_name(g: pd.DataFrame, prefix: str) -> str:
    col = f"baseline_names.{prefix or 'default'}"
    if col in g and g[col].notna().any():
        return str(g[col].dropna().iloc[0])
    return BASELINE_NAMES.get(prefix, f"{prefix} baseline")


def best_baseline(view: TaskView, g: pd.DataFrame) -> tuple[str, str, float] | None:
    """(column, name, value) of the best trivial baseline (by the goal) over the runs."""
    scale = metrics.scale_of(view.metric)
    found = []
    for col, name in baseline_candidates(view, g).items():
        est = stats.estimate(g[col].dropna().tolist(), scale)
        if est.n:
            found.append((col, name, est.centre))
    if not found:
        return None
    pick = min if view.goal == "min" else max
    return pick(found, key=lambda t: t[2])


def against_baseline(view: TaskView, ok: pd.DataFrame, base: tuple[str, str, float], margin: float | None,
                     alpha: float) -> list[dict]:
    """Each cell against the baseline (one family, Holm over the cells): a one-sample test
    against its value, or paired per seed where each seed drew its own data."""
    scale = metrics.scale_of(view.metric)
    col, _, value = base
    cells = order_cells(ok["cell"].unique())
    is_paired = paired(ok)
    effects = []
    for c in cells:
        mine = ok[ok["cell"] == c].sort_values("seed")
        bases = mine[col].tolist() if is_paired else [value] * len(mine)
        effects.append(stats.effect(mine["value"].tolist(), bases, scale, margin, paired=is_paired))
    decisions = stats.decide(effects, view.goal, alpha)
    return [effect_row(c, "baseline", e, d, scale, alpha) for c, e, d in zip(cells, effects, decisions)]


def judge(view: TaskView, ok: pd.DataFrame) -> Look:
    """One setting's metric verdicts: at every planned look until all are decided (under
    --until-decided), or once on every finished seed."""
    spec, scale = view.declared, metrics.scale_of(view.metric)
    margin = spec.margin_for(scale)
    alpha = sequential_alpha(spec, view.sequential)
    looks = list(spec.looks) if view.sequential else [None]
    have = int(ok.groupby("cell").size().min()) if len(ok) else 0
    look = None
    for i, n in enumerate(looks, 1):
        if n is not None and n > have and look is not None:
            break  # this look's seeds are not there (yet)
        used = first_seeds(ok, n)
        look = Look(i if view.sequential else 0, int(used.groupby("cell").size().max()) if len(used) else 0, alpha)
        look.rows = compare_cells(used, "value", scale, margin, view.goal, alpha)
        base = best_baseline(view, used)
        if base is not None:
            look.baseline = [{**r, "baseline": base[1], "baseline_value": base[2]}
                             for r in against_baseline(view, used, base, margin, alpha)]
        if look.decided:
            break
    return look or Look(0, 0, alpha)


def timing_rows(view: TaskView, ok: pd.DataFrame) -> list[dict]:
    """s/epoch between cells, only where runs trained alike (same implementation and pack
    size) and their times were measured independently (one value per pack: the seeds of a
    pack share one measured time)."""
    if SPEED not in ok:
        return []
    scale, spec = metrics.scale_of(SPEED), view.declared
    cells = order_cells(ok["cell"].unique())
    rows, testable = [], []
    for a, b in itertools.combinations(cells, 2):
        ga, gb = ok[ok["cell"] == a], ok[ok["cell"] == b]
        why = _not_alike(ga, gb)
        if why:
            rows.append({"a": a, "b": b, "verdict": "not comparable", "why": why})
            continue
        va, vb = _independent_times(ga), _independent_times(gb)
        if min(len(va), len(vb)) < 2:
            rows.append({"a": a, "b": b, "verdict": "not testable",
                         "why": "the seeds of a pack share one measured time: fewer than 2 independent timings per cell"})
            continue
        testable.append((a, b, stats.effect(va, vb, scale, spec.speed_margin)))
    decisions = stats.decide([e for *_, e in testable], "min", spec.alpha)
    rows += [effect_row(a, b, e, d, scale, spec.alpha) for (a, b, e), d in zip(testable, decisions)]
    return rows


def _not_alike(ga: pd.DataFrame, gb: pd.DataFrame) -> str | None:
    for col, what in (("impl", "implementation"), ("timing.pack_size", "pack size")):
        if col in ga and col in gb:
            sa, sb = set(ga[col].dropna()), set(gb[col].dropna())
            if sa and sb and sa != sb:
                return f"trained differently ({what} {_join(sa)} vs {_join(sb)})"
    return None


def _join(values) -> str:
    return "/".join(str(plain(v)) for v in sorted(values, key=str))


def _independent_times(g: pd.DataFrame) -> list[float]:
    """One time per pack (the runs of a pack share their steps' time), one per run alone."""
    if packed_runs(g) and not ("timing.pack_id" in g and g["timing.pack_id"].notna().all()):
        return []  # packed by older code that did not record which runs shared a pack
    return per_pack(g, SPEED)


# --------------------------------------------------------------------------- the table and the Answer
def head_to_head(view: TaskView) -> pd.DataFrame:
    """Per setting: every pair of cells on the test metric (one Holm family per setting),
    each cell against the best baseline, and s/epoch where comparable."""
    rows = []
    for values, _, g in view.groups(by_cell=False):
        ok = g[g["state"] == OK]
        label = setting_label(view.settings, values)
        spent = budget.describe(_col(ok, "timing.epochs"), _col(ok, "timing.steps"))
        look = judge(view, ok)
        for r in look.rows:
            rows.append({"task": view.task, "setting": label, "family": "metric", "quantity": f"test {view.metric}",
                         **r, "look": look.index, "alpha": look.alpha, "budget": spent,
                         **_flags(ok, r["a"], "a"), **_flags(ok, r["b"], "b")})
        for r in look.baseline:
            rows.append({"task": view.task, "setting": label, "family": "baseline",
                         "quantity": f"test {view.metric}", **r, "look": look.index, "alpha": look.alpha,
                         "budget": spent, **_flags(ok, r["a"], "a")})
        for r in timing_rows(view, ok):
            rows.append({"task": view.task, "setting": label, "family": "timing", "quantity": SPEED_LABEL, **r,
                         "budget": spent})
    return pd.DataFrame(rows)


def _flags(ok: pd.DataFrame, cell: str, side: str) -> dict:
    mine = ok[ok["cell"] == cell]
    return {f"improving_{side}": _share(mine, "still_improving"), f"at_baseline_{side}": _share(mine, "left_baseline", False)}


def answers(view: TaskView, summary: pd.DataFrame, h2h: pd.DataFrame) -> list[str]:
    """One line per setting: the baseline first, then the cell with the best mean and its
    interval, the verdicts of its family (and its size), the seeds that would decide what is
    undecided, the look it stopped at, the budget and the unconverged runs; then one line
    per pair of cells over the task's settings."""
    lines = []
    scale = metrics.scale_of(view.metric)
    runs_of = {setting_label(view.settings, v): g[g["state"] == OK] for v, _, g in view.groups(by_cell=False)}
    for label, ok in runs_of.items():
        where = view.task + (f", {label}" if view.settings else "")
        if ok.empty:
            lines.append(f"{where}: no finished runs")
            continue
        mine = h2h[h2h["setting"] == label] if len(h2h) else h2h
        metric_rows = mine[mine["family"] == "metric"] if len(mine) else mine
        base_rows = mine[mine["family"] == "baseline"] if len(mine) else mine
        look = int(metric_rows["look"].iloc[0]) if len(metric_rows) else (
            int(base_rows["look"].iloc[0]) if len(base_rows) else 0)
        used = first_seeds(ok, view.declared.looks[look - 1] if look else None)
        cells = order_cells(used["cell"].unique())
        est = {c: stats.estimate(used.loc[used["cell"] == c, "value"].tolist(), scale) for c in cells}
        pick = min if view.goal == "min" else max
        best = pick(cells, key=lambda c: est[c].centre)
        parts = []
        if len(base_rows):
            parts.append(_baseline_part(view, base_rows))
        wins = [r for r in metric_rows.itertuples() if best in (r.a, r.b)]
        all_won = bool(wins) and all((r.verdict == stats.BETTER) == (r.a == best) and r.verdict in (
            stats.BETTER, stats.WORSE) for r in wins)
        beat_base = base_rows.empty or any(r.a == best and r.verdict == stats.BETTER for r in base_rows.itertuples())
        # never crowned where a trivial baseline is not beaten: "did best" needs both
        how = ("did best" if all_won and beat_base else
               ("best mean" + ("" if beat_base else " of the cells") if len(cells) > 1 else "(the only cell here)"))
        e = est[best]
        row = summary_row(summary, view, label, best)
        head = (f"{best} {how} (test {view.metric}, {scale.mean_word} {interval(e.centre, e.lo, e.hi)} over "
                f"{e.n} seed{'s' if e.n != 1 else ''}{_reached(view, row)}; {num(row.get('params'))} params, "
                f"{num(row.get('train_time_s'))} s training)")
        parts.append(head)
        if len(metric_rows):
            alpha = float(metric_rows["alpha"].iloc[0])
            family = int(metric_rows["family_size"].max())
            said = [_pair_text(r, view) for r in metric_rows.itertuples()]
            parts.append(f"Holm over {family} comparison{'s' if family != 1 else ''} at α {num(alpha)}: " + "; ".join(said))
        if view.sequential and look:
            n = view.declared.looks[look - 1]
            decided = bool(len(metric_rows)) and all(stats.decided(v) for v in metric_rows["verdict"])
            parts.append(f"{'decided' if decided else 'stopped'} at look {look} of {len(view.declared.looks)} "
                         f"({n} seeds per cell{'' if decided else ', the cap' if look == len(view.declared.looks) else ', more to come'})")
        lines.append(f"{where}: " + "; ".join(parts) + _tail(ok))
    lines += overall_lines(view)
    return lines


def summary_row(summary: pd.DataFrame, view: TaskView, label: str, cell: str) -> dict:
    if summary.empty:
        return {}
    keys = [c.removeprefix("config.") for c in view.settings]
    for r in summary[summary["cell"] == cell].to_dict("records"):
        if setting_label(view.settings, [r[k] for k in keys]) == label:
            return r
    return {}


def _reached(view: TaskView, row: dict) -> str:
    if view.target is None or not row:
        return ""
    return f", validation reached the target in {int(row.get('reached_target', 0))}/{int(row.get('n', 0))}"


def _baseline_part(view: TaskView, base_rows: pd.DataFrame) -> str:
    first = base_rows.iloc[0]
    name, value = first["baseline"], first["baseline_value"]
    beat = [r.a for r in base_rows.itertuples() if r.verdict == stats.BETTER]
    lost = [r.a for r in base_rows.itertuples() if r.verdict == stats.WORSE]
    what = f"the {name} ({view.metric} {num(value)})"
    if len(lost) == len(base_rows):
        return f"{what} beat every cell"
    if len(beat) == len(base_rows):
        return f"every cell beat {what}"
    # the cells that did not beat it, by verdict: a cell whose error is below the baseline's
    # but within the margin is equivalent, not beaten, and one whose interval spans the margin
    # is undecided; "did not" would read as "lost" (airline: gru 47 vs 53; Nile: gru 130 vs 159)
    equal = [r.a for r in base_rows.itertuples() if r.verdict == stats.EQUIVALENT]
    open_ = [r.a for r in base_rows.itertuples() if r.a not in beat + lost + equal]
    margin = metrics.scale_of(view.metric).margin_text(base_rows.iloc[0]["margin"])
    said = ([f"{', '.join(lost)} worse than it"] if lost else []) + (
        [f"{', '.join(equal)} equivalent to it within {margin}"] if equal else []) + (
        [f"{', '.join(open_)} undecided against it"] if open_ else [])
    if not beat:
        return f"no cell beat {what}" + (f" ({'; '.join(said)})" if said else "")
    return f"{', '.join(beat)} beat {what}; {'; '.join(said)}"


def oriented(r) -> tuple[str, str, str]:
    """(first, second, effect text) with the winner first where a verdict says b won: its
    ratio inverted (b / a) or its difference negated, so the numbers read as the words."""
    value, lo, hi, a, b = r.value, r.lo, r.hi, r.a, r.b
    if r.verdict == stats.WORSE:
        a, b = b, a
        if r.effect == "ratio":
            value, lo, hi = 1 / value, (None if _none(hi) else 1 / hi), (None if _none(lo) else 1 / lo)
        else:
            value, lo, hi = -value, (None if _none(hi) else -hi), (None if _none(lo) else -lo)
    return a, b, f"{'ratio' if r.effect == 'ratio' else 'difference'} {interval(value, lo, hi)}"


def _none(v) -> bool:
    return v is None or v != v


def also_different(r) -> str:
    """`; the difference is significant too, p = 0.012` for an equivalent pair whose
    difference test rejects as well (a real difference, smaller than the margin), else ""."""
    p, alpha = getattr(r, "p_holm", None), getattr(r, "alpha", None)
    return "" if _none(p) or _none(alpha) or p >= alpha else f"; the difference is significant too, {p_text(p)}"


def _pair_text(r, view: TaskView) -> str:
    scale = metrics.scale_of(view.metric)
    _, _, effect = oriented(r)
    if r.verdict == stats.NOT_TESTABLE:
        return f"{r.a} vs {r.b}: not testable"
    if r.verdict == stats.EQUIVALENT:
        return (f"{r.a} and {r.b} equivalent within {scale.margin_text(r.margin)} "
                f"({effect}, equivalence {p_text(r.p_equiv_holm)}{also_different(r)})")
    if r.verdict in (stats.BETTER, stats.WORSE):
        return f"{stats.phrase(r.verdict, r.a, r.b)} ({effect}, {p_text(r.p_holm)})"
    need = r.seeds_needed
    if need is None or need != need:
        decide = ""
    elif need > power.MAX_SEEDS:
        decide = f"; more than {num(power.MAX_SEEDS)} seeds per cell would decide it"
    else:
        decide = f"; about {int(need)} seeds per cell would decide it"
    return f"{r.a} vs {r.b} undecided ({effect}, {p_text(r.p_holm)}{decide})"


def _tail(ok: pd.DataFrame) -> str:
    spent = budget.describe(_col(ok, "timing.epochs"), _col(ok, "timing.steps"))
    per_cell = [(c, ok[ok["cell"] == c]) for c in order_cells(ok["cell"].unique())]
    improving = [f"{c} {n}" for c, g in per_cell if _flagged(n := _share(g, "still_improving"))]
    plateau = [f"{c} {n}" for c, g in per_cell if _flagged(n := _share(g, "left_baseline", False))]
    tail = f" -- at {spent}"
    if improving:
        tail += f"; still improving when training stopped: {', '.join(improving)} runs"
    if plateau:
        tail += f"; never left the trivial baseline: {', '.join(plateau)} runs (a plateau more epochs may end)"
    if improving or plateau:
        tail += ": this verdict measures the budget as much as the cells"
    return tail


def overall_lines(view: TaskView) -> list[str]:
    """Per pair of cells over the task's settings (at least 2): P(a run of a beats a run of
    b) with its stratified bootstrap interval, and Wilcoxon over settings where >= 5."""
    if len(view.settings) == 0:
        return []
    ok = view.ok
    groups = [g for _, _, g in view.groups(by_cell=False)]
    if len(groups) < 2:
        return []
    out = []
    scale = metrics.scale_of(view.metric)
    for a, b in itertools.combinations(order_cells(ok["cell"].unique()), 2):
        strata = [(_values(g[g["state"] == OK], a, "value"), _values(g[g["state"] == OK], b, "value")) for g in groups]
        o = stats.probability_of_improvement(strata, view.goal, scale)
        if o is None or o.settings < 2:
            continue
        out.append(overall_text(view.task, a, b, o) + f" -- at {budget.describe(_col(ok, 'timing.epochs'), _col(ok, 'timing.steps'))}")
    return out


def across_tasks(views: list[TaskView]) -> list[str]:
    """Per pair of cells over every setting of every task (at least 2 tasks): P(a run of a
    beats a run of b), settings as strata (a comparison of runs within a setting needs no
    common unit). No Wilcoxon here: the settings' differences are in different units."""
    if len(views) < 2:
        return []
    cells = order_cells({c for v in views for c in v.ok["cell"].unique()})
    out = []
    for a, b in itertools.combinations(cells, 2):
        strata, goals = [], []
        for v in views:
            for _, _, g in v.groups(by_cell=False):
                ok = g[g["state"] == OK]
                va, vb = _values(ok, a, "value"), _values(ok, b, "value")
                if va and vb:  # "better" means higher: flip min-goal metrics so one direction holds for all
                    sign = -1.0 if v.goal == "min" else 1.0
                    strata.append(([sign * x for x in va], [sign * x for x in vb]))
        o = stats.probability_of_improvement(strata, "max", metrics.RAW) if len(strata) >= 2 else None
        if o is not None:
            out.append(overall_text(f"all {len(views)} tasks", a, b, replace(o, p_wilcoxon=None))
                       + " -- at each task's budget above")
    return out


def overall_text(where: str, a: str, b: str, o: stats.Overall) -> str:
    lead = a if o.p > 0.5 else b
    verdict = (f"{lead} ahead" if o.decided else (f"leaning {lead}" if o.p != 0.5 else "even"))
    wil = "" if o.p_wilcoxon is None else f"; Wilcoxon over settings {p_text(o.p_wilcoxon)}"
    return (f"{where} overall, {a} vs {b} over {o.settings} settings: P({a} run beats {b} run) = "
            f"{interval(o.p, o.lo, o.hi)} (stratified bootstrap) -- {verdict}{wil}")


def _col(df: pd.DataFrame, col: str) -> list:
    return df[col].dropna().tolist() if col in df else []


def _share(ok: pd.DataFrame, column: str, value: bool = True) -> str:
    """`2/3`: how many of a cell's ok runs have `column` == value (still_improving: True;
    left_baseline: False, i.e. still at the trivial baseline); "unknown" for older runs."""
    if column not in ok or ok[column].isna().all():
        return "unknown"
    known = ok[column].dropna().astype(bool)
    return f"{int((known == value).sum())}/{len(ok)}"


def _flagged(text: str) -> bool:
    return text not in ("unknown",) and not text.startswith("0/")
