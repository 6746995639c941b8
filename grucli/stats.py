"""Statistics across seeds. Pure functions on plain sequences of numbers.

Every verdict grucli prints comes from `effect` (one comparison on the metric's scale, with
its difference test and its equivalence test) and `decide` (a family of comparisons, Holm
over that family only). Intervals come from `estimate`, on the metric's scale and inside its
range (grucli.metrics). References: Welch 1947; Schuirmann 1987 (TOST); Holm 1979.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import stats as _st

from grucli.metrics import Scale


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float | None, int]:
    """Mean, half-width of the Student-t confidence interval, and n (non-NaN values).
    The half-width is None when n < 2 (no interval from one seed)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    if n == 0:
        return float("nan"), None, 0
    mean = sum(xs) / n
    if n < 2:
        return mean, None, n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return mean, _st.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n), n


# --------------------------------------------------------------------------- two groups
ALPHA = 0.05  # significance level of every verdict in the report


@dataclass(frozen=True)
class Describe:
    """One group of values across seeds."""

    mean: float
    ci: float | None  # half-width of the 95% Student-t interval; None when n < 2
    sd: float | None  # sample standard deviation (n - 1); None when n < 2
    n: int


@dataclass(frozen=True)
class Comparison:
    """Group a against group b: difference of means a - b with its Welch interval,
    two tests and an effect size. Fields are None where n is too small to say anything."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    diff_lo: float | None  # 95% Welch-Satterthwaite interval of the difference
    diff_hi: float | None
    df: float | None  # Welch-Satterthwaite degrees of freedom
    p_welch: float | None  # two-sided Welch t-test
    p_rank: float | None  # two-sided Mann-Whitney U (exact for small samples)
    hedges_g: float | None  # standardised difference (pooled SD), small-sample corrected


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _mean_var(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def describe(values: Sequence[float], confidence: float = 0.95) -> Describe:
    """Mean, CI half-width, SD and n of the non-NaN values (the summary-table cell)."""
    xs = _clean(values)
    mean, ci, n = mean_ci(xs, confidence)
    sd = math.sqrt(_mean_var(xs)[1]) if n >= 2 else None
    return Describe(mean, ci, sd, n)


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95):
    """Welch's unequal-variance t-test of mean(a) - mean(b).

    se^2 = s_a^2/n_a + s_b^2/n_b;  t = (m_a - m_b) / se;
    df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))   (Welch-Satterthwaite).
    Returns (diff, half_width, df, t, p); everything but diff is None when a group has
    fewer than 2 values or both groups have zero variance."""
    xa, xb = _clean(a), _clean(b)
    if not xa or not xb:
        return float("nan"), None, None, None, None
    diff = sum(xa) / len(xa) - sum(xb) / len(xb)
    if len(xa) < 2 or len(xb) < 2:
        return diff, None, None, None, None
    va, vb = _mean_var(xa)[1] / len(xa), _mean_var(xb)[1] / len(xb)
    se2 = va + vb
    if se2 == 0:
        return diff, None, None, None, None
    df = se2**2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    se = math.sqrt(se2)
    t = diff / se
    p = 2 * _st.t.sf(abs(t), df)
    return diff, _st.t.ppf(0.5 + confidence / 2, df) * se, df, t, float(p)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value (exact when there are no ties and n is small).
    With 3 seeds against 3 the smallest possible p is 0.1: a rank test cannot reject at
    0.05 there, which the report says."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2 or len(set(xa + xb)) == 1:
        return None
    return float(_st.mannwhitneyu(xa, xb, alternative="two-sided", method="auto").pvalue)


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Hedges' g: Cohen's d with the pooled SD, times J = 1 - 3 / (4 (n_a + n_b) - 9)."""
    xa, xb = _clean(a), _clean(b)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return None
    (ma, va), (mb, vb) = _mean_var(xa), _mean_var(xb)
    pooled = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    if pooled == 0:
        return None
    return (ma - mb) / pooled * (1 - 3 / (4 * (na + nb) - 9))


