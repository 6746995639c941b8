"""How a claim's evidence becomes a verdict: pure functions on plain numbers (torch-free).

Three verdicts, always with what they rest on:
  supported      the measurement says what the claim says, beyond its uncertainty
  not supported  it says the opposite (or, for "comparable", a difference larger than the margin)
  inconclusive   the uncertainty covers both, or the budget cut the runs off while they were
                 still improving -- at this budget and this number of seeds

Directional claims ("the LSTM does better at long range") test a difference of means across
seeds (Welch), Holm-corrected over the comparisons a claim makes. "Comparable" claims test
equivalence (two one-sided tests inside a margin declared before the data, on the metric's
scale, TOST). Every test runs on the metric's scale (grucli.metrics). Exact
claims (parameter counts, bytes) compare numbers that have no seed spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import math

from grucli import power, stats
from grucli.metrics import RAW, Scale
from grucli.numbers import num, p_text, share

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)


@dataclass(frozen=True)
class Finding:
    """One measured statement of a claim: what was compared, the verdict and its evidence."""

    label: str  # e.g. "adding, T = 400"
    verdict: str
    evidence: str  # numbers with intervals, the test, the budget
    # for the forest plot of the claims page: the cells compared, the effect on the metric's
    # scale, and the verdict from a's side in the report's words (better | worse | equivalent | undecided)
    pair: tuple[str, str] | None = None
    effect: stats.Effect | None = None
    word: str | None = None


def better(a: Sequence[float], b: Sequence[float], goal: str, name_a: str, name_b: str, *,
           scale: Scale = RAW, p_adjusted: float | None = None, still_improving: int = 0, alpha: float = stats.ALPHA,
           label: str = "", unit: str = "") -> Finding:
    """The claim "a does better than b" (lower for goal min) on values across seeds, tested
    on the metric's `scale` (grucli.metrics: ratios of geometric means for log-scale
    metrics). `p_adjusted`: the Holm-adjusted p of this comparison over the claim's family
    (default: its own p); `still_improving`: runs the budget cut off while their validation
    curve was still falling -- a verdict that would rest on them is inconclusive."""
    e = stats.effect(a, b, scale)
    text = f"{name_a} {num(e.centre_a)}{unit} vs {name_b} {num(e.centre_b)}{unit} (n = {e.n_a}, {e.n_b}"
    text += f", {scale.mean_word}s)" if scale.ratio else ")"
    if e.lo is not None:
        text += f", {'ratio' if scale.ratio else 'difference'} {num(e.value)} [{num(e.lo)}, {num(e.hi)}]"
    p = e.p_diff if p_adjusted is None else p_adjusted
    if p is not None:
        text += f", {'Holm ' if p_adjusted is not None else ''}{p_text(p)}"
    shown = {"pair": (name_a, name_b), "effect": e}
    if e.n_a < 2 or e.n_b < 2 or p is None:
        return Finding(label, INCONCLUSIVE, text + "; fewer than 2 seeds: no test", **shown, word=stats.UNDECIDED)
    if still_improving:
        return Finding(label, INCONCLUSIVE, text + f"; {still_improving} run(s) still improving when the budget "
                                                   "ended: this measures the budget", **shown, word=stats.UNDECIDED)
    if p >= alpha:
        return Finding(label, INCONCLUSIVE, text + f"; not significant at {num(alpha)}" + _seeds_to_decide(e, scale, alpha),
                       **shown, word=stats.UNDECIDED)
    wins = e.favours_a(goal)
    return Finding(label, SUPPORTED if wins else NOT_SUPPORTED, text, **shown, word=stats.BETTER if wins else stats.WORSE)


def _seeds_to_decide(e: stats.Effect, scale: Scale, alpha: float) -> str:
    """`; about 9 seeds per cell would decide it` (power 0.8 at the scale's margin,
    grucli.power), or nothing when it cannot be said."""
    if scale.margin is None or e.sd is None:
        return ""
    delta = math.log(scale.margin) if scale.ratio else scale.margin
    n = power.seeds_needed(e.sd, e.n_a + e.n_b - 2, delta, alpha)
    if n is None:
        return ""
    if n <= max(e.n_a, e.n_b):  # powered already: the difference is smaller than the margin
        return (f"; at these seeds a difference of {scale.margin_text(scale.margin)} would have shown: what is "
                "left is smaller than that, and more seeds would not make the claim hold by a margin that matters")
    if n > power.MAX_SEEDS:
        return f"; more than {num(power.MAX_SEEDS)} seeds per cell would decide it"
    return (f"; about {n} seeds per cell would decide it (power 0.8 at {scale.margin_text(scale.margin)}, "
            "`--until-decided` adds them)")


def comparable(a: Sequence[float], b: Sequence[float], name_a: str, name_b: str, *, scale: Scale = RAW, goal: str = "min",
               margin: float | None = None, still_improving: int = 0, alpha: float = stats.ALPHA, label: str = "",
               unit: str = "") -> Finding:
    """The claim "a and b perform comparably", on the metric's `scale` with a margin declared
    before the data (default: the scale's, grucli.metrics: a ratio of 1.25 for log-scale
    metrics, 0.02 for bounded ones): supported when two one-sided tests at `alpha` put the
    effect inside the margin (its 90% interval inside it); not supported when the 95%
    interval lies wholly outside it; inconclusive otherwise."""
    margin = scale.margin if margin is None else margin
    e = stats.effect(a, b, scale, margin)
    e90 = stats.effect(a, b, scale, margin, confidence=1 - 2 * alpha)
    kind = "ratio" if scale.ratio else "difference"
    text = (f"{name_a} {num(e.centre_a)}{unit} vs {name_b} {num(e.centre_b)}{unit} (n = {e.n_a}, {e.n_b}), "
            f"margin {scale.margin_text(margin)} (declared)")
    shown = {"pair": (name_a, name_b), "effect": e}
    if not e.testable or margin is None:
        return Finding(label, INCONCLUSIVE, text + ("; no margin declared" if margin is None
                                                    else "; fewer than 2 seeds: no interval"), **shown,
                       word=stats.UNDECIDED)
    text += f", {kind} {num(e.value)}, 90% interval [{num(e90.lo)}, {num(e90.hi)}]"
    if still_improving:
        return Finding(label, INCONCLUSIVE, text + f"; {still_improving} run(s) still improving when the budget ended",
                       **shown, word=stats.UNDECIDED)
    lo_m, hi_m = (1 / margin, margin) if scale.ratio else (-margin, margin)
    if e.p_equiv is not None and e.p_equiv < alpha:
        return Finding(label, SUPPORTED, text + ": inside the margin", **shown, word=stats.EQUIVALENT)
    if e.lo > hi_m or e.hi < lo_m:
        return Finding(label, NOT_SUPPORTED, text + ": the 95% interval lies outside the margin", **shown,
                       word=stats.BETTER if e.favours_a(goal) else stats.WORSE)
    return Finding(label, INCONCLUSIVE, text + ": the interval crosses the margin", **shown, word=stats.UNDECIDED)


def below(value: float, reference: float, name: str, ref_name: str, *, label: str = "", unit: str = "",
          tolerance: float = 0.0) -> Finding:
    """Exact quantities (parameters, bytes, a step time's ratio measured side by side):
    supported when value < reference by more than `tolerance` (relative), not supported
    when it is larger by more than that, inconclusive within it."""
    ratio = value / reference if reference else float("inf")
    text = f"{name} {num(value)}{unit} vs {ref_name} {num(reference)}{unit}: ratio {num(ratio)}"
    if ratio < 1 - tolerance:
        return Finding(label, SUPPORTED, text)
    if ratio > 1 + tolerance:
        return Finding(label, NOT_SUPPORTED, text)
    return Finding(label, INCONCLUSIVE, text + f" (within +-{share(tolerance)})")


def overall(findings: Sequence[Finding], short: bool = False) -> str:
    """A claim's verdict from its findings: the common verdict, or "mixed" naming which
    findings went which way ("mixed -- supported: a | b; not supported: c"), or with
    `short` only how many ("mixed: 2 supported, 1 not supported")."""
    verdicts = {f.verdict for f in findings}
    if not findings:
        return INCONCLUSIVE
    if len(verdicts) == 1:
        return findings[0].verdict
    if short:
        return "mixed: " + ", ".join(f"{sum(f.verdict == v for f in findings)} {v}" for v in VERDICTS if v in verdicts)
    parts = [f"{v}: {' | '.join(f.label for f in findings if f.verdict == v)}" for v in VERDICTS if v in verdicts]
    return "mixed -- " + "; ".join(parts)

