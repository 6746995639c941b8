"""Statistics across seeds. Pure functions on plain sequences of numbers."""

from __future__ import annotations

import math
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
