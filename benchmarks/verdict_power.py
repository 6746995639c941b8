"""How often grucli's verdict rules are wrong, and how often they find a real difference:
a simulation at the function level (issue 23, "Measure").

    /work/main/.venv/bin/python benchmarks/verdict_power.py            # ~1 CPU minute (pocock_alpha over 8 looks: ~10 s)
    /work/main/.venv/bin/python benchmarks/verdict_power.py --reps 4000   # quicker, noisier

Two arms (a against b, one comparison: a family of 1) are judged the way grucli judges
them: `grucli.stats.effect` on the metric's scale (log values for MSE-type data, the values
for a bounded metric) with the scale's default margin (a ratio of 1.25; 0.02 absolute),
then `grucli.stats.decide` (equivalent when TOST rejects, else better/worse when Welch's
test rejects, else undecided). Rules:

  fixed n=3, n=5        one look at the first n seeds of each arm, at alpha 0.05
  until-decided         looks at 3, 5, 8, 12 seeds per arm (the default `verdict.looks`),
                        each at Pocock's constant level `grucli.power.pocock_alpha`, stopping
                        at the first look where the comparison is better, worse or
                        equivalent (the last look's verdict stands at the cap)
  naive re-testing      Welch at 0.05 after every new seed, from 2 seeds up to 10 or 20,
                        stopping at the first significant difference (what Pocock fixes)

Data (MSE-type unless said): log-normal with SD(log10) = 0.3 (normal on the test scale),
the same with SD(log10) = 0.05, normal accuracy-like values tested raw (bounded scale), and
bimodal solved/plateau runs (each seed solves with probability p, giving an MSE near 1e-4,
else it sits on a plateau near 1/6).

It prints four tables, each rate with its binomial standard error in percentage points:
  1. false positives (better or worse) with no true difference, per data kind and rule,
     with the share called equivalent and the mean seeds until-decided used ("diff only":
     the sequential rule stopping on a difference only, never on equivalence; the last
     column: the same rule with looks at 3, 5, 8, 12 seeds);
  2. power (share "better") for a true 2x and 10x MSE ratio at SD(log10) = 0.3, and the
     share with the wrong sign ("worse"); beside it, the same 3-seed data under Student's
     pooled t and what grucli.power.power_difference predicts for n = 3;
  3. false "equivalent" when the true ratio sits at the margin (1.25) or beyond it (1.5);
  4. naive re-testing after every seed against Pocock's level at the same looks.
Targets (issue 23): false positives <= 5% for every rule; power >= 0.8 for a 10x ratio at
SD(log10) = 0.3 with 3 seeds a side.

The rules are computed vectorised over replications (the same formulas as stats.effect);
before the tables, a subsample of every scenario is re-judged with grucli's own
stats.effect + stats.decide, look by look, and a smaller one through
grucli.verdicts.judge on a TaskView with view.sequential = True; the script stops with an
error if any verdict or stopping look differs.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from grucli import metrics, power, stats, verdicts
from grucli.declared import DEFAULT as SPEC
from grucli.tables import TaskView

ALPHA = SPEC.alpha
LOOKS = tuple(SPEC.looks)  # the default plan (4, 6, 9, 12)
LATER = (3, 5, 8, 12)  # the plan whose first look has 3 seeds (see table 1, bimodal data)
SEED = 20261206
WORDS = np.array([stats.UNDECIDED, stats.BETTER, stats.WORSE, stats.EQUIVALENT])
UND, BET, WOR, EQU = range(4)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Kind:
    """One kind of data: draws (reps, n) values per arm with a's centre `ratio` times
    better than b's (an MSE `ratio` times smaller; an accuracy `ratio` higher, absolute)."""

    name: str
    scale: metrics.Scale
    goal: str
    sd: float = 0.3  # SD of log10 MSE (or of the accuracy)
    p: float = 0.5  # bimodal: chance that a seed solves the task

    def draw(self, rng: np.random.Generator, reps: int, n: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
        if self.name.startswith("bimodal"):
            return self._bimodal(rng, reps, n), self._bimodal(rng, reps, n)
        if self.scale is metrics.LOG:
            b = 10 ** (-3 + self.sd * rng.standard_normal((reps, n)))
            a = 10 ** (-3 - math.log10(ratio) + self.sd * rng.standard_normal((reps, n)))
            return a, b
        a = 0.80 + ratio + self.sd * rng.standard_normal((reps, n))  # ratio: here a's absolute lead
        return a, 0.80 + self.sd * rng.standard_normal((reps, n))

    def _bimodal(self, rng: np.random.Generator, reps: int, n: int) -> np.ndarray:
        solved = rng.random((reps, n)) < self.p
        low = 10 ** (-4 + 0.3 * rng.standard_normal((reps, n)))
        plateau = 10 ** (math.log10(1 / 6) + 0.02 * rng.standard_normal((reps, n)))
        return np.where(solved, low, plateau)


LOGN = Kind("log-normal MSE, SD(log10) 0.3", metrics.LOG, "min", 0.3)
TIGHT = Kind("log-normal MSE, SD(log10) 0.05", metrics.LOG, "min", 0.05)
NORMAL = Kind("normal accuracy, SD 0.03 (bounded scale)", metrics.BOUNDED, "max", 0.03)
BIMODAL = [Kind(f"bimodal solved/plateau, p {p:g}", metrics.LOG, "min", p=p) for p in (0.5, 0.2)]


# --------------------------------------------------------------------------- the rules, vectorised
def to_scale(x: np.ndarray, scale: metrics.Scale) -> np.ndarray:
    return np.log(x) if scale.ratio else x


def words(a: np.ndarray, b: np.ndarray, kind: Kind, alpha: float, equivalence: bool = True) -> np.ndarray:
    """The verdict (index into WORDS) of each row: stats.effect + stats.decide for a family
    of one comparison, as arrays. a, b: (reps, n) on the metric's own scale."""
    ya, yb = to_scale(a, kind.scale), to_scale(b, kind.scale)
    na, nb = ya.shape[1], yb.shape[1]
    d = ya.mean(1) - yb.mean(1)
    va, vb = ya.var(1, ddof=1) / na, yb.var(1, ddof=1) / nb
    se2 = va + vb
    pos = se2 > 0
    safe = np.where(pos, se2, 1.0)
    df = safe**2 / (va**2 / (na - 1) + vb**2 / (nb - 1) + (~pos))
    se = np.sqrt(safe)
    p_diff = np.where(pos, 2 * st.t.sf(np.abs(d) / se, df), np.where(d != 0, 0.0, 1.0))
    margin = SPEC.margin_for(kind.scale)
    delta = math.log(margin) if kind.scale.ratio else margin
    p_equiv = np.where(pos, np.maximum(st.t.sf((d + delta) / se, df), st.t.cdf((d - delta) / se, df)),
                       np.where(np.abs(d) < delta, 0.0, 1.0))
    if not equivalence:
        p_equiv = np.ones_like(p_equiv)
    a_wins = d < 0 if kind.goal == "min" else d > 0
    return np.where(p_equiv < alpha, EQU, np.where(p_diff < alpha, np.where(a_wins, BET, WOR), UND))


def fixed(a, b, kind: Kind, n: int) -> np.ndarray:
    return words(a[:, :n], b[:, :n], kind, ALPHA)


def until_decided(a, b, kind: Kind, looks=LOOKS, equivalence: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(verdict, seeds used per arm) of each row: the first look where the comparison is
    decided, at Pocock's per-look level; the last look's verdict at the cap."""
    level = power.pocock_alpha(tuple(looks), ALPHA)
    final = np.full(len(a), -1)
    used = np.full(len(a), looks[-1])
    for n in looks:
        w = words(a[:, :n], b[:, :n], kind, level, equivalence)
        stop = (final < 0) & ((w != UND) | (n == looks[-1]))
        final[stop], used[stop] = w[stop], n
    return final, used


def naive(a, b, kind: Kind, upto: int, start: int = 2) -> np.ndarray:
    """Whether any of the looks start..upto (every new seed) rejected at 0.05: difference only."""
    hit = np.zeros(len(a), bool)
    for n in range(start, upto + 1):
        hit |= np.isin(words(a[:, :n], b[:, :n], kind, ALPHA, equivalence=False), (BET, WOR))
    return hit


# --------------------------------------------------------------------------- grucli's own functions, per row
def grucli_word(a_row, b_row, kind: Kind, alpha: float) -> str:
    e = stats.effect(list(a_row), list(b_row), kind.scale, SPEC.margin_for(kind.scale))
    return stats.decide([e], kind.goal, alpha)[0].word


def grucli_until_decided(a_row, b_row, kind: Kind) -> tuple[str, int]:
    level = power.pocock_alpha(LOOKS, ALPHA)
    for n in LOOKS:
        w = grucli_word(a_row[:n], b_row[:n], kind, level)
        if stats.decided(w):
            return w, n
    return w, LOOKS[-1]


def judged(a_row, b_row, kind: Kind) -> tuple[str, int, int]:
    """(verdict, look index, seeds) from grucli.verdicts.judge on a one-setting TaskView
    run --until-decided, holding every seed (judge takes each look's first seeds)."""
    runs = pd.DataFrame({"cell": ["gru"] * len(a_row) + ["lstm"] * len(b_row),
                         "seed": list(range(len(a_row))) + list(range(len(b_row))),
                         "value": list(a_row) + list(b_row), "state": "ok"})
    view = TaskView("sim", "mse" if kind.scale is metrics.LOG else "accuracy", kind.goal, None, [], runs,
                    sequential=True)
    look = verdicts.judge(view, runs)
    (row,) = look.rows
    return row["verdict"], look.index, look.seeds


def check(a, b, kind: Kind, rows: int, judge_rows: int) -> tuple[int, int]:
    """Re-judge `rows` replications with grucli's functions (the first `judge_rows` also
    through verdicts.judge); (verdicts compared, judge calls compared). Stops the script
    if anything differs from the vectorised rules."""
    a, b = a[:rows], b[:rows]
    compared = 0
    for n in (3, 5):
        mine = WORDS[fixed(a, b, kind, n)]
        theirs = [grucli_word(a[i, :n], b[i, :n], kind, ALPHA) for i in range(rows)]
        bad = np.flatnonzero(mine != np.array(theirs))
        if bad.size:
            i = bad[0]
            raise SystemExit(f"{kind.name}, fixed n={n}: row {i} vectorised {mine[i]} != grucli {theirs[i]}")
        compared += rows
    w, used = until_decided(a, b, kind)
    for i in range(rows):
        theirs = grucli_until_decided(a[i], b[i], kind)
        if (WORDS[w[i]], used[i]) != theirs:
            mine = (WORDS[w[i]], used[i])
            raise SystemExit(f"{kind.name}, until-decided: row {i} vectorised {mine} != grucli {theirs}")
        if i < judge_rows:
            word, index, seeds = judged(a[i, :LOOKS[-1]], b[i, :LOOKS[-1]], kind)
            if (word, seeds) != theirs or LOOKS[index - 1] != seeds:
                raise SystemExit(f"{kind.name}: verdicts.judge {(word, index, seeds)} != {theirs}")
    return compared + rows, min(rows, judge_rows)


# --------------------------------------------------------------------------- tables
def pct(hits: np.ndarray) -> str:
    p = float(np.mean(hits))
    return f"{100 * p:5.1f} ±{100 * math.sqrt(p * (1 - p) / len(hits)):.1f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, rows), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20000, help="replications per scenario")
    parser.add_argument("--check", type=int, default=150,
                        help="replications per scenario re-judged by grucli's own functions")
    parser.add_argument("--check-judge", type=int, default=25, help="of those, judged through verdicts.judge")
    args = parser.parse_args()
    t0 = time.perf_counter()
    reps, k = args.reps, 0
    level = power.pocock_alpha(LOOKS, ALPHA)
    print(f"grucli verdict rules, {reps} replications per scenario, numpy default_rng seed {SEED}; "
          f"alpha {ALPHA}, looks {list(LOOKS)} at Pocock's per-look level {level:.4f}; margins: ratio "
          f"{SPEC.margin_for(metrics.LOG)} (log scale), {SPEC.margin_for(metrics.BOUNDED)} absolute (bounded)\n")

    def scenario(kind: Kind, ratio: float, width: int = LOOKS[-1]):
        nonlocal k
        k += 1
        return kind.draw(np.random.default_rng([SEED, k]), reps, width, ratio)

    checked = np.zeros(2, int)  # verdicts compared with stats.effect + decide; with verdicts.judge
    # 1. no true difference
    rows, fp_targets, first_look = [], [], (math.nan, math.nan)
    nulls = [(LOGN, 1.0), (TIGHT, 1.0), (NORMAL, 0.0), *[(b, 1.0) for b in BIMODAL]]
    for kind, null in nulls:
        a, b = scenario(kind, null)
        checked += check(a, b, kind, args.check, args.check_judge)
        f3, f5 = fixed(a, b, kind, 3), fixed(a, b, kind, 5)
        w, used = until_decided(a, b, kind)
        wd, _ = until_decided(a, b, kind, equivalence=False)
        w4, _ = until_decided(a, b, kind, LATER)
        fp = [np.isin(x, (BET, WOR)) for x in (f3, f5, w, wd)]
        fp_targets += [float(np.mean(x)) for x in fp]
        if kind is BIMODAL[0]:
            first_look = (float(np.mean(fp[2] & (used == LOOKS[0]))), float(np.mean(np.isin(w4, (BET, WOR)))))
        rows.append([kind.name, *map(pct, fp), pct(w == EQU), f"{used.mean():.2f}", pct(np.isin(w4, (BET, WOR)))])
    print(table("1. False positives (% better or worse) with no true difference",
                ["data", "fixed n=3", "fixed n=5", "until-decided", "until, diff only", "until: % equiv",
                 "until: seeds", f"until {list(LATER)}"], rows))

    # 2. power at SD(log10) 0.3
    rows, power10_3 = [], None
    for ratio in (2.0, 10.0):
        a, b = scenario(LOGN, ratio)
        checked += check(a, b, LOGN, args.check, args.check_judge)
        f3, f5 = fixed(a, b, LOGN, 3), fixed(a, b, LOGN, 5)
        w, used = until_decided(a, b, LOGN)
        w4, used4 = until_decided(a, b, LOGN, LATER)
        power10_3 = float(np.mean(f3 == BET)) if ratio == 10 else power10_3
        # why n=3 falls short: the same data under Student's pooled t (df 4, what power.power_difference models)
        ya, yb = np.log(a[:, :3]), np.log(b[:, :3])
        student = (st.ttest_ind(ya, yb, axis=1).pvalue < ALPHA) & (ya.mean(1) < yb.mean(1))
        predicted = power.power_difference(3, math.log(ratio), LOGN.sd * math.log(10), ALPHA)
        rows.append([f"true MSE ratio {ratio:g}x", pct(f3 == BET), pct(f5 == BET), pct(w == BET),
                     pct(w == WOR), f"{used.mean():.2f}", f"{pct(w4 == BET)} / {used4.mean():.2f}", pct(student),
                     f"{100 * predicted:.1f}"])
    print(table("2. Power (% better) for a true MSE ratio, log-normal SD(log10) 0.3",
                ["truth", "fixed n=3", "fixed n=5", "until-decided", "until: % worse", "until: seeds",
                 f"until {list(LATER)}: % / seeds", "Student t n=3", "power_difference(3)"], rows))

    # 3. false equivalence at and beyond the margin
    rows = []
    for kind in (LOGN, TIGHT):
        for ratio in (SPEC.margin_for(metrics.LOG), 1.5):
            a, b = scenario(kind, ratio)
            checked += check(a, b, kind, args.check // 3, 0)
            f3, f5 = fixed(a, b, kind, 3), fixed(a, b, kind, 5)
            w, used = until_decided(a, b, kind)
            rows.append([f"{kind.name}, true ratio {ratio:g}", pct(f3 == EQU), pct(f5 == EQU), pct(w == EQU),
                         pct(w == BET), f"{used.mean():.2f}"])
    print(table("3. False 'equivalent' (%) when the true ratio is at or beyond the margin 1.25",
                ["data", "fixed n=3", "fixed n=5", "until-decided", "until: % better", "until: seeds"], rows))

    # 4. naive re-testing
    every = tuple(range(3, 11))
    t_every = time.perf_counter()
    level_every = power.pocock_alpha(every, ALPHA)
    t_every = time.perf_counter() - t_every
    a, b = scenario(LOGN, 1.0, 20)
    w_every, _ = until_decided(a, b, LOGN, every, equivalence=False)
    w_plan, _ = until_decided(a, b, LOGN, equivalence=False)
    rows = [["naive, every seed 2..10 at 0.05", pct(naive(a, b, LOGN, 10))],
            ["naive, every seed 3..10 at 0.05", pct(naive(a, b, LOGN, 10, 3))],
            ["naive, every seed 2..20 at 0.05", pct(naive(a, b, LOGN, 20))],
            ["naive, every seed 3..20 at 0.05", pct(naive(a, b, LOGN, 20, 3))],
            [f"Pocock, every seed 3..10 at {level_every:.4f}", pct(np.isin(w_every, (BET, WOR)))],
            [f"Pocock, looks {list(LOOKS)} at {level:.4f}", pct(np.isin(w_plan, (BET, WOR)))]]
    print(table("4. Re-testing as seeds arrive, no true difference (log-normal, SD(log10) 0.3), difference test only",
                ["rule", "% false positives"], rows))

    worst = max(fp_targets)
    p = BIMODAL[0].p
    print(f"Targets: false positives <= 5% for every rule: worst {100 * worst:.1f}% "
          f"({'met' if worst <= 0.05 else 'MISSED'}); power >= 0.8 for 10x at SD(log10) 0.3 with 3 seeds a side: "
          f"{power10_3:.3f} ({'met' if power10_3 >= 0.8 else 'MISSED'}).")
    print(f"Why the first look has {LOOKS[0]} seeds: on bimodal data (p {p:g}) with 3 seeds a side, all solved against "
          f"all on the plateau (chance 2 p^3 (1-p)^3 = {200 * p**3 * (1 - p) ** 3:.1f}%) leaves almost no spread within "
          f"an arm, so Welch rejects at any level and no per-look level corrects it: the plan {list(LATER)} gives "
          f"{100 * first_look[1]:.1f}% false positives there; with {list(LOOKS)}, {100 * first_look[0]:.1f} points of "
          f"until-decided's false positives come at its first look. "
          f"Power at 3 seeds: Welch's degrees of freedom fall between 2 and 4; Student's pooled t (df 4) on the same "
          f"data has the power power_difference predicts: at small n, seeds-needed figures overstate the power of "
          f"the Welch test grucli runs.")
    print(f"Checked: {checked[0]} verdicts of the vectorised rules equal grucli's stats.effect + stats.decide, "
          f"{checked[1]} sequential ones (verdict and look) equal verdicts.judge on a TaskView; "
          f"pocock_alpha over 8 looks took {t_every:.1f} s; total {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
