"""Numbers as text, in one place: every table, Answer, report, figure label, claim, tune and
CLI line writes a number, an interval, a share or a p-value through these, with one mark
for "no value" (NONE). Nothing else in grucli formats a measured number itself; a value a
user wrote (a margin, a target, a swept setting) is echoed as given (`{v:g}`)."""

from __future__ import annotations


NONE = "–"  # no value


def missing(v) -> bool:
    """None, NaN of any float type (numpy's too) or pandas' NA."""
    if v is None:
        return True
    try:
        return bool(v != v)
    except (TypeError, ValueError):  # pandas.NA refuses bool(); an array is not one missing value
        return type(v).__name__ == "NAType"


def num(v, digits: int = 3) -> str:
    """A number for people: 3 significant digits (or `digits`), thousands separators, exact
    integers in full (counts: parameters, bytes), NONE for none; text is passed through."""
    if missing(v):
        return NONE
    if isinstance(v, str) or type(v).__name__ in ("bool", "bool_"):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    if abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def interval(centre, lo, hi) -> str:
    """`0.70 [0.03, 1.00]`; the centre alone when there is no interval."""
    if missing(lo) or missing(hi):
        return num(centre)
    return f"{num(centre)} [{num(lo)}, {num(hi)}]"


def pm(mean, ci) -> str:
    """`mean ± half-width` (symmetric intervals of quantities without a range, e.g. memory)."""
    return num(mean) if missing(ci) else f"{num(mean)} ± {num(ci, 2)}"


def share(v, digits: int = 0) -> str:
    """A proportion as a percentage: 0.25 -> `25%`."""
    return NONE if missing(v) else f"{float(v):.{digits}%}"


def times(v) -> str:
    """A ratio of two times or sizes, two significant digits: `1.3x`, `0.019x`."""
    return NONE if missing(v) else f"{num(v, 2)}x"


def p_value(p) -> str:
    if missing(p):
        return NONE
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p) -> str:
    """`p = 0.034` or `p < 0.001`"""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"
