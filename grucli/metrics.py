"""What each metric is, for the statistics: the scale its tests and intervals are computed
on, and the range no printed interval may leave. Torch-free (the report and the tables
read it); the objectives in grucli.objectives compute the metrics named here.

  log      positive and ratio-like (errors, likelihoods, times): tests and intervals on
           log values, reported as geometric means and ratios; a 10x MSE difference is one
           step on this scale however small the MSEs are
  bounded  inside [0, 1] (accuracy, F1, recall, PR-AUC): tests on the values, intervals
           cut to the range (the true mean lies inside it, so the cut interval covers it at
           least as often as the uncut one)
  rate     error rates that are >= 0 and can be exactly 0 (phoneme or token error rate):
           tests on the values, intervals cut at 0
  raw      anything else: tests and intervals on the values

Each scale also says how an equivalence margin is written (declared before the data: the
defaults are here, an experiment's `verdict:` section overrides them): a ratio for log
metrics (1.25: within 25% either way), an absolute difference otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str  # log | bounded | rate | raw
    lo: float  # the metric's range: no interval leaves it
    hi: float
    margin: float | None  # default equivalence margin: a ratio (log) or an absolute difference; None: none
    mean_word: str  # what the centre of an interval is: "geometric mean" or "mean"

    @property
    def ratio(self) -> bool:
        """Effects are ratios (log scale) rather than differences."""
        return self.name == "log"

    def margin_text(self, margin: float | None) -> str:
        if margin is None:
            return "no margin declared"
        return f"×/÷ {margin:g}" if self.ratio else f"± {margin:g}"

    def check_margin(self, margin: float) -> str | None:
        """Why `margin` cannot be an equivalence margin on this scale, or None."""
        if not math.isfinite(margin):
            return "must be a finite number"
        if self.ratio and margin <= 1:
            return f"is a ratio on the {self.name} scale: it must be above 1 (e.g. 1.25), got {margin:g}"
        if not self.ratio and margin <= 0:
            return f"is an absolute difference on the {self.name} scale: it must be above 0, got {margin:g}"
        if self.name == "bounded" and margin >= 1:
            return f"is an absolute difference of a metric in [0, 1]: it must be below 1, got {margin:g}"
        return None


LOG = Scale("log", 0.0, math.inf, 1.25, "geometric mean")
BOUNDED = Scale("bounded", 0.0, 1.0, 0.02, "mean")
RATE = Scale("rate", 0.0, math.inf, 0.02, "mean")
RAW = Scale("raw", -math.inf, math.inf, None, "mean")
SCALES = {s.name: s for s in (LOG, BOUNDED, RATE, RAW)}

# metric name -> scale (the objectives' metrics, the timings the tables compare)
METRICS: dict[str, Scale] = {
    **dict.fromkeys(["mse", "rmse", "mae", "mase", "ce", "nll", "bpc", "perplexity"], LOG),
    **dict.fromkeys(["accuracy", "macro_f1", "top5_accuracy", "f1", "precision", "recall", "pr_auc", "range_f1",
                     "seq_accuracy", "word_accuracy", "exact"], BOUNDED),
    **dict.fromkeys(["per", "ter"], RATE),
    "positives_accepted": BOUNDED,  # counting (mode next): share of the positive strings accepted
    # counting (mode next): the largest n whose a^n b^n is accepted and its near misses rejected.
    # Raw, not log: 0 is a real outcome (n = 1 already fails) where a geometric mean is undefined,
    # and the value is capped at the checked range (max_n_test), so a ratio of two capped counts
    # is not "how many times further"; differences in n are what the claim reads.
    "largest_n": RAW,
    "accepted_to_n": RAW,  # the same count with the near misses left out
    # timings: positive, compared as ratios ("1.3x faster")
    **dict.fromkeys(["epoch_time_s", "latency_batch_ms", "latency_seq_ms", "train_time_s"], LOG),
}

SPEED_MARGIN = 1.10  # default equivalence margin of a timing: within 10% either way


def scale_of(metric: str) -> Scale:
    """The scale a metric is tested on (raw for a name not listed here)."""
    return METRICS.get(str(metric).removeprefix("timing."), RAW)
