"""Tasks: shapes, determinism per data_seed, labels checked by hand on small examples,
and the trivial baselines computed as stated."""

from __future__ import annotations

import math

import pytest
import torch

from grucli.model import KINDS
from grucli.objectives import Classification, Regression
from grucli.tasks import TASKS
from grucli.tasks.synthetic import _END, _START, _X, _Y, AddingConfig, CopyConfig, CountingConfig, \
    TemporalOrderConfig, build_adding, build_copy, build_counting, build_temporal_order

ALL = sorted(TASKS)
SEEDED = [n for n in ALL if TASKS[n].kind == "synthetic"] + ["seq_digits"]  # data_seed shuffles or generates


def build(name: str, cfg: dict):
    """Build fresh data (no cache), from the registry as training does."""
    task = TASKS[name]
    return task.build(task.config(**cfg))


def tiny(tiny_tasks, name) -> dict:
    if name not in tiny_tasks:
        pytest.skip(f"no tiny config for {name} (see test_every_registered_task_has_a_tiny_config)")
    return tiny_tasks[name]


def splits(data):
    return {"train": data.train, "val": data.val, "test": data.test}


def test_every_registered_task_has_a_tiny_config(tiny_tasks, not_tiny):
    missing = sorted(set(TASKS) - set(tiny_tasks) - set(not_tiny))
    assert not missing, f"add a tiny config for {missing} to TINY_TASKS (or a reason to NOT_TINY) in tests/conftest.py"
    assert not set(tiny_tasks) - set(TASKS), "a tiny config for a task that is not registered"


# --------------------------------------------------------------------------- every task
@pytest.mark.parametrize("name", ALL)
def test_split_shapes_and_types(tiny_tasks, name):
    data = build(name, tiny(tiny_tasks, name))
    assert data.goal in ("min", "max")
    assert data.metric in data.baseline
    assert data.head in KINDS
    for split_name, s in splits(data).items():
        n = len(s.x)
        assert n > 0 and len(s.y) == n, split_name
        if data.head == "seq2seq":  # x = source ids (S) then decoder input ids (T); y = (N, T) references
            S, T = data.info["src_len"], data.info["out_len"]
            assert s.x.dtype == torch.long and s.x.shape[1] == S + T and s.y.shape == (n, T)
            assert int(s.x[:, :S].max()) < data.input_size and int(s.x[:, S:].max()) < data.output_size
            assert int(s.y.max()) < data.output_size
        elif data.tokens:
            assert s.x.dtype == torch.long and s.x.dim() == 2  # (N, T)
            assert 0 <= int(s.x.min()) and int(s.x.max()) < data.input_size
        else:
            assert s.x.is_floating_point() and s.x.dim() == 3 and s.x.shape[-1] == data.input_size  # (N, T, I)
        if data.head == "each":
            assert s.y.shape[:2] == s.x.shape[:2]
        if s.lengths is not None:
            assert s.lengths.shape == (n,) and int(s.lengths.max()) <= s.x.shape[1]
        if s.score_mask is not None:
            assert s.score_mask.shape == s.x.shape[:2] and s.score_mask.dtype == torch.bool


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order", "counting"])
def test_synthetic_split_sizes(tiny_tasks, name):
    cfg = tiny_tasks[name]
    data = build(name, cfg)
    assert [len(s) for s in splits(data).values()] == [cfg["n_train"], cfg["n_val"], cfg["n_test"]]


def _same(a, b) -> bool:
    for s, t in zip(splits(a).values(), splits(b).values()):
        for u, v in [(s.x, t.x), (s.y, t.y), (s.lengths, t.lengths), (s.score_mask, t.score_mask)]:
            if (u is None) != (v is None) or (u is not None and (u.shape != v.shape or not torch.equal(u, v))):
                return False
    return True


