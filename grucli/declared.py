"""What an experiment declares about its verdicts before any run trains: the `verdict:`
section of an experiment file. It is recorded in the results folder (experiment.json), and
the tables read it back from there, so a margin can never be chosen after seeing the data.
Torch-free (the report reads it).

    verdict:
      alpha: 0.05              # family-wise error of each Answer's verdicts (Holm over its comparisons)
      margin: 1.25             # equivalence margin of the metric: a ratio on the log scale (MSE, RMSE,
                               # NLL...), an absolute difference on the bounded scale (accuracy...);
                               # unset: the scale's default (grucli.metrics)
      speed_margin: 1.10       # equivalence margin of seconds per epoch (a ratio)
      looks: [4, 6, 9, 12]     # seeds per cell at each look of --until-decided (the last is the cap)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from grucli import metrics


class VerdictSpec(BaseModel):
    """How verdicts are decided (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as grucli.config.Strict

    alpha: float = Field(0.05, gt=0, lt=0.5)  # family-wise error of one Answer's verdicts
    margin: float | None = Field(None, gt=0)  # the metric's equivalence margin; None: the scale's default
    speed_margin: float = Field(metrics.SPEED_MARGIN, gt=1)  # equivalence margin of s/epoch, a ratio
    # seeds per cell at each look of --until-decided; the last is the cap. The first look has 4 seeds:
    # with 3, two arms of bimodal runs (solved or plateau, p = 0.5 each) are "all solved vs all on the
    # plateau" 3% of the time with no spread left, which no level corrects (benchmarks/verdict_power.py:
    # 6.2% false positives with looks 3, 5, 8, 12; 4.7% with these)
    looks: list[int] = [4, 6, 9, 12]

    @field_validator("alpha", "margin", "speed_margin", mode="before")
    @classmethod
    def _number(cls, v):  # YAML's 1 is an int: accept it as a float
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("looks")
    @classmethod
    def _looks(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one look (seeds per cell), e.g. [4, 6, 9, 12]")
        if v[0] < 2:
            raise ValueError(f"the first look needs at least 2 seeds per cell (a test needs a spread), got {v[0]}")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"must increase, got {v}")
        return v

    def margin_for(self, scale: metrics.Scale) -> float | None:
        """The metric's margin: the declared one, else the scale's default."""
        return self.margin if self.margin is not None else scale.margin


DEFAULT = VerdictSpec()
