"""grucli.power against independent computations: statsmodels' power classes, the noncentral
t written out with scipy.stats.nct, the TOST power formula by hand, a Monte Carlo of TOST,
Pocock's published constants, and a simulation of the looks' Brownian motion."""

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.power import TTestIndPower, TTestPower

from grucli import power


@pytest.mark.parametrize("n, delta, sd, alpha", [(3, math.log(10), 0.3 * math.log(10), 0.05), (5, 1.0, 1.0, 0.05),
                                                 (12, 0.3, 0.5, 0.0179), (40, 0.2, 1.0, 0.01)])
def test_power_difference_against_statsmodels_and_nct(n, delta, sd, alpha):
    got = power.power_difference(n, delta, sd, alpha)
    # statsmodels: two groups of n, pooled df 2n - 2, effect size delta / sd
    assert got == pytest.approx(TTestIndPower().power(delta / sd, nobs1=n, alpha=alpha, ratio=1.0), abs=1e-9)
    # by hand: noncentrality delta / (sd sqrt(2/n)), both tails of the noncentral t
    df, nc = 2 * n - 2, delta / (sd * math.sqrt(2 / n))
    crit = st.t.isf(alpha / 2, df)
    assert got == pytest.approx(1 - st.nct.cdf(crit, df, nc) + st.nct.cdf(-crit, df, nc), abs=1e-9)
    # paired: n differences, df n - 1, noncentrality delta / (sd / sqrt n)
    paired = power.power_difference(n, delta, sd, alpha, paired=True)
    assert paired == pytest.approx(TTestPower().power(delta / sd, nobs=n, alpha=alpha), abs=1e-9)


def test_power_difference_edges():
    assert power.power_difference(1, 1.0, 1.0, 0.05) == 0.0  # no degrees of freedom
    assert power.power_difference(5, 0.0, 1.0, 0.05) == pytest.approx(0.05)  # no effect: the level
    assert power.power_difference(4, 1.0, 1.0, 0.05) < power.power_difference(8, 1.0, 1.0, 0.05)


@pytest.mark.parametrize("n, margin, sd, alpha, paired", [(5, 1.0, 1.0, 0.05, False),
                                                         (12, math.log(1.25), 0.1, 0.05, False),
                                                         (20, 0.5, 1.0, 0.0179, False), (8, 0.5, 0.4, 0.05, True)])
def test_power_equivalence_by_hand(n, margin, sd, alpha, paired):
    # TOST power at a true difference of 0 (Chow, Shao & Wang 2008, 3.2): 2 F_t(margin/se - t_{1-alpha}) - 1
    df = n - 1 if paired else 2 * n - 2
    se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
    t1 = st.t.isf(alpha, df)
    hand = max(0.0, 2 * st.t.cdf(margin / se - t1, df) - 1)
    assert power.power_equivalence(n, margin, sd, alpha, paired) == pytest.approx(hand, abs=1e-12)


def test_power_equivalence_near_a_monte_carlo_of_tost():
    """The formula is an approximation (it treats the SD as known in the margin term): near a
    simulated TOST on normal data with no true difference."""
    n, margin, sd, alpha, reps = 10, 1.0, 1.0, 0.05, 40000
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, sd, (reps, n)), rng.normal(0, sd, (reps, n))
    d = a.mean(1) - b.mean(1)
    se = np.sqrt((a.var(1, ddof=1) + b.var(1, ddof=1)) / n)
    df = 2 * n - 2
    p = np.maximum(st.t.sf((d + margin) / se, df), st.t.cdf((d - margin) / se, df))
    simulated = float((p < alpha).mean())
    assert power.power_equivalence(n, margin, sd, alpha) == pytest.approx(simulated, abs=0.03)
    assert power.power_equivalence(2, 0.01, 1.0, 0.05) == 0.0  # cut at 0, never negative


def test_sd_upper_is_the_chi_square_bound():
    s = power.sd_upper(1.0, 4)
    # P(chi2_4 <= 4 sd^2 / s^2) = 1 - 0.8: the SD is below s with probability 0.8
    assert st.chi2.cdf(4 / s**2, 4) == pytest.approx(0.2, abs=1e-12)
    assert s > 1.0 and power.sd_upper(1.0, 400) < s  # more degrees of freedom: a tighter bound


