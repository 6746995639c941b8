"""Synthetic long-dependency tasks. Each generator is seeded by `data_seed` through its own
torch.Generator, so the same config always gives the same data. Difficulty grows with
`seq_len` (or `max_n_test` for counting), which is a config key a grid can sweep."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from grucli.numbers import num
from grucli.objectives import Classification, Regression
from grucli.tasks.base import Split, SyntheticConfig, Task, TaskData, split_sizes, three_way


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- adding
class AddingConfig(SyntheticConfig):
    name: Literal["adding"] = "adding"
    seq_len: int = Field(50, ge=2)  # T: steps per sequence


def build_adding(cfg: AddingConfig) -> TaskData:
    """Adding problem (Le et al. 2015 / uRNN form). Input (T, 2): a value in U[0,1] and a
    marker; exactly two markers, one in each half. Target: the sum of the two marked
    values. Predicting the constant 1 gives MSE = Var(u1 + u2) = 2/12 = 1/6."""
    g, T = _gen(cfg.data_seed), cfg.seq_len
    n = sum(split_sizes(cfg))
    values = torch.rand(n, T, generator=g)  # (N, T)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, T, (n,), generator=g)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second]).unsqueeze(-1)  # (N, 1)
    train, val, test = three_way(Split(x, y), split_sizes(cfg))
    return TaskData(
        train, val, test, input_size=2, output_size=1, head="last", objective=Regression(),
        metric="mse", goal="min", baseline={"mse": 1 / 6, "rmse": math.sqrt(1 / 6)}, target=0.01,
        info={"seq_len": T, "baseline_rule": "always predict 1"},
    )


# --------------------------------------------------------------------------- copy
class CopyConfig(SyntheticConfig):
    name: Literal["copy"] = "copy"
    seq_len: int = Field(50, ge=1)  # T: delay between the symbols and the delimiter
    n_symbols: int = Field(8, ge=2)  # alphabet size of the symbols to copy
    copy_len: int = Field(10, ge=1)  # number of symbols to remember


def build_copy(cfg: CopyConfig) -> TaskData:
    """Copy memory (Arjovsky et al. 2016). Tokens: 0 blank, 1..K symbols, K+1 delimiter.
    Input: L symbols, T-1 blanks, the delimiter, L blanks (T + 2L steps). Target: blanks,
    then the L symbols on the last L steps. The memoryless baseline predicts blank then a
    uniform guess: CE = L ln K / (T + 2L), recall accuracy 1/K."""
    g, T, K, L = _gen(cfg.data_seed), cfg.seq_len, cfg.n_symbols, cfg.copy_len
    n = sum(split_sizes(cfg))
    total = T + 2 * L
    symbols = torch.randint(1, K + 1, (n, L), generator=g)  # (N, L)
    x = torch.zeros(n, total, dtype=torch.long)  # (N, T+2L)
    x[:, :L] = symbols
    x[:, T + L - 1] = K + 1  # delimiter
    y = torch.zeros(n, total, dtype=torch.long)
    y[:, -L:] = symbols
    recall = torch.zeros(n, total, dtype=torch.bool)
    recall[:, -L:] = True
    train, val, test = three_way(Split(x, y, score_mask=recall), split_sizes(cfg))
    return TaskData(
        train, val, test, input_size=K + 2, output_size=K + 2, head="each",
        objective=Classification(K + 2), metric="accuracy", goal="max",
        baseline={"ce": L * math.log(K) / total, "accuracy": 1 / K}, target=0.99, tokens=True,
        info={"seq_len": total, "baseline_rule": "blank, then uniform over symbols"},
    )


# --------------------------------------------------------------------------- temporal order
class TemporalOrderConfig(SyntheticConfig):
    name: Literal["temporal_order"] = "temporal_order"
    seq_len: int = Field(100, ge=12)  # T: steps per sequence
    n_relevant: Literal[2, 3] = 2  # relevant X/Y symbols: 2 -> 4 classes, 3 -> 8 classes


# Relevant symbol windows as fractions of T (Hochreiter & Schmidhuber 1997, 5.6:
# t1 in [10, 20], t2 in [50, 60] for T ~ 100; with three: [10,20], [33,43], [66,76]).
_WINDOWS = {2: [(0.1, 0.2), (0.5, 0.6)], 3: [(0.1, 0.2), (0.33, 0.43), (0.66, 0.76)]}
_A, _B, _C, _D, _X, _Y, _END, _START = range(8)  # token ids


def build_temporal_order(cfg: TemporalOrderConfig) -> TaskData:
    """Temporal order (Hochreiter & Schmidhuber 1997, experiment 6). A start token, an end
    token, distractors a-d, and 2 (or 3) relevant symbols X/Y at random positions inside
    fixed windows. The class is the order of the relevant symbols (XX, XY, YX, YY, ...),
    read from the last step. Classes are balanced, so the baseline accuracy is 1/classes."""
    g, T, k = _gen(cfg.data_seed), cfg.seq_len, cfg.n_relevant
    n = sum(split_sizes(cfg))
    x = torch.randint(_A, _D + 1, (n, T), generator=g)  # distractors, (N, T)
    x[:, 0], x[:, -1] = _START, _END
    bits = torch.randint(0, 2, (n, k), generator=g)  # 0 -> X, 1 -> Y
    rows = torch.arange(n)
    for i, (lo, hi) in enumerate(_WINDOWS[k]):
        a, b = max(1, int(lo * T)), max(int(lo * T) + 1, int(hi * T))
        pos = torch.randint(a, min(b, T - 1), (n,), generator=g)
        x[rows, pos] = _X + bits[:, i]
    y = (bits * (2 ** torch.arange(k - 1, -1, -1))).sum(-1)  # binary code of the order, (N,)
    classes = 2**k
    train, val, test = three_way(Split(x, y), split_sizes(cfg))
    return TaskData(
        train, val, test, input_size=8, output_size=classes, head="last",
        objective=Classification(classes), metric="accuracy", goal="max",
        baseline={"accuracy": 1 / classes, "ce": math.log(classes)}, target=0.99, tokens=True,
        info={"seq_len": T, "classes": classes, "baseline_rule": "uniform guess"},
    )


# --------------------------------------------------------------------------- counting a^n b^n
class CountingConfig(SyntheticConfig):
    name: Literal["counting"] = "counting"
    max_n_train: int = Field(10, ge=2)  # N: train and validation strings have 1 <= n <= N
    max_n_test: int = Field(30, ge=3)  # test strings have N < n <= max_n_test
    negatives: Literal["balanced", "shift1or2"] = "balanced"  # balanced: a^(k+-1) b^(k-+1), lengths as the positives'
    # (shift1or2, grucli before 0.2: a^n b^(n+-1) has odd length, so length parity alone scores 0.76)
    # classifier: accept/reject labelled strings (last step). next: Weiss et al. 2018's next-symbol
    # predictor, trained on the positives with n = 0..max_n_train only (n_train rows; n_val, n_test
    # unused), validated on n <= max_n_train and tested on n <= max_n_test (grucli.tasks.counting)
    mode: Literal["classifier", "next"] = "classifier"
    threshold: float = Field(0.005, gt=0, lt=1)  # next: a symbol is accepted when its probability exceeds this

    @model_validator(mode="after")
    def _test_beyond_train(self):
        if self.max_n_test <= self.max_n_train:
            raise ValueError("max_n_test must be larger than max_n_train")
        if self.mode == "next" and self.max_n_test < 3 * self.max_n_train:
            raise ValueError(f"mode next: max_n_test must be at least 3 x max_n_train = {3 * self.max_n_train} "
                             "(the largest n is checked that far)")
        return self


def _anbn(g: torch.Generator, count: int, lo: int, hi: int, negatives: str = "balanced") -> Split:
    """Half positives a^k b^k, half near misses, k uniform in [lo, hi]. balanced: the
    near miss of length 2k is a^(k+1) b^(k-1) or a^(k-1) b^(k+1), so both classes have the
    same lengths and only counting tells them apart. shift1or2: a^k b^m, m = k +- 1 or 2.
    Tokens a=0, b=1, right-padded with 0; lengths say where each ends."""
    k = torch.randint(lo, hi + 1, (count,), generator=g)
    positive = torch.rand(count, generator=g) < 0.5
    sign = torch.randint(0, 2, (count,), generator=g) * 2 - 1
    if negatives == "balanced":
        n = torch.where(positive, k, k + sign)  # a's
        m = 2 * k - n  # b's: the same total length 2k
    else:
        shift = torch.randint(1, 3, (count,), generator=g) * sign
        n, m = k, torch.where(positive, k, (k + shift).clamp(min=1))
        m = torch.where(~positive & (m == k), k + 1, m)  # clamping may have landed on k
    lengths = n + m
    steps = torch.arange(int(lengths.max()))  # (T,)
    x = ((steps[None, :] >= n[:, None]) & (steps[None, :] < lengths[:, None])).long()  # b where n <= t < n+m
    return Split(x, positive.long(), lengths=lengths)


def build_counting(cfg: CountingConfig) -> TaskData:
    """Counting (Weiss et al. 2018): recognise a^n b^n. Trained and validated on n <= N,
    tested on N < n <= max_n_test, so the test measures whether the cell learned to count
    rather than memorised lengths. Variable lengths (packed). Classes are balanced: the
    majority baseline is 0.5. `mode: next`: the paper's own setup (build_counting_next)."""
    if cfg.mode == "next":
        return build_counting_next(cfg)
    g = _gen(cfg.data_seed)
    train = _anbn(g, cfg.n_train, 1, cfg.max_n_train, cfg.negatives)
    val = _anbn(g, cfg.n_val, 1, cfg.max_n_train, cfg.negatives)
    test = _anbn(g, cfg.n_test, cfg.max_n_train + 1, cfg.max_n_test, cfg.negatives)
    return TaskData(
        train, val, test, input_size=2, output_size=2, head="last", objective=Classification(2),
        metric="accuracy", goal="max", baseline={"accuracy": 0.5, "ce": math.log(2),
                                                 "length_rule_accuracy": length_rule_accuracy(test)},
        target=0.95, tokens=True,
        info={"seq_len": 2 * cfg.max_n_test + 2, "baseline_rule": "majority class (balanced)"},
    )