@pytest.mark.parametrize("name", ALL)
def test_same_data_seed_gives_the_same_tensors(tiny_tasks, name):
    cfg = {**tiny(tiny_tasks, name), "data_seed": 5}
    assert _same(build(name, cfg), build(name, cfg))


@pytest.mark.parametrize("name", SEEDED)
def test_other_data_seed_gives_other_data(tiny_tasks, name):
    a = build(name, {**tiny(tiny_tasks, name), "data_seed": 0})
    b = build(name, {**tiny(tiny_tasks, name), "data_seed": 1})
    assert not _same(a, b)
    assert a.train.x.shape[0] == b.train.x.shape[0]


def test_data_generation_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_adding(AddingConfig(seq_len=10, n_train=20, n_val=5, n_test=5))
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- adding
def test_adding_layout_and_target():
    data = build_adding(AddingConfig(seq_len=11, n_train=200, n_val=50, n_test=50, data_seed=3))
    for s in splits(data).values():
        assert s.x.shape[1:] == (11, 2) and s.y.shape[1:] == (1,)
        values, markers = s.x[..., 0], s.x[..., 1]
        assert ((values >= 0) & (values < 1)).all()
        assert set(markers.unique().tolist()) == {0.0, 1.0}
        half = 11 // 2
        assert (markers[:, :half].sum(1) == 1).all(), "exactly one marker in the first half"
        assert (markers[:, half:].sum(1) == 1).all(), "exactly one marker in the second half"
        expected = (values * markers).sum(1, keepdim=True)
        assert torch.allclose(s.y, expected)
    assert data.metric == "mse" and data.goal == "min" and data.target == 0.01


def test_adding_hand_checked_example():
    data = build_adding(AddingConfig(seq_len=4, n_train=1, n_val=1, n_test=1, data_seed=0))
    x, y = data.train.x[0], float(data.train.y[0])
    (first,) = [t for t in range(2) if x[t, 1] == 1]
    (second,) = [t for t in range(2, 4) if x[t, 1] == 1]
    assert y == pytest.approx(float(x[first, 0]) + float(x[second, 0]))


def test_adding_baseline_is_one_sixth_and_matches_predicting_one():
    data = build_adding(AddingConfig(seq_len=6, n_train=20000, n_val=10, n_test=10, data_seed=1))
    assert data.baseline["mse"] == pytest.approx(1 / 6)
    y = data.train.y
    empirical = Regression().metrics(torch.ones_like(y), y)["mse"]
    assert empirical == pytest.approx(1 / 6, abs=0.006)  # ~4 standard errors at n = 20000


# --------------------------------------------------------------------------- copy
def test_copy_layout():
    T, L, K = 6, 3, 4
    data = build_copy(CopyConfig(seq_len=T, copy_len=L, n_symbols=K, n_train=40, n_val=5, n_test=5))
    assert data.input_size == data.output_size == K + 2 and data.tokens and data.head == "each"
    for s in splits(data).values():
        x, y = s.x, s.y
        assert x.shape[1] == T + 2 * L
        symbols = x[:, :L]
        assert ((symbols >= 1) & (symbols <= K)).all()
        assert (x[:, L:L + T - 1] == 0).all(), "T-1 blanks"
        assert (x[:, L + T - 1] == K + 1).all(), "then the delimiter"
        assert (x[:, L + T:] == 0).all(), "then L blanks"
        assert (y[:, :-L] == 0).all(), "blanks are the target until the recall steps"
        assert torch.equal(y[:, -L:], symbols), "the last L targets are the symbols, in order"
        assert s.score_mask[:, -L:].all() and not s.score_mask[:, :-L].any()


def test_copy_default_baseline_formula():
    data = build_copy(CopyConfig(n_train=2, n_val=1, n_test=1))  # defaults: T=50, 10 symbols from 8
    assert data.baseline["ce"] == pytest.approx(10 * math.log(8) / (50 + 20))
    assert data.baseline["accuracy"] == pytest.approx(1 / 8)


