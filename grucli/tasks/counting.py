"""a^n b^n as Weiss, Goldberg and Yahav (2018) trained it: a next-symbol predictor on
positive strings only, read as an acceptor. The task's config (`mode: next`) is in
grucli.tasks.synthetic.CountingConfig; this module holds the data, the acceptance rule
and the "largest n" metric, so that they can be tested on hand-made probabilities.

What the authors' code does (tech-srl/counting_dimensions, RNNTokenPredictor.py):
- `loss_on_word`: for every symbol of a positive word, -log p(that symbol | the state
  so far), then -log p(<EOS> | the whole word); the softmax is over {a, b, <EOS>}. The
  targets are the symbols that actually follow: no hand-written set of valid next symbols.
  What the language allows (a or b while reading a's, only b after the first b until the
  count is spent, then only <EOS>) is what the trained distribution puts above the
  threshold.
- `classify_word`: a word is accepted when every symbol, and the final <EOS>, gets
  probability > `reject_threshold` in the state before it; the saved networks
  (trained_rnns/anbn_*.meta) use 0.005, 1 layer of 10 units, an input embedding of 3.
- The first symbol is predicted from the learned initial state. grucli's cells start from
  h = 0, so every input here starts with a start symbol <BOS>: the state after it plays the
  learned initial state (x = <BOS> s_1 .. s_L, targets s_1 .. s_L <EOS>).
- The notebook trains on `["a"*i+"b"*i for i in range(100)]` (n = 0 .. 99) with Adam at
  lr 0.001, one word per step, until every training word is accepted.

The metric (issue 26): the largest N such that for every 1 <= n <= N the string a^n b^n
is accepted and its near misses a^n b^(n+1), a^(n+1) b^n and a^n b^(n-1) are rejected;
0 when n = 1 already fails.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from grucli.objectives import IGNORE, Classification
from grucli.tasks.base import Split

A, B, EOS = 0, 1, 2  # target classes: the next symbol (softmax over {a, b, <EOS>})
BOS = 2  # input id of the start symbol (<EOS> is never read, so inputs reuse its id)
SYMBOLS = ("a", "b", "<EOS>")


def near_misses(n: int) -> list[tuple[int, int]]:
    """(a's, b's) of the strings that differ from a^n b^n by one symbol at the end of a
    block: a^n b^(n+1), a^(n+1) b^n and, for n >= 1, a^n b^(n-1)."""
    return [(n, n + 1), (n + 1, n)] + ([(n, n - 1)] if n >= 1 else [])


def strings(pairs: list[tuple[int, int]]) -> Split:
    """The strings a^i b^j for (i, j) in `pairs`, as next-symbol rows: x = <BOS> a^i b^j
    (right-padded with a), y = a^i b^j <EOS> (padding IGNORE), lengths i + j + 1."""
    lengths = torch.tensor([i + j + 1 for i, j in pairs])
    T = int(lengths.max())
    steps = torch.arange(T)  # (T,)
    na = torch.tensor([i for i, _ in pairs])[:, None]  # (N, 1)
    L = lengths[:, None] - 1  # string length, (N, 1)
    y = torch.where(steps < na, A, B)  # (N, T): a while t < i, then b
    y = torch.where(steps == L, EOS, y)
    y = torch.where(steps > L, IGNORE, y)
    x = torch.full((len(pairs), T), A, dtype=torch.long)
    x[:, 0] = BOS
    x[:, 1:] = torch.where(steps[:-1] < na, A, B) * (steps[:-1] < L)  # the string shifted right by one
    return Split(x, y, lengths=lengths)


def training_strings(count: int, max_n: int) -> Split:
    """`count` positives a^n b^n with n = 0, 1, ..., max_n, 0, 1, ... (each n equally often,
    as the notebook's list of words; the batch order is the run's)."""
    return strings([(n, n) for n in (i % (max_n + 1) for i in range(count))])


def check_strings(max_n: int) -> Split:
    """For n = 1 .. max_n: a^n b^n and its near misses (what largest_n reads)."""
    return strings([p for n in range(1, max_n + 1) for p in [(n, n), *near_misses(n)]])


def accepted(probs: torch.Tensor, y: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N,) bool: every scored step's target (the next symbol, then <EOS>) gets probability
    > threshold. probs (N, T, 3) softmax outputs, y (N, T) targets (IGNORE: not scored);
    classify_word in the authors' code."""
    scored = y != IGNORE
    p = probs.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (N, T): p of each target
    return ((p > threshold) | ~scored).all(-1)


def counts(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a's, b's) of each row's string, read off its targets."""
    return (y == A).sum(-1), (y == B).sum(-1)


def largest_n(na: torch.Tensor, nb: torch.Tensor, ok: torch.Tensor) -> int:
    """The largest N such that for every 1 <= n <= N a^n b^n is among the rows and every row
    of it is accepted, and no row of a near miss of n is accepted; 0 if n = 1 fails. Rows
    are (a's, b's, accepted); rows of other strings are not read. A split without near
    misses (the training positives) gives how far the positives are accepted."""
    seen: dict[tuple[int, int], bool] = {}
    for i, j, k in zip(na.tolist(), nb.tolist(), ok.tolist()):
        if i == j:  # a positive counts when each of its rows is accepted
            seen[(i, j)] = seen.get((i, j), True) and bool(k)
        else:  # a near miss fails n when any of its rows is accepted
            seen[(i, j)] = seen.get((i, j), False) or bool(k)
    n = 0
    while seen.get((n + 1, n + 1)) and not any(seen.get(p, False) for p in near_misses(n + 1)):
        n += 1
    return n


class NextSymbol(Classification):
    """The loss: cross-entropy of the next symbol at every step of the positives (the
    authors' loss_on_word, averaged over steps rather than summed per word). Metrics:
    ce (nats per step, on the positive rows), accuracy (share of rows whose acceptance is
    right: positives accepted, other strings rejected), positives_accepted, largest_n and
    accepted_to_n (largest_n with the near misses left out)."""

    kind = "next_symbol"

    def __init__(self, threshold: float):
        super().__init__(len(SYMBOLS))
        self.threshold = threshold

    def metrics(self, out: torch.Tensor, y: torch.Tensor, score_mask=None) -> dict[str, float]:
        logits = out.double()  # (N, T, 3)
        na, nb = counts(y)
        positive = na == nb
        ok = accepted(logits.softmax(-1), y, self.threshold)
        pos_y = y[positive]
        ce = float(F.cross_entropy(logits[positive].reshape(-1, 3), pos_y.reshape(-1), ignore_index=IGNORE)) \
            if positive.any() else math.nan
        return {"ce": ce, "accuracy": float((ok == positive).double().mean()),
                "positives_accepted": float(ok[positive].double().mean()) if positive.any() else math.nan,
                "largest_n": float(largest_n(na, nb, ok)),
                # how far the positives alone are accepted (the notebook's a^1000 b^1000 test)
                "accepted_to_n": float(largest_n(na[positive], nb[positive], ok[positive]))}
