"""Counting as Weiss et al. 2018 trained it (grucli.tasks.counting): the next-symbol rows,
the acceptance rule on hand-made probabilities, the largest-n metric on a hand-made
acceptor, and the classifier mode's run ids left as they were."""

from __future__ import annotations

import pytest
import torch

from grucli.config import parse_run
from grucli.errors import ConfigError
from grucli.grid import run_id
from grucli.objectives import IGNORE
from grucli.tasks import counting
from grucli.tasks.counting import A, B, BOS, EOS
from grucli.tasks.synthetic import CountingConfig, build_counting


def test_a_string_is_read_after_a_start_symbol_and_ends_with_eos():
    s = counting.strings([(2, 1), (0, 0)])
    assert s.x[0].tolist() == [BOS, A, A, B]
    assert s.y[0].tolist() == [A, A, B, EOS]
    assert s.y[1].tolist() == [EOS, IGNORE, IGNORE, IGNORE]  # the empty word: only <EOS>, from the start state
    assert s.lengths.tolist() == [4, 1]


def test_training_rows_are_positives_with_every_n_equally_often():
    s = counting.training_strings(12, 3)
    na, nb = counting.counts(s.y)
    assert (na == nb).all() and sorted(na.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_the_check_set_holds_each_n_and_its_near_misses():
    na, nb = counting.counts(counting.check_strings(2).y)
    assert list(zip(na.tolist(), nb.tolist())) == [(1, 1), (1, 2), (2, 1), (1, 0), (2, 2), (2, 3), (3, 2), (2, 1)]


def _probs(rows: list[list[float]]) -> torch.Tensor:
    """(N, T, 3) probabilities whose target entry (see y below) is the given value."""
    out = torch.full((len(rows), len(rows[0]), 3), 0.0)
    for r, row in enumerate(rows):
        for t, p in enumerate(row):
            out[r, t] = torch.tensor([p, (1 - p) / 2, (1 - p) / 2])  # the target is a in column 0
    return out


def test_a_string_is_accepted_when_every_next_symbol_is_above_the_threshold():
    y = torch.tensor([[A, A, A], [A, A, A], [A, A, IGNORE]])
    p = _probs([[0.9, 0.006, 0.9], [0.9, 0.004, 0.9], [0.9, 0.9, 0.0]])
    assert counting.accepted(p, y, 0.005).tolist() == [True, False, True]  # padding is not scored
    assert counting.accepted(p, y, 0.007).tolist() == [False, False, True]


def test_the_final_eos_must_be_above_the_threshold_too():
    s = counting.strings([(1, 1)])  # targets a b <EOS>
    p = torch.tensor([[[0.98, 0.01, 0.01], [0.01, 0.98, 0.01], [0.5, 0.497, 0.003]]])
    assert not counting.accepted(p, s.y, 0.005).item()
    p[0, 2] = torch.tensor([0.01, 0.01, 0.98])
    assert counting.accepted(p, s.y, 0.005).item()


def test_largest_n_stops_at_the_first_n_that_fails():
    def rows(accept):
        pairs = [p for n in range(1, 7) for p in [(n, n), *counting.near_misses(n)]]
        na, nb = torch.tensor([i for i, _ in pairs]), torch.tensor([j for _, j in pairs])
        return na, nb, torch.tensor([accept(i, j) for i, j in pairs])

    assert counting.largest_n(*rows(lambda i, j: i == j)) == 6  # the whole checked range
    assert counting.largest_n(*rows(lambda i, j: i == j and i <= 4)) == 4
    assert counting.largest_n(*rows(lambda i, j: i == j or (i, j) == (4, 5))) == 3  # a^4 b^5: a near miss of 4
    assert counting.largest_n(*rows(lambda i, j: i == j or (i, j) == (4, 3))) == 2  # a^4 b^3: of 4, and of 3
    assert counting.largest_n(*rows(lambda i, j: i == j and i != 1)) == 0  # n = 1 fails: nothing counted
    assert counting.largest_n(*rows(lambda i, j: True)) == 0  # a*b* without counting


class SaturatingCounter(torch.nn.Module):
    """A hand-made acceptor: it counts a's up to `cap` and no further, then b's against
    that count, and spreads its probability over the symbols a^n b^n allows next."""

    def __init__(self, cap: int):
        super().__init__()
        self.cap = cap

    def forward(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        N, T = x.shape
        logits = torch.full((N, T, 3), -30.0)
        for r in range(N):
            i = j = 0
            for t in range(T):
                i, j = (min(i + 1, self.cap), j) if (x[r, t] == A and t) else (i, j + (x[r, t] == B))
                allowed = [A, B, EOS] if i == j == 0 else [A, B] if j == 0 else [B] if j < i else [EOS]
                logits[r, t, allowed] = 0.0
        return logits


def test_the_metric_on_a_counter_that_saturates():
    """Counting to 5 only: a^n b^n is accepted up to n = 5, but a^6 b^5 (a near miss of 5)
    looks like a^5 b^5 to it, so the largest n it recognises is 4."""
    data = build_counting(CountingConfig(mode="next", max_n_train=4, max_n_test=12, n_train=10))
    m = data.objective.metrics(SaturatingCounter(5)(data.test.x), data.test.y)
    assert m["largest_n"] == 4 and m["accepted_to_n"] == 5  # a^5 b^5 is accepted; a^6 b^6 is not
    assert 0 < m["accuracy"] < 1 and m["positives_accepted"] == pytest.approx(5 / 12)
    m = data.objective.metrics(SaturatingCounter(50)(data.test.x), data.test.y)
    assert m["largest_n"] == 12 and m["accuracy"] == 1.0  # counts past the checked range: all of it


def test_next_mode_checks_three_times_the_training_n():
    with pytest.raises(ValueError, match="at least 3 x max_n_train"):
        CountingConfig(mode="next", max_n_train=10, max_n_test=29)
    data = build_counting(CountingConfig(mode="next", max_n_train=10, max_n_test=30, n_train=22))
    assert int(counting.counts(data.test.y)[0].max()) == 31  # a^31 b^30, the near miss of 30
    assert (data.train.y != IGNORE).any() and data.metric == "largest_n" and data.selection == ("ce", "min")


def test_the_new_keys_at_their_defaults_keep_the_run_ids():
    """Ids computed on main before mode and threshold existed (grucli.config.LATER_KEYS)."""
    raw = {"task": {"name": "counting", "max_n_train": 10, "max_n_test": 30},
           "model": {"cell": "lstm", "hidden_size": 10}, "train": {"lr": 0.001}, "seed": 3}
    assert run_id(parse_run(raw, "x")) == "53f1283c5502"
    raw["task"] |= {"mode": "classifier", "threshold": 0.005}
    assert run_id(parse_run(raw, "x")) == "53f1283c5502"
    raw["task"]["mode"] = "next"
    assert run_id(parse_run(raw, "x")) != "53f1283c5502"


def test_a_bad_threshold_is_refused():
    with pytest.raises((ValueError, ConfigError)):
        parse_run({"task": {"name": "counting", "mode": "next", "threshold": 1.5}}, "x")
