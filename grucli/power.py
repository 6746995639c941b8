"""How many seeds would decide a comparison, and the per-look level of a sequential plan.
Pure functions (scipy only).

seeds_needed   power of the two-sample t-test (scipy's noncentral t) and of TOST at the
               declared margin, with the SD inflated to an upper confidence bound, since an
               SD from 3 seeds is itself a guess (Colas et al. 2018, "How many random seeds?")
pocock_alpha   the constant nominal level per look that keeps the overall false-positive
               rate of repeated looks at alpha (Pocock 1977), for looks at any seed counts:
               the looks' z statistics are Brownian motion at information n_k, and the
               level solves P(max_k |Z_k| >= c) = alpha by multivariate normal integration
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize
from scipy import stats as _st

POWER = 0.8  # the power a seeds-needed figure aims at
SD_UPPER = 0.8  # the SD is taken at its one-sided 80% upper confidence bound
MAX_SEEDS = 1000  # beyond this a seeds-needed figure says "more than 1,000"


def sd_upper(sd: float, df: float, level: float = SD_UPPER) -> float:
    """One-sided `level` upper confidence bound of a normal SD from a sample with `df`
    degrees of freedom: sd * sqrt(df / chi2_{1 - level}(df))."""
    return sd * math.sqrt(df / _st.chi2.ppf(1 - level, df))


def power_difference(n: int, delta: float, sd: float, alpha: float, paired: bool = False) -> float:
    """Power of the two-sided t-test of no difference when the true difference is `delta`:
    two groups of n (pooled, df 2n - 2), or n paired differences (df n - 1)."""
    df = n - 1 if paired else 2 * n - 2
    if df < 1:
        return 0.0
    se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
    nc = delta / se
    t = _st.t.ppf(1 - alpha / 2, df)
    return float(_st.nct.sf(t, df, nc) + _st.nct.cdf(-t, df, nc))


def power_equivalence(n: int, margin: float, sd: float, alpha: float, paired: bool = False) -> float:
    """Power of TOST (two one-sided tests at `alpha`) to show equivalence within
    +-`margin` when the true difference is 0: 2 F_t(margin / se - t_{1-alpha}) - 1
    (Chow, Shao & Wang 2008, 3.2), at least 0."""
    df = n - 1 if paired else 2 * n - 2
    if df < 1:
        return 0.0
    se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
    return max(0.0, float(2 * _st.t.cdf(margin / se - _st.t.ppf(1 - alpha, df), df) - 1))


def seeds_needed(sd: float | None, df: float | None, margin: float | None, alpha: float, *,
                 paired: bool = False, power: float = POWER) -> int | None:
    """Seeds per cell at which both the difference test (true difference = the margin)
    and the equivalence test (true difference 0) reach `power`, with the SD at its upper
    bound (`sd_upper`). `margin` and `sd` are on the test's scale (a log ratio on the log
    scale). None when it cannot be said (no SD or margin); MAX_SEEDS + 1 beyond MAX_SEEDS."""
    if sd is None or df is None or margin is None or not df >= 1 or margin <= 0:
        return None
    if sd == 0:
        return 2
    s = sd_upper(sd, df)
    for n in range(2, MAX_SEEDS + 1):
        if (power_difference(n, margin, s, alpha, paired) >= power
                and power_equivalence(n, margin, s, alpha, paired) >= power):
            return n
    return MAX_SEEDS + 1


@functools.lru_cache(maxsize=64)
def pocock_alpha(looks: tuple[int, ...], alpha: float) -> float:
    """The nominal two-sided level used at every look of a plan that looks at `looks`
    seeds per cell (increasing), such that under no difference the chance of rejecting at
    any look is `alpha`: corr(Z_i, Z_j) = sqrt(n_i / n_j), c solves
    P(|Z_k| < c for all k) = 1 - alpha, the level is 2 (1 - Phi(c)). One look: alpha."""
    looks = tuple(sorted(set(looks)))
    if len(looks) == 1:
        return alpha
    n = np.array(looks, dtype=float)
    corr = np.sqrt(np.minimum.outer(n, n) / np.maximum.outer(n, n))
    mvn = _st.multivariate_normal(mean=np.zeros(len(n)), cov=corr, seed=12345)

    def miss(c: float) -> float:  # P(no look rejects) - (1 - alpha)
        return float(mvn.cdf(np.full(len(n), c), lower_limit=np.full(len(n), -c))) - (1 - alpha)

    # the root lies between no correction and Bonferroni
    c = optimize.brentq(miss, _st.norm.ppf(1 - alpha / 2), _st.norm.ppf(1 - alpha / (2 * len(n))), xtol=1e-4)
    return float(2 * _st.norm.sf(c))
