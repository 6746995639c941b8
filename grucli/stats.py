"""Statistics across seeds. Pure functions on plain sequences of numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import stats as _st


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