def build_counting_next(cfg: CountingConfig) -> TaskData:
    """Weiss et al. 2018 as their code trains it (grucli.tasks.counting): a softmax over
    {a, b, <EOS>} at every step, trained on positives a^n b^n (n = 0..N); a string is
    accepted when each next symbol and the final <EOS> get probability > threshold. The
    metric: the largest n up to which a^n b^n is accepted and its near misses rejected,
    checked to max_n_test (>= 3N). Validation (n <= N, with near misses) selects the epoch
    on the positives' cross-entropy: the largest n inside the range saturates at N early,
    and the paper keeps its last network, not the first that fits."""
    from grucli.tasks import counting

    return TaskData(
        counting.training_strings(cfg.n_train, cfg.max_n_train), counting.check_strings(cfg.max_n_train),
        counting.check_strings(cfg.max_n_test), input_size=3, output_size=3, head="each",
        objective=counting.NextSymbol(cfg.threshold), metric="largest_n", goal="max",
        baseline={"largest_n": 0.0}, tokens=True, select="ce", select_goal="min",
        info={"seq_len": 2 * cfg.max_n_test + 2, "baseline_rule": "a finite automaton that does not count: largest n 0",
              "threshold": cfg.threshold},
    )


def length_rule_accuracy(split: Split) -> float:
    """The accuracy on `split` of the best rule that reads only a string's length: each
    length labelled with its majority class in the split itself (an upper bound for every
    length-only rule, parity included). What a model can score without counting."""
    votes: dict[int, list[int]] = {}
    for length, y in zip(split.lengths.tolist(), split.y.tolist()):
        votes.setdefault(length, [0, 0])[y] += 1
    return sum(max(v) for v in votes.values()) / len(split)


def counting_baselines() -> str:
    """`grucli tasks`: the baselines of the default config, measured."""
    data = build_counting(CountingConfig())
    return f"majority class: 0.5; best length-only rule: {num(data.baseline['length_rule_accuracy'])} (test split)"


ADDING = Task("adding", AddingConfig, build_adding, "synthetic", "sum of two marked values (regression, MSE)",
              baseline="predict 1: MSE 1/6")
COPY = Task("copy", CopyConfig, build_copy, "synthetic", "recall 10 symbols after a delay (per-step classification)",
            baseline="blank, then uniform: accuracy 1/8")
TEMPORAL_ORDER = Task("temporal_order", TemporalOrderConfig, build_temporal_order, "synthetic",
                      "order of 2-3 relevant symbols among distractors (classification)",
                      baseline="uniform guess: 1/4 (1/8)")
COUNTING = Task("counting", CountingConfig, build_counting, "synthetic",
                "recognise a^n b^n, tested on n beyond training (classification, variable length)",
                baseline="majority class: 0.5; best length-only rule: see grucli tasks", measure_baseline=counting_baselines)
