"""Time-series classification on the UCR/UEA archive files bundled inside the sktime wheel.

We read the `.ts` files with the small parser below instead of importing sktime: the files
are plain text, importing sktime takes seconds and pulls a large dependency tree, and only
the data files are needed (sktime is still the optional extra that installs them).
Official train/test split; validation carved from train (stratified, seeded by data_seed).
Channels are z-scored with train statistics; variable lengths are right-padded and packed.
The numeric-sequence classification here is shared with `csv_classify`."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from grucli.errors import DataError
from grucli.objectives import Classification
from grucli.tasks.base import Split, Task, TaskConfig, TaskData, stratified_carve
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import check_name, package_file, small_split_note

# name -> facts checked by the tests: (train, test, channels, classes, length)
DATASETS = {
    "JapaneseVowels": (270, 370, 12, 9, "7-29"),
    "BasicMotions": (40, 40, 6, 4, "100"),
    "GunPoint": (50, 150, 1, 2, "150"),
    "ItalyPowerDemand": (67, 1029, 1, 2, "24"),
    "ArrowHead": (36, 175, 1, 3, "251"),
    "OSULeaf": (200, 242, 1, 6, "427"),
    "ACSF1": (100, 100, 1, 10, "1,460"),
}


def parse_ts(text: str, source: str) -> tuple[list[np.ndarray], list[str], list[str]]:
    """A .ts file -> (series as (T, C) arrays, labels, declared class labels).
    Data lines: one case per line, channels separated by ':', the label last."""
    classes: list[str] = []
    series, labels, in_data, width = [], [], False, None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "%")):  # comments: '#', and '%' as in ARFF (aeon's UnitTest files)
            continue
        if not in_data:
            low, words = line.lower(), line.split()
            if not low.startswith("@"):
                raise DataError(f"{source}:{n}: a data line before @data (the header is @keyword lines, then @data)")
            if low.startswith("@classlabel"):
                if len(words) < 2 or words[1].lower() not in ("true", "false"):
                    raise DataError(f"{source}:{n}: @classLabel must say true (then the class names) or false")
                if words[1].lower() == "false":
                    raise DataError(f"{source}:{n}: @classLabel false: the cases carry no class to learn")
                classes = words[2:]
            elif low.startswith("@targetlabel") and len(words) > 1 and words[1].lower() == "true":
                raise DataError(f"{source}:{n}: @targetLabel true: a regression file; grucli classifies .ts cases")
            elif low.startswith("@timestamps") and len(words) > 1 and words[1].lower() == "true":
                raise DataError(f"{source}:{n}: .ts files with timestamps are not supported")
            in_data = low.startswith("@data")
            continue
        *channels, label = line.split(":")
        if not channels or not label.strip():
            raise DataError(f"{source}:{n}: a case needs its values, then ':' and its class label")
        if width is not None and len(channels) != width:
            raise DataError(f"{source}:{n}: {len(channels)} channel(s), the cases before have {width}")
        width = len(channels)
        try:
            chans = [np.array([float(v) if v != "?" else np.nan for v in c.split(",")]) for c in channels]
        except ValueError:
            raise DataError(f"{source}:{n}: non-numeric value in a series") from None
        length = max(len(c) for c in chans)
        if classes and label.strip() not in classes:  # a header that does not match its cases
            raise DataError(f"{source}:{n}: class {label.strip()!r} is not one @classLabel declares "
                            f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})")
        series.append(np.stack([np.pad(c, (0, length - len(c)), constant_values=np.nan) for c in chans], -1))
        labels.append(label.strip())
    if not in_data:
        raise DataError(f"{source}: no @data line (a .ts file is @keyword header lines, then @data, then one case "
                        "per line)")
    if not series:
        raise DataError(f"{source}: no cases after @data")
    return series, labels, classes


def pad(series: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, C) arrays -> right-padded (N, T, C) float tensor and (N,) lengths. Trailing NaN
    (a shorter series) ends a sequence; NaN inside one becomes 0 (the train mean)."""
    lengths = []
    for s in series:
        ok = np.flatnonzero(~np.isnan(s).all(axis=1))
        lengths.append(int(ok[-1]) + 1 if len(ok) else 1)
    T, C = max(lengths), series[0].shape[1]
    x = np.zeros((len(series), T, C), dtype=np.float32)
    for i, (s, n) in enumerate(zip(series, lengths)):
        x[i, :n] = np.nan_to_num(s[:n], nan=0.0)
    return torch.from_numpy(x), torch.tensor(lengths)


