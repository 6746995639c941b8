"""What every task provides: a typed config (a pydantic model whose `name` is a Literal)
and a `build(config) -> TaskData` function. Both are registered in `grucli.tasks`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator


PER_SEED = "per_seed"  # task.data_seed: each run draws its data with its own seed


class TaskConfig(BaseModel):
    """Keys shared by every task.

    `data_seed` seeds the data (generation, shuffles and splits); the run's seed drives the
    initialisation, batch order and dropout. An int: every seed of a grid sees the same draw
    of the data, so a verdict holds for that one draw. `per_seed`: each run's data are drawn
    with data_seed = the run's seed, so seeds vary the data too (Bouthillier et al. 2021);
    a RunConfig resolves it to that int (grucli.config.RunConfig), so its run id is the hash
    of a concrete data seed and runs with different data never share a pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as grucli.config.Strict

    name: str  # registry name of the task
    data_seed: int | Literal["per_seed"] = 0  # seed of the data; per_seed: the run's own seed

    @field_validator("data_seed", mode="before")
    @classmethod
    def _data_seed(cls, v):
        if v == PER_SEED or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        raise ValueError(f"a whole number (the seed of the data) or {PER_SEED} (each run's data drawn with its "
                         f"own seed), got {v!r}")


class SyntheticConfig(TaskConfig):
    """Generated tasks: sizes of the three splits."""

    n_train: int = Field(10000, ge=1)  # training sequences
    n_val: int = Field(1000, ge=1)  # validation sequences (early stopping, time-to-target)
    n_test: int = Field(2000, ge=1)  # test sequences (final metrics)


@dataclass
class Split:
    """One split, whole in memory. x: (N, T, I) float features or (N, T) long tokens.
    y: (N, O) float, (N,) long class, or (N, T) long per-step classes (IGNORE = not scored).
    lengths: (N,) true lengths when sequences are right-padded, else None.
    score_mask: (N, T) bool, steps whose accuracy is reported (per-step tasks), else None."""

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor | None = None
    score_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)

    def trim(self) -> "Split":
        """The same sequences with the padding beyond the longest one cut off (per-step
        targets and masks too); unpadded splits come back as they are."""
        if self.lengths is None:
            return self
        T, full = int(self.lengths.max()), self.x.shape[1]
        per_step = self.y.dim() >= 2 and self.y.shape[1] == full and (self.y.dtype == torch.long or self.y.dim() == 3)
        mask = None if self.score_mask is None else self.score_mask[:, :T]
        return Split(self.x[:, :T], self.y[:, :T] if per_step else self.y, self.lengths, mask)

    def take(self, idx) -> "Split":
        """The sequences at `idx`: a slice, or a tensor of indices (index_select: 2 us per
        tensor where indexing takes 5, and a training step takes a batch per run)."""
        if isinstance(idx, torch.Tensor):
            pick = lambda t: None if t is None else t.index_select(0, idx)  # noqa: E731
        else:
            pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return Split(pick(self.x), pick(self.y), pick(self.lengths), pick(self.score_mask))


@dataclass
class TaskData:
    """Everything training needs from a task."""

    train: Split
    val: Split
    test: Split
    input_size: int  # features per step, or vocabulary size when `tokens`
    output_size: int  # regression outputs or number of classes
    head: Literal["last", "each"]  # predict from the last step, or at every step
    objective: object  # an instance from grucli.objectives (loss + metrics)
    metric: str  # primary metric name, e.g. "mse" or "accuracy"
    goal: Literal["min", "max"]  # whether lower or higher `metric` is better
    baseline: dict[str, float]  # the trivial baseline, per metric name
    target: float | None = None  # value of the selection metric that counts as "solved"
    tokens: bool = False  # x holds token ids (embedded or one-hot by the model)
    info: dict = field(default_factory=dict)  # free-form facts for `grucli tasks` and the report
    # What validation selects on (early stopping, the best epoch, tuning), when it is not
    # `metric`: e.g. anomaly detection reports test PR-AUC but its validation part is all
    # normal, so it selects on the forecast MSE there.
    select: str | None = None
    select_goal: Literal["min", "max"] | None = None

    @property
    def selection(self) -> tuple[str, str]:
        """(metric, goal) that validation selects on."""
        return (self.select, self.select_goal) if self.select else (self.metric, self.goal)

    def reached(self, value: float) -> bool:
        """Whether a value of the selection metric meets the target."""
        goal = self.selection[1]
        if self.target is None or value != value:
            return False
        return value <= self.target if goal == "min" else value >= self.target


@dataclass(frozen=True)
class Task:
    """A registry entry."""

    name: str
    config: type[TaskConfig]
    build: Callable[[TaskConfig], TaskData]
    kind: str  # e.g. "synthetic", "real"
    summary: str  # one line for `grucli tasks`
    source: str = "generated"  # where the data come from (package file, user file)
    sizes: str = ""  # how big the data are, e.g. "2,284 weekly points"
    baseline: str = ""  # the trivial baseline the metric is shown beside
    measure_baseline: Callable[[], str] | None = None  # when the baseline is measured on data: `grucli tasks` calls it


def split_sizes(cfg: SyntheticConfig) -> tuple[int, int, int]:
    return cfg.n_train, cfg.n_val, cfg.n_test


def three_way(full: Split, sizes: tuple[int, int, int]) -> tuple[Split, Split, Split]:
    """Cut one generated Split into train/val/test by position."""
    a, b, c = sizes
    return full.take(slice(0, a)), full.take(slice(a, a + b)), full.take(slice(a + b, a + b + c))


def stratified_carve(labels: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, carved): about `frac` of every class carved out (at least one from a
    class with two or more members), seeded."""
    rng = np.random.default_rng(seed)
    rest, carved = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(frac * len(idx))) if len(idx) > 1 else 0
        k = max(k, 1) if len(idx) > 1 and frac > 0 else k
        carved += list(idx[:k])
        rest += list(idx[k:])
    return np.sort(np.array(rest, dtype=int)), np.sort(np.array(carved, dtype=int))
