"""Language modelling: `char_lm` predicts the next character at every step, `word_lm` the
next word. The default corpus is the ~465k characters of reference prose in the standard
library's `pydoc_data.topics` (no extra package); `path` points at any UTF-8 text file
instead (relative to the experiment file). The text is split by position: train, then
validation, then test (the last `test_frac`). Metric: bits per character, beside the
unigram baseline (train character frequencies, add-one smoothed, scored on test)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from grucli.errors import DataError
from grucli.objectives import NextToken, NextWord
from grucli.tasks.base import Split, Task, TaskData
from grucli.tasks.cache import disk_cached
from grucli.tasks.sources import UserFileConfig, user_file
from grucli.tasks.vocab import PAD, UNK, build_vocab, tokenize


class CharLMConfig(UserFileConfig):
    name: Literal["char_lm"] = "char_lm"
    path: str | None = None  # a UTF-8 text file, relative to the experiment file; null = pydoc_data.topics
    seq_len: int = Field(100, ge=2)  # characters per training sequence (truncated backpropagation length)
    max_chars: int | None = Field(None, ge=10)  # use only the first this-many characters
    val_frac: float = Field(0.05, gt=0, lt=0.5)  # share of the text (after train) for validation
    test_frac: float = Field(0.05, gt=0, lt=0.5)  # the last share of the text, for test


def pydoc_topics() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def read_text(cfg: CharLMConfig) -> tuple[str, str]:
    if cfg.path is None:
        return pydoc_topics(), "pydoc_data.topics"
    text = user_file(cfg.path).read_bytes().decode("utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{cfg.path}: the text file is empty")
    return text, cfg.path


def chunks(ids: torch.Tensor, T: int, keep_tail: bool = True) -> Split:
    """Non-overlapping (input, next-character) pairs of length T; the last one is shorter
    (padded, with lengths) or, with keep_tail=False, dropped when a full one exists, so the
    split needs no packing (packed batches run 2-3x slower on CPU)."""
    starts = range(0, len(ids) - 1, T)
    if not keep_tail and len(ids) - 1 >= T:
        starts = range(0, len(ids) - T, T)
    pieces = [(ids[s:s + T], ids[s + 1:s + T + 1]) for s in starts]
    pieces = [(x[:len(y)], y) for x, y in pieces]
    lengths = torch.tensor([len(y) for _, y in pieces])
    x = torch.zeros(len(pieces), int(lengths.max()), dtype=torch.long)
    y = torch.full_like(x, -100)  # IGNORE beyond a sequence's end
    for i, (a, b) in enumerate(pieces):
        x[i, :len(a)], y[i, :len(b)] = a, b
    return Split(x, y, lengths if len(set(lengths.tolist())) > 1 else None)


@disk_cached
def build_char_lm(cfg: CharLMConfig) -> TaskData:
    text, source = read_text(cfg)
    text = text[:cfg.max_chars] if cfg.max_chars else text
    n = len(text)
    b1, b2 = int(n * (1 - cfg.val_frac - cfg.test_frac)), int(n * (1 - cfg.test_frac))
    parts = {"train": text[:b1], "val": text[b1:b2], "test": text[b2:]}
    short = [k for k, v in parts.items() if len(v) < 2]
    if short:
        raise DataError(f"{source}: {n} characters are too few: the {short[0]} part needs at least 2")
    vocab = build_vocab([list(parts["train"])])
    index = {c: i for i, c in enumerate(vocab)}
    ids = {k: torch.tensor([index.get(c, UNK) for c in v]) for k, v in parts.items()}
    train = chunks(ids["train"], cfg.seq_len, keep_tail=False)  # val and test score every character
    val, test = chunks(ids["val"], cfg.seq_len), chunks(ids["test"], cfg.seq_len)
    V = len(vocab)
    counts = torch.bincount(ids["train"], minlength=V).double() + 1.0  # add-one smoothing
    counts[0] = 0.0  # never predict padding
    p = counts / counts.sum()
    target = ids["test"][1:]  # every scored test step
    unigram_bpc = float(-(p[target].log2()).mean())
    top = int(counts.argmax())
    return TaskData(
        train, val, test, input_size=V, output_size=V, head="each", objective=NextToken(V),
        metric="bpc", goal="min", tokens=True,
        baseline={"bpc": unigram_bpc, "ce": unigram_bpc * math.log(2), "accuracy": float((target == top).double().mean())},
        info={"seq_len": cfg.seq_len, "chars": n, "vocab_size": V, "vocab": vocab, "unit": "char", "source": source,
              "sizes": {k: len(v) for k, v in parts.items()}, "baseline_rule": "unigram character frequencies of train"},
    )


CHAR_LM = Task("char_lm", CharLMConfig, build_char_lm, "real",
               "next-character prediction on prose or your own text file (bits per character)",
               source="stdlib pydoc_data.topics, or `path:` a text file of yours",
               sizes="pydoc_data.topics: ~465k characters, ~100 distinct",
               baseline="unigram character frequencies (4.6 bpc on pydoc)")


class WordLMConfig(UserFileConfig):
    name: Literal["word_lm"] = "word_lm"
    path: str | None = None  # a UTF-8 text file, relative to the experiment file; null = pydoc_data.topics
    seq_len: int = Field(35, ge=2)  # words per training sequence
    max_words: int | None = Field(None, ge=10)  # use only the first this-many words
    min_count: int = Field(2, ge=1)  # rarer training words become <unk>
    max_vocab: int = Field(10000, ge=10)  # at most this many words (most frequent first, with <pad> and <unk>)
    val_frac: float = Field(0.05, gt=0, lt=0.5)
    test_frac: float = Field(0.05, gt=0, lt=0.5)


@disk_cached
def build_word_lm(cfg: WordLMConfig) -> TaskData:
    """Next-word prediction: lower-cased words and punctuation marks (grucli.tasks.vocab),
    split by position; vocabulary from train. Metric: perplexity, beside the unigram
    baseline (train word frequencies, add-one smoothed), which also gives top-1 / top-5."""
    text, source = read_text(cfg)
    words = tokenize(text, "word")
    words = words[:cfg.max_words] if cfg.max_words else words
    n = len(words)
    b1, b2 = int(n * (1 - cfg.val_frac - cfg.test_frac)), int(n * (1 - cfg.test_frac))
    parts = {"train": words[:b1], "val": words[b1:b2], "test": words[b2:]}
    short = [k for k, v in parts.items() if len(v) < 2]
    if short:
        raise DataError(f"{source}: {n} words are too few: the {short[0]} part needs at least 2")
    vocab = build_vocab([parts["train"]], min_count=cfg.min_count, max_size=cfg.max_vocab)
    index = {w: i for i, w in enumerate(vocab)}
    ids = {k: torch.tensor([index.get(w, UNK) for w in v]) for k, v in parts.items()}
    train = chunks(ids["train"], cfg.seq_len, keep_tail=False)
    val, test = chunks(ids["val"], cfg.seq_len), chunks(ids["test"], cfg.seq_len)
    V = len(vocab)
    counts = torch.bincount(ids["train"], minlength=V).double() + 1.0
    counts[PAD] = 0.0
    p = counts / counts.sum()
    target = ids["test"][1:]
    ce = float(-(p[target].log()).mean())
    top5 = counts.topk(min(5, V)).indices
    return TaskData(
        train, val, test, input_size=V, output_size=V, head="each", objective=NextWord(V),
        metric="perplexity", goal="min", tokens=True,
        baseline={"perplexity": math.exp(ce), "ce": ce, "accuracy": float((target == top5[0]).double().mean()),
                  "top5_accuracy": float(torch.isin(target, top5).double().mean())},
        info={"seq_len": cfg.seq_len, "words": n, "vocab_size": V, "vocab": vocab, "unit": "word", "source": source,
              "sizes": {k: len(v) for k, v in parts.items()},
              "unk_share_test": float((ids["test"] == UNK).double().mean()),
              "baseline_rule": "unigram word frequencies of train"},
    )


WORD_LM = Task("word_lm", WordLMConfig, build_word_lm, "real",
               "next-word prediction on prose or your own text file (perplexity, top-1 / top-5 accuracy)",
               source="stdlib pydoc_data.topics, or `path:` a text file of yours",
               sizes="pydoc_data.topics: ~119k words and marks, 2,468 seen twice or more",
               baseline="unigram word frequencies")