def sequence_classification(train_series: list[np.ndarray], train_labels: list[str], test_series: list[np.ndarray],
                            test_labels: list[str], classes: list[str], val_frac: float, seed: int,
                            source: str, info: dict, val: tuple[list, list[str]] | None = None) -> TaskData:
    """Numeric sequences (T_i, C) with string labels -> TaskData: classes indexed in `classes`
    order, validation carved from train (or given: `val` = (series, labels)), channels
    z-scored with train statistics."""
    known = {c: i for i, c in enumerate(classes)}
    for lab in [*train_labels, *test_labels, *(val[1] if val else [])]:
        if lab not in known:
            raise DataError(f"{source}: label '{lab}' is not among the declared classes {classes}")
    y_all = np.array([known[c] for c in train_labels])
    if len(set(train_labels)) < 2:
        raise DataError(f"{source}: the label has a single class ({train_labels[0]!r}); classification needs two or more")
    if val is not None:  # an official validation split: train is all of train
        train_series, train_labels = [*train_series, *val[0]], [*train_labels, *val[1]]
        y_all = np.array([known[c] for c in train_labels])
        rest, carved = np.arange(len(y_all) - len(val[1])), np.arange(len(y_all) - len(val[1]), len(y_all))
    else:
        rest, carved = stratified_carve(y_all, val_frac, seed)
    if len(carved) == 0 or len(rest) == 0:
        raise DataError(f"{source}: too few training cases ({len(y_all)}) to carve a validation split")
    stacked = np.concatenate([train_series[i] for i in rest])
    mean, std = np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0)
    std[~(std > 0)] = 1.0

    def make(series, labels) -> Split:
        x, lengths = pad([(s - mean) / std for s in series])
        return Split(x, torch.tensor(labels, dtype=torch.long), lengths if len(set(lengths.tolist())) > 1 else None)

    train = make([train_series[i] for i in rest], y_all[rest])
    val = make([train_series[i] for i in carved], y_all[carved])
    test = make(test_series, [known[c] for c in test_labels])
    k = len(classes)
    majority = int(torch.bincount(train.y, minlength=k).argmax())
    pred = torch.full_like(test.y, majority)
    base = Classification(k).metrics(torch.nn.functional.one_hot(pred, k).float(), test.y)
    lens = [len(s) for s in [*train_series, *test_series]]
    return TaskData(
        train, val, test, input_size=train.x.shape[-1], output_size=k, head="last", objective=Classification(k),
        metric="accuracy", goal="max", baseline={"accuracy": base["accuracy"], "macro_f1": base["macro_f1"]},
        info={"seq_len": max(lens), "min_len": min(lens), "classes": k, "class_names": list(classes),
              "channels": train.x.shape[-1], "sizes": {"train": len(train), "val": len(val), "test": len(test)},
              "source": source, "baseline_rule": "majority class of train", **info,
              "notes": [*info.get("notes", []), *small_split_note(source, len(val), len(test))]},
    )


class UEAConfig(TaskConfig):
    name: Literal["uea"] = "uea"
    dataset: str = "JapaneseVowels"  # one of the archives bundled with sktime (see `grucli tasks`)
    val_frac: float = Field(0.2, gt=0, lt=1)  # share of the official train split kept for validation

    @field_validator("dataset")
    @classmethod
    def _known(cls, v: str) -> str:
        return check_name("UEA/UCR data set", v, DATASETS)


def read_archive(dataset: str, part: str):
    path = package_file("sktime", f"datasets/data/{dataset}/{dataset}_{part}.ts")
    return parse_ts(path.read_text(encoding="utf-8", errors="replace"), f"{dataset}_{part}.ts")


@disk_cached
def build_uea(cfg: UEAConfig) -> TaskData:
    train_s, train_l, classes = read_archive(cfg.dataset, "TRAIN")
    test_s, test_l, _ = read_archive(cfg.dataset, "TEST")
    classes = classes or sorted(set(train_l))
    return sequence_classification(train_s, train_l, test_s, test_l, classes, cfg.val_frac, cfg.data_seed,
                                   f"UEA data set {cfg.dataset}", {"dataset": cfg.dataset})


UEA = Task("uea", UEAConfig, build_uea, "real",
           "classify multichannel time series from the UCR/UEA archive (official train/test split)",
           source="sktime package data files, read without importing sktime (pip install 'grucli[real]')",
           sizes="; ".join(f"{k} {a}+{b} cases, {c} ch, {d} classes, T={t}" for k, (a, b, c, d, t) in DATASETS.items()),
           baseline="majority class of train")