def compare(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Comparison:
    xa, xb = _clean(a), _clean(b)
    diff, half, df, _t, p = welch(xa, xb, confidence)
    nan = float("nan")
    return Comparison(
        n_a=len(xa), n_b=len(xb),
        mean_a=sum(xa) / len(xa) if xa else nan, mean_b=sum(xb) / len(xb) if xb else nan,
        diff=diff, diff_lo=None if half is None else diff - half, diff_hi=None if half is None else diff + half,
        df=df, p_welch=p, p_rank=mann_whitney_p(xa, xb), hedges_g=hedges_g(xa, xb),
    )


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the given order: the m p-values that exist,
    sorted ascending, become max over j <= i of (m - j + 1) * p_(j), capped at 1. A test
    that could not be run (None) stays None and is not counted in m."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and p == p)
    m, out, running = len(tested), list(pvalues), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def verdict(c: Comparison, name_a: str, name_b: str, goal: str, word: str = "better",
            alpha: float = ALPHA, p: float | None = None) -> str:
    """`"gru better"` only when the test is significant at `alpha` (Welch's p, or `p` when
    given: e.g. Holm-adjusted over a report's comparisons); otherwise `"no significant
    difference"`, or why nothing can be said."""
    if c.n_a < 2 or c.n_b < 2:
        return "not testable (fewer than 2 seeds)"
    if c.p_welch is None:
        return "no significant difference" if c.diff == 0 else "not testable (no spread across seeds)"
    if (c.p_welch if p is None else p) >= alpha:
        return "no significant difference"
    a_wins = c.diff < 0 if goal == "min" else c.diff > 0
    return f"{name_a if a_wins else name_b} {word}"


# --------------------------------------------------------------------------- on a metric's scale
def to_scale(values: Sequence[float], scale: Scale) -> list[float]:
    """The finite values as the tests see them: logs on the log scale (a value <= 0 there
    cannot be, and is dropped), the values themselves otherwise."""
    xs = _clean(values)
    return [math.log(x) for x in xs if x > 0] if scale.ratio else xs


@dataclass(frozen=True)
class Estimate:
    """One group across seeds on its metric's scale: the centre (geometric mean on the log
    scale) and its interval, inside the metric's range."""

    centre: float
    lo: float | None  # None when n < 2
    hi: float | None
    n: int
    sd: float | None  # SD on the scale (of the logs on the log scale)


def estimate(values: Sequence[float], scale: Scale, confidence: float = 0.95) -> Estimate:
    """Centre and Student-t interval on the scale: exp(mean log +- t s / sqrt n) on the log
    scale (positive by construction); elsewhere mean +- t s / sqrt n cut to the range."""
    ys = to_scale(values, scale)
    n = len(ys)
    if n == 0:
        return Estimate(float("nan"), None, None, 0, None)
    m = sum(ys) / n
    if n < 2:
        return Estimate(math.exp(m) if scale.ratio else m, None, None, n, None)
    sd = math.sqrt(_mean_var(ys)[1])
    half = _st.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    if scale.ratio:
        return Estimate(math.exp(m), math.exp(m - half), math.exp(m + half), n, sd)
    return Estimate(m, max(scale.lo, m - half), min(scale.hi, m + half), n, sd)


@dataclass(frozen=True)
class Effect:
    """a against b on the metric's scale. On the log scale the effect is the ratio of
    geometric means a / b; elsewhere the difference of means a - b. Its interval is the
    95% one (cut to what the range allows); `p_diff` tests no difference (two-sided),
    `p_equiv` tests equivalence within the margin (TOST: the larger of the two one-sided
    p-values; None without a margin)."""

    scale: str
    n_a: int
    n_b: int
    centre_a: float
    centre_b: float
    value: float  # ratio a / b, or difference a - b
    lo: float | None
    hi: float | None
    p_diff: float | None
    p_equiv: float | None
    margin: float | None  # ratio or absolute, as declared
    paired: bool  # seeds paired (same data per seed): a one-sample test of the differences
    sd: float | None  # SD on the scale: pooled (unpaired) or of the differences (paired); for power
    df: float | None
    hedges_g: float | None  # standardised difference on the scale (unpaired; None when paired)

    @property
    def testable(self) -> bool:
        return self.p_diff is not None

    def favours_a(self, goal: str) -> bool:
        """Whether the point estimate favours a (lower for goal min)."""
        null = 1.0 if self.scale == "log" else 0.0
        return self.value < null if goal == "min" else self.value > null


def effect(a: Sequence[float], b: Sequence[float], scale: Scale, margin: float | None = None, *,
           paired: bool = False, confidence: float = 0.95) -> Effect:
    """One comparison on `scale` (Welch for independent groups, a one-sample t on the
    per-seed differences when `paired`: the values must then be in seed order, one per seed
    in both). With no spread at all the interval is the point itself: the difference
    decides (p 0 or 1), as the t statistic's limit does."""
    ya, yb = to_scale(a, scale), to_scale(b, scale)
    na, nb = len(ya), len(yb)
    back = math.exp if scale.ratio else (lambda v: v)
    ca = back(sum(ya) / na) if na else float("nan")
    cb = back(sum(yb) / nb) if nb else float("nan")
    delta = None if margin is None else (math.log(margin) if scale.ratio else margin)
    empty = Effect(scale.name, na, nb, ca, cb, float("nan"), None, None, None, None, margin, paired, None, None, None)
    if not na or not nb:
        return empty
    d = sum(ya) / na - sum(yb) / nb
    value = back(d) if scale.ratio else d
    paired = paired and na == nb
    if paired:
        diffs = [x - y for x, y in zip(ya, yb)]
        if na < 2:
            return Effect(**{**empty.__dict__, "value": value})
        sd = math.sqrt(_mean_var(diffs)[1])
        se, df, g = sd / math.sqrt(na), na - 1.0, None
    else:
        if na < 2 or nb < 2:
            return Effect(**{**empty.__dict__, "value": value})
        va, vb = _mean_var(ya)[1], _mean_var(yb)[1]
        se2 = va / na + vb / nb
        df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if se2 > 0 else float(na + nb - 2)
        se = math.sqrt(se2)
        sd = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
        g = d / sd * (1 - 3 / (4 * (na + nb) - 9)) if sd > 0 else None
    if se > 0:
        t = _st.t.ppf(0.5 + confidence / 2, df)
        lo, hi = d - t * se, d + t * se
        p_diff = float(2 * _st.t.sf(abs(d) / se, df))
        p_equiv = None if delta is None else float(max(_st.t.sf((d + delta) / se, df), _st.t.cdf((d - delta) / se, df)))
    else:
        lo = hi = d
        p_diff = 0.0 if d != 0 else 1.0
        p_equiv = None if delta is None else (0.0 if abs(d) < delta else 1.0)
    if scale.ratio:
        lo, hi = math.exp(lo), math.exp(hi)
    else:  # a difference of two means inside [lo, hi] lies inside [lo - hi, hi - lo]
        lo, hi = max(lo, scale.lo - scale.hi), min(hi, scale.hi - scale.lo)
    return Effect(scale.name, na, nb, ca, cb, value, lo, hi, p_diff, p_equiv, margin, paired, sd, df, g)


# --------------------------------------------------------------------------- verdicts
BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
NOT_TESTABLE = "not testable"


@dataclass(frozen=True)
class Decision:
    """The verdict on one comparison of a family, from a's side: better | worse |
    equivalent (within the margin) | undecided | not testable, with the Holm-adjusted
    p-values it rests on and the family's size."""

    word: str
    p_diff: float | None  # Holm-adjusted over the family
    p_equiv: float | None  # Holm-adjusted over the family
    family: int  # comparisons the family holds (the m of Holm)
    why: str = ""  # why not testable


def decide(effects: Sequence[Effect], goal: str, alpha: float = ALPHA) -> list[Decision]:
    """Verdicts on a family of comparisons (one Answer's, one claim's, one study's pairs):
    Holm over the family's difference tests and, apart, over its equivalence tests, each
    keeping the family-wise error at `alpha`. Equivalent when the equivalence test rejects
    (the difference lies within the margin, whatever its sign); else better or worse when
    the difference test rejects; else undecided."""
    p_diff = holm([e.p_diff for e in effects])
    p_equiv = holm([e.p_equiv for e in effects])
    m = sum(e.testable for e in effects)
    out = []
    for e, pd_, pe in zip(effects, p_diff, p_equiv):
        if not e.testable:
            why = "fewer than 2 seeds" if min(e.n_a, e.n_b) < 2 else "no finite values"
            out.append(Decision(NOT_TESTABLE, None, None, m, why))
        elif pe is not None and pe < alpha:
            out.append(Decision(EQUIVALENT, pd_, pe, m))
        elif pd_ < alpha:
            out.append(Decision(BETTER if e.favours_a(goal) else WORSE, pd_, pe, m))
        else:
            out.append(Decision(UNDECIDED, pd_, pe, m))
    return out


def decided(word: str) -> bool:
    return word in (BETTER, WORSE, EQUIVALENT)


def phrase(word: str, a: str, b: str, better: str = "better") -> str:
    """`gru better than lstm`, `gru and lstm equivalent`, `undecided` (`better` may be
    `faster`)."""
    if word == BETTER:
        return f"{a} {better} than {b}"
    if word == WORSE:
        return f"{b} {better} than {a}"
    if word == EQUIVALENT:
        return f"{a} and {b} equivalent"
    return word


# --------------------------------------------------------------------------- across settings
@dataclass(frozen=True)
class Overall:
    """P(a run of a beats a run of b) averaged over settings, with a stratified bootstrap
    interval (Agarwal et al. 2021, "probability of improvement"), and Wilcoxon's
    signed-rank test over the settings' differences where there are enough (Demsar 2006)."""

    p: float
    lo: float
    hi: float
    settings: int
    p_wilcoxon: float | None  # None with fewer than WILCOXON_MIN settings

    @property
    def decided(self) -> bool:
        return self.lo > 0.5 or self.hi < 0.5


WILCOXON_MIN = 5  # settings needed before Wilcoxon's signed-rank test is run
BOOTSTRAP_REPS = 2000


def probability_of_improvement(strata: Sequence[tuple[Sequence[float], Sequence[float]]], goal: str, scale: Scale,
                               *, reps: int = BOOTSTRAP_REPS, seed: int = 0, confidence: float = 0.95) -> Overall | None:
    """`strata`: per setting, (a's values, b's values) over seeds. A pair of runs counts 1
    when a's is better, 1/2 on a tie. Seeds are resampled within each setting (the
    stratified bootstrap), `reps` times from a generator seeded with `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sign = -1.0 if goal == "min" else 1.0
    point, boots, diffs = [], np.zeros(reps), []
    kept = [(np.array(_clean(a)), np.array(_clean(b))) for a, b in strata]
    kept = [(a, b) for a, b in kept if len(a) and len(b)]
    if not kept:
        return None
    for a, b in kept:
        point.append(_beats(sign * a[None, :], sign * b[None, :]).item())
        ia, ib = rng.integers(0, len(a), (reps, len(a))), rng.integers(0, len(b), (reps, len(b)))
        boots += _beats(sign * a[ia], sign * b[ib])
        ya, yb = to_scale(a.tolist(), scale), to_scale(b.tolist(), scale)
        if ya and yb:
            diffs.append(sign * (sum(ya) / len(ya) - sum(yb) / len(yb)))
    boots /= len(kept)
    tail = (1 - confidence) / 2
    p_w = None
    if len(diffs) >= WILCOXON_MIN:
        p_w = 1.0 if all(d == 0 for d in diffs) else float(_st.wilcoxon(diffs).pvalue)
    return Overall(sum(point) / len(point), float(np.quantile(boots, tail)), float(np.quantile(boots, 1 - tail)),
                   len(kept), p_w)


def _beats(a, b):
    """Mean over run pairs of 1[a > b] + 1/2 1[a == b], per row: a (R, n_a), b (R, n_b)."""
    x, y = a[:, :, None], b[:, None, :]
    return ((x > y) + 0.5 * (x == y)).mean(axis=(1, 2))
