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
