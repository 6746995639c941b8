"""grucli.stats against values worked out by hand (or by an independent formula), never by
calling the scipy function the module itself uses."""

import math

import pytest

from grucli import stats

A = [1.0, 2.0, 3.0, 4.0]
B = [3.0, 4.0, 5.0, 6.0, 7.0]


def t_cdf_upper(t: float, df: float, steps: int = 20000) -> float:
    """P(T > t) for Student's t by Simpson integration of its density from 0 to t."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = t / steps
    s = f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 0.5 - s * h / 3


def test_mean_ci_by_hand():
    # mean 2.5, sd sqrt(5/3) = 1.290994, t(0.975, 3) = 3.182446 (printed tables)
    mean, half, n = stats.mean_ci(A)
    assert (mean, n) == (2.5, 4)
    assert half == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)


def test_one_value_has_no_interval():
    assert stats.mean_ci([0.3]) == (0.3, None, 1)
    d = stats.describe([0.3, float("nan")])
    assert (d.mean, d.ci, d.sd, d.n) == (0.3, None, None, 1)


def test_welch_by_hand():
    # var A = 5/3, var B = 5/2; se^2 = 5/12 + 1/2 = 11/12; t = -2.5 / sqrt(11/12)
    # df = (11/12)^2 / ((5/12)^2 / 3 + (1/2)^2 / 4) = 6.98077
    diff, half, df, t, p = stats.welch(A, B)
    assert diff == -2.5
    assert t == pytest.approx(-2.5 / math.sqrt(11 / 12))
    assert df == pytest.approx((11 / 12) ** 2 / ((5 / 12) ** 2 / 3 + 0.5**2 / 4))
    assert df == pytest.approx(6.98077, abs=1e-5)
    assert p == pytest.approx(2 * t_cdf_upper(abs(t), df), abs=1e-7)
    assert p == pytest.approx(0.03496, abs=5e-5)  # R: t.test(1:4, 3:7) -> p-value = 0.03496
    # the interval's half-width is t(0.975, df) * se: invert through the same density
    q = half / math.sqrt(11 / 12)
    assert t_cdf_upper(q, df) == pytest.approx(0.025, abs=1e-6)


def test_mann_whitney_exact_by_hand():
    # complete separation of 3 vs 3: U = 0, two-sided exact p = 2 / C(6, 3) = 0.1
    assert stats.mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # 4 vs 5 separated: 2 / C(9, 4) = 2 / 126
    assert stats.mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8, 9]) == pytest.approx(2 / 126)


def test_hedges_g_by_hand():
    # pooled sd = sqrt((3 * 5/3 + 4 * 5/2) / 7) = sqrt(15/7); J = 1 - 3/(4*9 - 9) = 8/9
    assert stats.hedges_g(A, B) == pytest.approx(-2.5 / math.sqrt(15 / 7) * 8 / 9)


def test_compare_and_verdict():
    c = stats.compare(A, B)
    assert (c.n_a, c.n_b, c.mean_a, c.mean_b) == (4, 5, 2.5, 5.0)
    assert c.diff_lo < c.diff < c.diff_hi < 0
    assert stats.verdict(c, "gru", "lstm", goal="min") == "gru better"
    assert stats.verdict(c, "gru", "lstm", goal="max") == "lstm better"
    assert stats.verdict(c, "gru", "lstm", goal="min", word="faster") == "gru faster"
    same = stats.compare([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    assert stats.verdict(same, "gru", "lstm", goal="min") == "no significant difference"
    one = stats.compare([1.0], [2.0, 3.0])
    assert one.p_welch is None and one.diff_lo is None
    assert stats.verdict(one, "gru", "lstm", goal="min").startswith("not testable")


def test_non_finite_values_are_dropped():
    c = stats.compare([1.0, float("inf"), 2.0, 3.0], [4.0, 5.0, float("nan"), 6.0])
    assert (c.n_a, c.n_b) == (3, 3)


# --------------------------------------------------------------------------- on a metric's scale
from grucli import metrics  # noqa: E402


def test_bounded_interval_stays_in_zero_one():
    # the demo's copy RNN accuracies: mean 0.70, t-interval 0.70 +- 0.67 would reach 1.36
    e = stats.estimate([0.49, 0.60, 1.00], metrics.BOUNDED)
    assert e.centre == pytest.approx(0.69666667)
    assert e.hi == 1.0 and 0.0 <= e.lo < e.centre  # cut at the top, uncut below
    # t(0.975, 2) = 4.302653; s^2 = 0.144067 / 2
    assert e.lo == pytest.approx(e.centre - 4.302653 * math.sqrt(0.0720333 / 3), rel=1e-5)
    low = stats.estimate([0.0, 0.01, 0.30], metrics.BOUNDED)
    assert low.lo == 0.0 and low.hi <= 1.0


def test_log_interval_stays_positive_around_the_geometric_mean():
    values = [1e-5, 1e-3, 0.5]  # a raw-scale t-interval of these crosses 0
    mean, half, _ = stats.mean_ci(values)
    assert mean - half < 0
    e = stats.estimate(values, metrics.LOG)
    assert e.centre == pytest.approx((1e-5 * 1e-3 * 0.5) ** (1 / 3))
    assert 0 < e.lo < e.centre < e.hi
    assert math.log(e.hi) - math.log(e.centre) == pytest.approx(math.log(e.centre) - math.log(e.lo))
    # values the log scale cannot hold are dropped, not turned into -inf
    assert stats.estimate([0.0, 1e-3, 2e-3], metrics.LOG).n == 2


def test_rate_interval_is_cut_at_zero():
    e = stats.estimate([0.0, 0.01, 0.2], metrics.RATE)
    assert e.lo == 0.0 and e.hi > e.centre


def test_difference_of_bounded_means_stays_within_one():
    e = stats.effect([0.0, 1.0, 1.0], [0.0, 0.0, 0.05], metrics.BOUNDED, 0.02)
    assert e.value == pytest.approx(2 / 3 - 0.05 / 3)
    assert e.hi == 1.0 and -1.0 <= e.lo  # the Welch interval reaches above 2: cut at 1
    e = stats.effect([0.0, 0.0, 0.05], [0.0, 1.0, 1.0], metrics.BOUNDED, 0.02)
    assert e.lo == -1.0 and e.hi <= 1.0


def test_log_effect_is_a_ratio_with_a_positive_interval():
    e = stats.effect([1e-4, 2e-4, 4e-4], [1e-3, 3e-3, 2e-3], metrics.LOG, 1.25)
    gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
    assert e.value == pytest.approx(gm([1e-4, 2e-4, 4e-4]) / gm([1e-3, 3e-3, 2e-3]))
    assert 0 < e.lo < e.value < e.hi


# --------------------------------------------------------------------------- decide
def _effect(p_diff, p_equiv=None, value=0.5, n=3):
    """A log-scale comparison with the p-values given (a's ratio `value`: below 1 favours a
    on goal min)."""
    return stats.Effect("log", n, n, 1.0, 2.0, value, 0.4, 0.6, p_diff, p_equiv, 1.25 if p_equiv is not None else None,
                        False, 0.1, 4.0, None)


def test_decide_is_holm_over_the_family():
    # p 0.012, 0.02, 0.045: Holm 0.036, 0.04, 0.045 -- all three decided (Bonferroni would
    # give 0.036, 0.06, 0.135 and decide only the first)
    d = stats.decide([_effect(0.02), _effect(0.045, value=2.0), _effect(0.012)], "min")
    assert [x.word for x in d] == ["better", "worse", "better"]
    assert [x.p_diff for x in d] == pytest.approx([0.04, 0.045, 0.036])
    assert {x.family for x in d} == {3}
    # p 0.01, 0.03, 0.04: Holm 0.03, 0.06, 0.06 -- each below 0.05 alone, only the first in the family
    d = stats.decide([_effect(0.03), _effect(0.01), _effect(0.04)], "min")
    assert [x.word for x in d] == ["undecided", "better", "undecided"]
    assert [x.p_diff for x in d] == pytest.approx([0.06, 0.03, 0.06])
    # alone, the same comparison is decided: the family, not the folder, sets the correction
    assert stats.decide([_effect(0.03)], "min")[0].word == "better"
    # the equivalence tests are a Holm family of their own
    d = stats.decide([_effect(0.5, 0.02), _effect(0.5, 0.03)], "min")
    assert [x.p_equiv for x in d] == pytest.approx([0.04, 0.04]) and {x.word for x in d} == {"equivalent"}


def test_decide_goal_max_flips_better_and_worse():
    assert stats.decide([_effect(0.001, value=0.5)], "max")[0].word == "worse"
    assert stats.decide([_effect(0.001, value=2.0)], "max")[0].word == "better"


def test_equivalent_takes_precedence_over_a_significant_difference():
    # a tiny but significant difference inside the margin: 5% apart with almost no spread
    e = stats.effect([1.0, 1.001, 1.002], [1.05, 1.051, 1.052], metrics.LOG, 1.25)
    assert e.p_diff < 1e-4 and e.p_equiv < 1e-4
    assert stats.decide([e], "min")[0].word == "equivalent"
    # the same difference against a margin it exceeds: better
    e = stats.effect([1.0, 1.001, 1.002], [1.05, 1.051, 1.052], metrics.LOG, 1.01)
    assert stats.decide([e], "min")[0].word == "better"


def test_one_seed_is_not_testable_and_leaves_the_family():
    one = stats.effect([1.0], [2.0, 3.0], metrics.LOG, 1.25)
    assert one.p_diff is None and not one.testable
    d = stats.decide([one, _effect(0.03)], "min")
    assert d[0].word == "not testable" and d[0].why == "fewer than 2 seeds" and d[0].p_diff is None
    assert d[1].word == "better" and d[1].p_diff == pytest.approx(0.03)  # m = 1: the untestable one is not counted
    assert {x.family for x in d} == {1}


def test_zero_spread_decides_by_the_difference():
    # every seed the same value in both arms: the interval is the point, the difference decides
    e = stats.effect([2.0, 2.0, 2.0], [3.0, 3.0, 3.0], metrics.LOG, 1.25)
    assert e.lo == e.hi == pytest.approx(2 / 3) and (e.p_diff, e.p_equiv) == (0.0, 1.0)
    assert stats.decide([e], "min")[0].word == "better"
    same = stats.effect([2.0, 2.0, 2.0], [2.0, 2.0, 2.0], metrics.LOG, 1.25)
    assert (same.p_diff, same.p_equiv) == (1.0, 0.0) and stats.decide([same], "min")[0].word == "equivalent"
    close = stats.effect([0.5, 0.5], [0.51, 0.51], metrics.BOUNDED, 0.02)  # 0.01 apart, margin 0.02
    assert stats.decide([close], "max")[0].word == "equivalent"
    nomargin = stats.effect([0.5, 0.5], [0.51, 0.51], metrics.RAW)
    assert nomargin.p_equiv is None and stats.decide([nomargin], "max")[0].word == "worse"


# --------------------------------------------------------------------------- across settings
def test_probability_of_improvement_all_better():
    strata = [([0.1, 0.2, 0.15], [0.5, 0.6, 0.7]), ([1.0, 1.1], [2.0, 3.0, 2.5])]
    o = stats.probability_of_improvement(strata, "min", metrics.LOG)
    assert (o.p, o.lo, o.hi, o.settings) == (1.0, 1.0, 1.0, 2) and o.decided
    flipped = stats.probability_of_improvement(strata, "max", metrics.LOG)
    assert (flipped.p, flipped.hi) == (0.0, 0.0) and flipped.decided


def test_probability_of_improvement_identical_strata_is_even():
    strata = [([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]), ([1.0, 2.0, 4.0], [4.0, 2.0, 1.0])]
    o = stats.probability_of_improvement(strata, "min", metrics.LOG)
    assert o.p == 0.5 and o.lo < 0.5 < o.hi and not o.decided
    assert o.p_wilcoxon is None  # fewer than 5 settings


def test_probability_of_improvement_is_deterministic_and_mixes_strata():
    rng = __import__("numpy").random.default_rng(3)
    strata = [(list(rng.lognormal(0, 1, 4)), list(rng.lognormal(0.5, 1, 4))) for _ in range(5)]
    a = stats.probability_of_improvement(strata, "min", metrics.LOG, seed=4)
    b = stats.probability_of_improvement(strata, "min", metrics.LOG, seed=4)
    assert a == b
    # the point is the mean over settings of the within-setting shares of pairs won
    by_hand = sum(sum((x < y) + 0.5 * (x == y) for x in s[0] for y in s[1]) / 16 for s in strata) / 5
    assert a.p == pytest.approx(by_hand)
    assert a.lo <= a.p <= a.hi and a.p_wilcoxon is not None  # 5 settings: Wilcoxon runs
    assert stats.probability_of_improvement([([], [1.0])], "min", metrics.LOG) is None