@pytest.mark.parametrize("sd, df, margin, alpha, paired", [(0.5, 4, math.log(1.25), 0.05, False),
                                                           (0.3, 4, math.log(1.25), 0.0167, False),
                                                           (1.0, 10, 1.0, 0.05, False), (0.2, 2, 0.3, 0.05, True)])
def test_seeds_needed_is_the_smallest_n_reaching_both_powers(sd, df, margin, alpha, paired):
    n = power.seeds_needed(sd, df, margin, alpha, paired=paired)
    s = sd * math.sqrt(df / st.chi2.ppf(0.2, df))  # the SD at its 80% upper bound, by hand
    assert 2 < n <= power.MAX_SEEDS

    def both(k):
        return (power.power_difference(k, margin, s, alpha, paired) >= 0.8
                and power.power_equivalence(k, margin, s, alpha, paired) >= 0.8)

    assert both(n) and not both(n - 1)
    # the difference test's part alone, from statsmodels' solver: seeds_needed is at least it
    solver = TTestPower() if paired else TTestIndPower()
    kw = {"nobs": None} if paired else {"nobs1": None, "ratio": 1.0}
    n_diff = math.ceil(solver.solve_power(effect_size=margin / s, alpha=alpha, power=0.8, **kw))
    assert n >= n_diff
    assert power.power_difference(n_diff, margin, s, alpha, paired) >= 0.8 > power.power_difference(
        n_diff - 1, margin, s, alpha, paired)


def test_seeds_needed_edges():
    assert power.seeds_needed(None, 4, 0.2, 0.05) is None  # no SD
    assert power.seeds_needed(0.5, 4, None, 0.05) is None  # no margin
    assert power.seeds_needed(0.5, 0, 0.2, 0.05) is None  # no degrees of freedom
    assert power.seeds_needed(0.0, 4, 0.2, 0.05) == 2  # no spread: 2 seeds decide
    assert power.seeds_needed(100.0, 2, 0.01, 0.05) == power.MAX_SEEDS + 1  # beyond the search
    # a larger SD or a smaller margin never needs fewer seeds
    assert power.seeds_needed(0.6, 4, 0.2, 0.05) >= power.seeds_needed(0.5, 4, 0.2, 0.05)
    assert power.seeds_needed(0.5, 4, 0.15, 0.05) >= power.seeds_needed(0.5, 4, 0.2, 0.05)


@pytest.mark.parametrize("looks, published", [((1, 2), 0.0294), ((5, 10), 0.0294), ((1, 2, 3), 0.0221),
                                              ((1, 2, 3, 4), 0.0182), ((3, 6, 9, 12), 0.0182)])
def test_pocock_alpha_gives_pococks_published_levels(looks, published):
    # Pocock 1977, table 1 (two-sided 0.05, equally spaced looks): the level depends on the
    # looks' spacing only, not on where the first one falls
    assert power.pocock_alpha(looks, 0.05) == pytest.approx(published, abs=2e-4)


def test_pocock_alpha_one_look_is_alpha_and_order_does_not_matter():
    assert power.pocock_alpha((5,), 0.05) == 0.05
    assert power.pocock_alpha((7,), 0.01) == 0.01
    assert power.pocock_alpha((12, 3, 8, 5), 0.05) == pytest.approx(power.pocock_alpha((3, 5, 8, 12), 0.05), abs=1e-6)


def test_pocock_alpha_keeps_the_overall_level_of_the_planned_looks():
    """Simulated: the looks' z statistics as Brownian motion at information 3, 5, 8, 12; at the
    per-look level, the chance that any look rejects is alpha (the unequal spacing included)."""
    looks = (3, 5, 8, 12)
    level = power.pocock_alpha(looks, 0.05)
    assert 0.0182 - 0.002 < level < 0.05 / 2  # between Bonferroni-like and no correction
    rng = np.random.default_rng(11)
    steps = rng.standard_normal((200000, 12)).cumsum(axis=1)
    z = steps[:, [n - 1 for n in looks]] / np.sqrt(looks)
    overall = float((np.abs(z) > st.norm.isf(level / 2)).any(axis=1).mean())
    assert overall == pytest.approx(0.05, abs=0.0025)
    naive = float((np.abs(z) > st.norm.isf(0.025)).any(axis=1).mean())
    assert naive > 0.09  # the same looks at 0.05 each: what the constant level corrects
