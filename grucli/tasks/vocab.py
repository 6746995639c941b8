"""Tokenisation for the text tasks: characters or lower-cased words, a vocabulary built on
the training split only, ids right-padded into a (N, T) tensor with the true lengths."""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import torch

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]  # the first entries of every vocabulary (text tasks use the first two)
PAD, UNK, BOS, EOS = range(4)  # their ids: one set of names for the text and the encoder-decoder tasks
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def tokenize(text: str, unit: Literal["char", "word"]) -> list[str]:
    """Characters as they are, or lower-cased words and single punctuation marks."""
    return list(text) if unit == "char" else _WORD.findall(text.lower())


def build_vocab(docs: list[list[str]], min_count: int = 1, max_size: int | None = None) -> list[str]:
    """PAD, UNK, then tokens by descending count (ties alphabetical), keeping those seen at
    least `min_count` times, at most `max_size` entries in all."""
    counts = Counter(t for doc in docs for t in doc)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    vocab = [*SPECIALS[:2], *ranked]
    return vocab[:max_size] if max_size else vocab


def encode(docs: list[list[str]], vocab: list[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (N, T) long ids, right-padded with PAD, and (N,) lengths (>= 1: an empty
    document becomes one UNK). Documents longer than `max_len` keep their first tokens."""
    index = {t: i for i, t in enumerate(vocab)}
    ids = [[index.get(t, UNK) for t in doc[:max_len]] or [UNK] for doc in docs]
    lengths = torch.tensor([len(d) for d in ids])
    x = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for i, d in enumerate(ids):
        x[i, :len(d)] = torch.tensor(d)
    return x, lengths