@pytest.mark.parametrize("T,L,K", [(50, 10, 8), (7, 3, 4)])
def test_copy_memoryless_predictor_scores_the_baseline(T, L, K):
    """Blank with certainty, then uniform over the K symbols: CE = L ln K / (T + 2L)."""
    data = build_copy(CopyConfig(seq_len=T, copy_len=L, n_symbols=K, n_train=3000, n_val=1, n_test=1, data_seed=2))
    s = data.train
    logits = torch.full((*s.y.shape, K + 2), -1e4)
    logits[:, :-L, 0] = 0.0  # certain blank
    logits[:, -L:, 1:K + 1] = 0.0  # uniform over the symbols
    m = Classification(K + 2).metrics(logits, s.y, s.score_mask)
    assert m["ce"] == pytest.approx(data.baseline["ce"], rel=1e-6)
    assert m["accuracy"] == pytest.approx(1 / K, abs=0.02)  # argmax = symbol 1, seen 1/K of the time


# --------------------------------------------------------------------------- temporal order
def _relevant(x_row):
    pos = [t for t, v in enumerate(x_row.tolist()) if v in (_X, _Y)]
    return pos, [int(x_row[t]) for t in pos]


@pytest.mark.parametrize("k", [2, 3])
def test_temporal_order_class_is_the_order_of_x_and_y(k):
    T = 100
    data = build_temporal_order(TemporalOrderConfig(seq_len=T, n_relevant=k, n_train=300, n_val=10, n_test=10))
    assert data.output_size == 2**k and data.baseline["accuracy"] == pytest.approx(1 / 2**k)
    windows = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}[k]  # H&S 1997, 5.6
    for x, y in zip(data.train.x, data.train.y):
        assert int(x[0]) == _START and int(x[-1]) == _END
        pos, symbols = _relevant(x)
        assert len(pos) == k
        for t, (lo, hi) in zip(pos, windows):
            assert lo <= t <= hi
        others = [int(v) for t, v in enumerate(x) if t not in pos and 0 < t < T - 1]
        assert all(v < _X for v in others), "distractors only between the relevant symbols"
        code = 0
        for s in symbols:
            code = 2 * code + (s == _Y)
        assert int(y) == code


def test_temporal_order_hand_checked_classes():
    data = build_temporal_order(TemporalOrderConfig(seq_len=20, n_train=400, n_val=5, n_test=5))
    names = {0: "XX", 1: "XY", 2: "YX", 3: "YY"}
    for x, y in zip(data.train.x, data.train.y):
        _, symbols = _relevant(x)
        assert "".join("X" if s == _X else "Y" for s in symbols) == names[int(y)]
    counts = torch.bincount(data.train.y, minlength=4).double() / len(data.train.y)
    assert (counts - 0.25).abs().max() < 0.08, "classes are balanced (baseline 1/4)"


# --------------------------------------------------------------------------- counting
def _parse_anbn(x_row, length):
    s = x_row[:length].tolist()
    n_a = s.index(1) if 1 in s else len(s)
    assert s == [0] * n_a + [1] * (len(s) - n_a), "a^n then b^m"
    assert (x_row[length:] == 0).all(), "right-padded"
    return n_a, len(s) - n_a


def test_counting_labels_lengths_and_ranges():
    """Positives a^k b^k; negatives of the same length 2k, a^(k+1) b^(k-1) or a^(k-1) b^(k+1);
    k in [1, N] for train and validation, in (N, M] for test."""
    N, M = 4, 7
    data = build_counting(CountingConfig(max_n_train=N, max_n_test=M, n_train=300, n_val=100, n_test=300))
    for name, s in splits(data).items():
        lo, hi = (N + 1, M) if name == "test" else (1, N)
        for x, y, length in zip(s.x, s.y, s.lengths):
            n, m = _parse_anbn(x, int(length))
            assert length % 2 == 0 and lo <= length // 2 <= hi, f"{name}: length {int(length)}"
            assert int(y) == int(n == m)
            if n != m:
                assert abs(n - m) == 2, "negatives are near misses of the same length"
        assert abs(float(s.y.double().mean()) - 0.5) < 0.12, f"{name}: balanced classes"
        assert s.x.shape[1] == int(s.lengths.max())


