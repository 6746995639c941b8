"""The `search:` section of an experiment file: how each arm (a grid point, e.g. one cell)
is tuned. Typed here, validated against every arm's config by `check_space`.

    search:
      trials: 24                  # finished trials per arm (complete, pruned, diverged or failed)
      sampler: tpe                # tpe | random | grid
      pruner: asha                # asha | hyperband | median | none; on the validation metric after each epoch
      plateau: wait               # wait | prune: while no trial of an arm has left the task's trivial
                                  #   baseline, its pruner waits (tune/pruning.py)
      warmup_epochs: 3            # no trial is pruned before this many epochs (default: a tenth of train.epochs)
      seed: 0                     # the sampler's seed and every trial's training seed
      final_seeds: 5              # the best configuration of each arm re-trained with seeds 1..5
      space:                      # any dotted task/model/train key
        train.lr: {log_uniform: [1.0e-4, 3.0e-2]}
        model.num_layers: {int: [1, 2]}
        model.dropout: {uniform: [0.0, 0.3]}
        train.batch_size: {choice: [32, 64, 128]}
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grucli.errors import unknown_name

KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")  # each space entry is {kind: values}


def check_seeds(v):
    """A seed count (>= 1) or a non-empty list without repeats (seeds:, search.final_seeds)."""
    if isinstance(v, int) and v < 1:
        raise ValueError("must be >= 1 (a count) or a list of seeds")
    if isinstance(v, list) and (not v or len(set(v)) != len(v)):
        raise ValueError("a seed list must be non-empty without repeats")
    return v


class Distribution(BaseModel):
    """One searched key: {uniform: [lo, hi]}, {log_uniform: [lo, hi]}, {int: [lo, hi]},
    {log_int: [lo, hi]} or {choice: [a, b, ...]}. Bounds are inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["uniform", "log_uniform", "int", "log_int", "choice"]
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data):
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(f"expected one of {{{', '.join(KINDS)}}}: [values], got {data!r}")
        (kind, values), = data.items()
        if kind not in KINDS:
            raise ValueError(unknown_name("distribution", kind, KINDS))
        if not isinstance(values, list) or not values:
            raise ValueError(f"{kind}: expected a list of values, got {values!r}")
        if kind == "choice":
            if len({repr(v) for v in values}) != len(values):
                raise ValueError("choice: values repeat")
            return {"kind": kind, "choices": tuple(values)}
        if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{kind}: expected [low, high] numbers, got {values!r}")
        low, high = values
        if kind in ("int", "log_int") and not all(isinstance(v, int) for v in values):
            raise ValueError(f"{kind}: bounds must be integers, got {values!r}")
        if low > high:
            raise ValueError(f"{kind}: low {low} > high {high}")
        if kind.startswith("log") and low <= 0:
            raise ValueError(f"{kind}: a log range needs low > 0, got {low}")
        return {"kind": kind, "low": low, "high": high}

    def edges(self) -> list:
        """The values to validate the config with: both bounds, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def grid(self) -> list | None:
        """Every value, for the grid sampler (None for a continuous range)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1))
        return None

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        scale = "log-uniform" if self.kind == "log_uniform" else "integer, log scale" if self.kind == "log_int" else (
            "integer" if self.kind == "int" else "uniform")
        return f"{scale} in [{self.low:g}, {self.high:g}]"

    def to_optuna(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("int", "log_int"):
            return IntDistribution(int(self.low), int(self.high), log=self.kind == "log_int")
        return FloatDistribution(float(self.low), float(self.high), log=self.kind == "log_uniform")


class SearchSpec(BaseModel):
    """How every arm is tuned: the same space, sampler, pruner and number of trials."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    trials: int = Field(ge=1)  # finished trials per arm
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["asha", "hyperband", "median", "none"] = "asha"  # tune/pruning.py PRUNERS
    plateau: Literal["wait", "prune"] = "wait"  # wait: no pruning while every trial of an arm sits on the baseline
    warmup_epochs: int | None = Field(None, ge=1)  # epochs before a trial can be pruned; default max(1, epochs // 10)
    seed: int = 0  # seeds the sampler; every trial trains with this seed
    final_seeds: int | list[int] = 5  # N -> seeds 1..N (never the trials' seed), or an explicit list
    space: dict[str, Distribution]

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, v):
        if not isinstance(v, dict) or not v:
            raise ValueError("the search space is empty: give at least one key to search, e.g. train.lr")
        return v

    @field_validator("final_seeds")
    @classmethod
    def _final_seeds(cls, v):
        return check_seeds(v)

    @model_validator(mode="after")
    def _grid_needs_values(self):
        if self.sampler == "grid":
            bad = [k for k, d in self.space.items() if d.grid() is None]
            if bad:
                raise ValueError(f"sampler grid: space.{bad[0]} is a continuous range; give it as choice or int")
        return self

    def final_seed_list(self) -> list[int]:
        if isinstance(self.final_seeds, list):
            return list(self.final_seeds)
        return [self.seed + i for i in range(1, self.final_seeds + 1)]

    def warmup(self, epochs: int) -> int:
        return self.warmup_epochs or max(1, math.ceil(epochs / 10))

    def grid_size(self) -> int | None:
        if self.sampler != "grid":
            return None
        return math.prod(len(d.grid()) for d in self.space.values())
