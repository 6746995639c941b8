"""Sequential digits: scikit-learn's bundled 8x8 handwritten digits (1,797 images, shipped
inside the sklearn wheel, no download) read one pixel per step, T = 64."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from grucli.objectives import Classification
from grucli.tasks.base import Split, Task, TaskConfig, TaskData
from grucli.errors import ConfigError


class SeqDigitsConfig(TaskConfig):
    name: Literal["seq_digits"] = "seq_digits"
    permute: bool = False  # apply one fixed pixel permutation (seeded by data_seed), as in pMNIST
    n_val: int = Field(300, ge=1)  # validation images carved from the shuffled set
    n_test: int = Field(400, ge=1)  # test images; the rest (1,097 by default) train


def build_seq_digits(cfg: SeqDigitsConfig) -> TaskData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    g = torch.Generator().manual_seed(cfg.data_seed)
    x = torch.tensor(bunch.data, dtype=torch.float32).reshape(-1, 64, 1) / 16.0  # (N, 64, 1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    if cfg.permute:
        x = x[:, torch.randperm(64, generator=g)]
    order = torch.randperm(len(x), generator=g)
    x, y = x[order], y[order]
    n_test, n_val = cfg.n_test, cfg.n_val
    if n_test + n_val >= len(x):
        raise ConfigError(f"task.n_val + task.n_test must leave training images (data set has {len(x)})")
    test, val, train = (Split(x[:n_test], y[:n_test]), Split(x[n_test:n_test + n_val], y[n_test:n_test + n_val]),
                        Split(x[n_test + n_val:], y[n_test + n_val:]))
    majority = float(torch.bincount(train.y).argmax())
    base_acc = float((test.y == majority).double().mean())
    return TaskData(
        train, val, test, input_size=1, output_size=10, head="last", objective=Classification(10),
        metric="accuracy", goal="max", baseline={"accuracy": base_acc}, target=0.9,
        info={"seq_len": 64, "source": "sklearn.datasets.load_digits", "baseline_rule": "majority class of train"},
    )


SEQ_DIGITS = Task("seq_digits", SeqDigitsConfig, build_seq_digits, "real",
                  "sklearn 8x8 digits read pixel by pixel, T=64 (classification)",
                  source="scikit-learn package data (load_digits)", sizes="1,797 images, 10 classes",
                  baseline="majority class of train")