def test_counting_test_uses_n_beyond_training():
    data = build_counting(CountingConfig(max_n_train=3, max_n_test=9, n_train=200, n_val=50, n_test=200))
    assert int(data.train.lengths.max()) == 2 * 3 and int(data.test.lengths.min()) == 2 * 4
    test_k = [int(length) // 2 for length in data.test.lengths]
    assert min(test_k) == 4 and max(test_k) == 9


def test_no_length_only_rule_solves_counting():
    """Both classes have the same lengths, so the best length-only rule (each length given
    its majority class on the test split itself) stays near chance; the old negatives
    (a^n b^(n+-1), odd lengths) let length parity score 0.76."""
    from grucli.tasks.synthetic import length_rule_accuracy

    balanced = build_counting(CountingConfig())
    assert balanced.baseline["length_rule_accuracy"] == length_rule_accuracy(balanced.test) < 0.56
    old = build_counting(CountingConfig(negatives="shift1or2"))
    assert length_rule_accuracy(old.test) > 0.74
    pos = sorted(balanced.test.lengths[balanced.test.y == 1].tolist())
    neg = sorted(balanced.test.lengths[balanced.test.y == 0].tolist())
    assert set(pos) == set(neg)  # every length occurs in both classes


def test_grucli_tasks_states_the_length_rule_beside_the_majority_baseline():
    from typer.testing import CliRunner

    from grucli.cli import app

    import re

    out = CliRunner().invoke(app, ["tasks"])
    text = re.sub(r"[\s│]+", " ", out.output)  # the table wraps its cells
    acc = build_counting(CountingConfig()).baseline["length_rule_accuracy"]
    assert "majority class: 0.5; best length-only" in text and f"{acc:.3f}" in text, text


# --------------------------------------------------------------------------- seq_digits
def test_seq_digits_shapes_sizes_and_baseline():
    data = build("seq_digits", {"name": "seq_digits", "n_val": 100, "n_test": 200})
    assert [len(s) for s in splits(data).values()] == [1797 - 300, 100, 200]
    for s in splits(data).values():
        assert s.x.shape[1:] == (64, 1)
        assert float(s.x.min()) >= 0 and float(s.x.max()) <= 1
        assert set(s.y.unique().tolist()) <= set(range(10))
    majority = int(torch.bincount(data.train.y).argmax())
    assert data.baseline["accuracy"] == pytest.approx(float((data.test.y == majority).double().mean()))


def test_seq_digits_permutation_moves_pixels_only():
    plain = build("seq_digits", {"name": "seq_digits", "data_seed": 4})
    perm = build("seq_digits", {"name": "seq_digits", "data_seed": 4, "permute": True})
    every = lambda d: torch.cat([d.train.x, d.val.x, d.test.x])[..., 0]  # noqa: E731  (1797, 64)
    a, b = every(plain), every(perm)
    assert not torch.equal(a, b)
    # the same images, pixels reordered: per-image sorted pixels, summed over images, agree
    assert torch.allclose(a.sort(dim=1).values.sum(0), b.sort(dim=1).values.sum(0))


# --------------------------------------------------------------------------- targets
def test_reached_respects_the_goal():
    adding = build_adding(AddingConfig(seq_len=4, n_train=2, n_val=1, n_test=1))
    assert adding.reached(0.005) and not adding.reached(0.02) and not adding.reached(float("nan"))
    copy = build_copy(CopyConfig(seq_len=4, n_train=2, n_val=1, n_test=1))
    assert copy.reached(0.995) and not copy.reached(0.5)
