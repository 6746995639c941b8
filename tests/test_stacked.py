"""grucli.train.stacked: the stacked training step of a pack on the fused kernels. Its forward
equals each run's SequenceModel (outputs and gradients, every cell family, head, depth and
direction), its optimiser step equals torch's optimisers and clip, each run's slice of a
stack equals the same run stacked alone bit for bit, and the cases it does not cover say why."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from grucli.train import stacked
from grucli.cells import CELLS
from grucli.cells.fused import build
from grucli.config import RunConfig
from grucli.model import SequenceModel
from grucli.objectives import IGNORE, Classification, Regression
from grucli.tasks import Split, TaskData

FUSED = [c for c in CELLS if CELLS[c].fused]


@pytest.fixture(autouse=True)
def kernels():
    if build.compiler() is None:
        pytest.skip("no C++ compiler on this machine: the fused kernels cannot be built")
    assert build.kernels() is not None, build.unavailable_reason()


@pytest.fixture
def own_products():
    """Stacked training needs grucli's own products (a build without SIMD uses the BLAS)."""
    if not build.kernels().own_products():
        pytest.skip(f"this build ({build.describe()}) has no SIMD: its packs train run by run")


def cfg(seed=0, lr=1e-2, optimizer="adam", momentum=0.0, weight_decay=0.0, grad_clip=None, dropout=0.0, layers=1):
    return RunConfig(task={"name": "adding", "seq_len": 5, "n_train": 8, "n_val": 4, "n_test": 4},
                     model={"cell": "gru", "hidden_size": 5, "num_layers": layers, "dropout": dropout},
                     train={"optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                            "grad_clip": grad_clip}, seed=seed)


def models(cell, K, *, head="last", layers=1, bidirectional=False, tokens=False, embed_dim=None, dtype=torch.float64,
           I=3, H=5, O=2):
    out = []
    for k in range(K):
        torch.manual_seed(k)
        out.append(SequenceModel(cell, input_size=I, output_size=O, hidden_size=H, head=head, num_layers=layers,
                                 bidirectional=bidirectional, tokens=tokens, embed_dim=embed_dim,
                                 impl="fused").to(dtype))
    return out


def inputs(K, tokens, dtype=torch.float64, B=4, T=6, I=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    if tokens:
        return torch.randint(0, I, (K, B, T), generator=g)
    return torch.randn(K, B, T, I, generator=g, dtype=dtype)


CASES = [dict(head="last"), dict(head="each"), dict(head="last", layers=2), dict(head="each", bidirectional=True),
         dict(head="last", layers=2, bidirectional=True), dict(head="each", tokens=True),
         dict(head="last", tokens=True, embed_dim=4)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("cell", FUSED)
def test_the_stacked_forward_and_gradients_equal_each_runs_model(cell, case):
    K = 3
    ms = models(cell, K, **case)
    stack = stacked.of_runs(ms, [cfg(k) for k in range(K)], [torch.Generator() for _ in range(K)])
    x = inputs(K, case.get("tokens", False))
    out = stack.forward(x)
    out.pow(2).sum().backward()
    for k, m in enumerate(ms):
        theirs = m(x[k])
        assert out[k].shape == theirs.shape
        assert torch.allclose(out[k], theirs, atol=1e-12, rtol=0)
        theirs.pow(2).sum().backward()
        for name, p in m.named_parameters():
            assert torch.allclose(stack.params[name].grad[k], p.grad, atol=1e-11, rtol=0), name


@pytest.mark.parametrize("cell", ["gru", "lstm_peephole"])
def test_runs_stacked_together_equal_each_run_stacked_alone_bit_for_bit(own_products, cell):
    """Different inputs, lr, weight decay, clip and dropout per run; several steps, float32."""
    K = 4
    cfgs = [cfg(0, dropout=0.0, layers=2), cfg(1, lr=3e-2, weight_decay=0.1, dropout=0.3, layers=2),
            cfg(2, grad_clip=0.01, layers=2), cfg(3, dropout=0.5, grad_clip=1.0, layers=2)]
    x = inputs(K, False, torch.float32, seed=3)

    def train(indices):
        ms = [models(cell, 4, layers=2, dtype=torch.float32)[k] for k in indices]
        stack = stacked.of_runs(ms, [cfgs[k] for k in indices], [torch.Generator().manual_seed(k) for k in indices])
        norms = []
        for _ in range(3):
            stack.zero_grad()
            out = stack.forward(x[indices])
            torch.autograd.backward([out[j].pow(2).mean() for j in range(len(indices))])
            norms.append(stack.step(list(range(len(indices)))))
        return stack, norms

    together, norms = train(list(range(K)))
    for k in range(K):
        alone, alone_norms = train([k])
        for name, p in together.params.items():
            assert torch.equal(p[k], alone.params[name][0]), (k, name)
        assert [n[k] for n in norms] == [n[0] for n in alone_norms]
    assert len({together.params["head.bias"][k, 0].item() for k in range(K)}) == K  # the runs did differ


@pytest.mark.parametrize("optimizer,momentum,weight_decay,clip", [
    ("adam", 0.0, 0.0, None), ("adam", 0.0, 0.05, 0.1), ("sgd", 0.0, 0.0, None), ("sgd", 0.9, 0.01, 0.5),
    ("rmsprop", 0.0, 0.0, None), ("rmsprop", 0.8, 0.02, 0.3)])
def test_the_optimiser_step_is_torchs(optimizer, momentum, weight_decay, clip):
    """Several steps on float64 against torch's optimiser and clip_grad_norm_: the same
    algorithm (last-digit differences only)."""
    ms = models("lstm", 2)
    theirs = models("lstm", 2)
    lrs = [1e-2, 3e-3]
    cfgs = [cfg(k, lr=lrs[k], optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, grad_clip=clip)
            for k in range(2)]
    stack = stacked.of_runs(ms, cfgs, [torch.Generator() for _ in range(2)])
    make = {"adam": lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=weight_decay),
            "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=momentum, weight_decay=weight_decay),
            "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, momentum=momentum, weight_decay=weight_decay)}
    opts = [make[optimizer](m.parameters(), lr) for m, lr in zip(theirs, lrs)]
    for step in range(4):
        x = inputs(2, False, seed=step)
        stack.zero_grad()
        out = stack.forward(x)
        torch.autograd.backward([(out[k] - 1).pow(2).mean() * (10 if k else 1) for k in range(2)])
        norms = stack.step([0, 1])
        for k, (m, opt) in enumerate(zip(theirs, opts)):
            opt.zero_grad()
            ((m(x[k]) - 1).pow(2).mean() * (10 if k else 1)).backward()
            norm = torch.nn.utils.clip_grad_norm_(m.parameters(), clip if clip else float("inf"))
            assert norms[k] == pytest.approx(float(norm), rel=1e-12)
            opt.step()
    for k, m in enumerate(theirs):
        for name, p in m.named_parameters():
            assert torch.allclose(stack.params[name][k], p, atol=1e-12, rtol=0), (optimizer, name)


def test_a_run_not_stepped_is_left_as_it_was_and_keep_drops_slices_exactly():
    ms = models("gru", 3)
    stack = stacked.of_runs(ms, [cfg(k) for k in range(3)], [torch.Generator() for _ in range(3)])
    before = {n: p.detach().clone() for n, p in stack.params.items()}
    stack.forward(inputs(3, False)).pow(2).sum().backward()
    stack.step([0, 2])
    for n, p in stack.params.items():
        assert torch.equal(p[1], before[n][1]) and not torch.equal(p[0], before[n][0])
    state = [s.clone() for s in stack.state]
    after = {n: p.detach().clone() for n, p in stack.params.items()}
    stack.keep([2, 0])
    assert len(stack) == 2 and stack.lr.tolist() == [1e-2, 1e-2]
    for n, p in stack.params.items():
        assert p.is_leaf and p.requires_grad and torch.equal(p[0], after[n][2]) and torch.equal(p[1], after[n][0])
    for s, old in zip(stack.state, state):
        assert torch.equal(s[0], old[2]) and torch.equal(s[1], old[0])
    model = models("gru", 1)[0]
    stack.write(1, model)
    assert all(torch.equal(p, after[n][0]) for n, p in model.named_parameters())


def _data(lengths=None):
    split = Split(torch.zeros(4, 5, 3), torch.zeros(4, 2), lengths)
    return TaskData(split, split, split, input_size=3, output_size=2, head="last", objective=Regression(),
                    metric="mse", goal="min", baseline={})


def test_what_cannot_train_stacked_says_why():
    fused = models("gru", 2)
    k = build.kernels()
    if k.own_products():
        assert stacked.unsupported(fused, _data(), torch.device("cpu")) is None
    was = k.set_products(build.PRODUCTS["blas"])
    try:
        assert "BLAS" in stacked.unsupported(fused, _data(), torch.device("cpu"))
    finally:
        k.set_products(was)
    torch_gru = [SequenceModel("gru", input_size=3, output_size=2, hidden_size=5, head="last", impl="torch")]
    assert "fused" in stacked.unsupported(torch_gru, _data(), torch.device("cpu"))
    assert "padded" in stacked.unsupported(fused, _data(torch.tensor([5, 4, 3, 5])), torch.device("cpu"))
    assert "CPU" in stacked.unsupported(fused, _data(), torch.device("meta"))


def test_mean_per_run_is_the_mean_and_the_same_for_every_pack_and_thread_count():
    k = build.kernels()
    g = torch.Generator().manual_seed(0)
    terms = torch.rand(5, 300, 7, generator=g).requires_grad_()  # 2,100 terms per run
    means = stacked.mean_per_run(terms, k)
    assert torch.allclose(means, terms.detach().double().mean(dim=(1, 2)).float(), rtol=1e-6)
    (means * torch.arange(1.0, 6.0)).sum().backward()
    assert torch.equal(terms.grad, (torch.arange(1.0, 6.0) / 2100).reshape(5, 1, 1).expand(5, 300, 7))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for k_run in range(5):  # a run's mean alone, in a pack of 5, with 1 or 2 threads: the same bits
            assert torch.equal(stacked.mean_per_run(terms.detach()[k_run:k_run + 1], k)[0], means[k_run])
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- output layer + cross-entropy
def _head_ce_inputs(K=3, N=40, F=7, C=6, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(K, N, F, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(K, C, F, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(K, C, generator=g, dtype=dtype).requires_grad_()
    target = torch.randint(0, C, (K, N), generator=g)
    target[:, ::5] = IGNORE
    target[1, 1::3] = IGNORE  # runs count different rows
    return x, w, b, target


def test_head_cross_entropy_is_torchs_linear_and_cross_entropy_with_its_gradients():
    """float64: the kernels' output layer + cross-entropy against the plain autograd path
    (F.linear, F.cross_entropy with ignore_index, per run), value and every gradient, under
    a different upstream gradient per run; and torch.autograd.gradcheck of the hand-written
    backward."""
    k = build.kernels()
    x, w, b, target = _head_ce_inputs()
    weight = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    ours = stacked.HeadCrossEntropy.apply(x, w, b, target, IGNORE, k)
    theirs = torch.stack([F.cross_entropy(F.linear(x[i], w[i], b[i]), target[i], ignore_index=IGNORE)
                          for i in range(3)])
    assert torch.allclose(ours, theirs, rtol=1e-14, atol=0)
    for a, t in zip(torch.autograd.grad(ours, (x, w, b), weight), torch.autograd.grad(theirs, (x, w, b), weight)):
        assert torch.allclose(a, t, rtol=0, atol=1e-14)
    assert torch.autograd.gradcheck(lambda x, w, b: stacked.HeadCrossEntropy.apply(x, w, b, target, IGNORE, k),
                                    (x, w, b))


def test_head_cross_entropy_edge_cases_are_torchs():
    """A run with no counted row has loss NaN (torch's mean over nothing) and no gradient; a
    non-finite logit makes its run's loss non-finite (so the run is seen to diverge); a target
    outside the classes is an error, as in torch."""
    k = build.kernels()
    x, w, b, target = _head_ce_inputs(dtype=torch.float32)
    target[2] = IGNORE
    loss = stacked.HeadCrossEntropy.apply(x, w, b, target, IGNORE, k)
    assert loss[:2].isfinite().all() and loss[2].isnan()
    loss[:2].sum().backward()
    assert torch.equal(w.grad[2], torch.zeros_like(w.grad[2])) and w.grad[:2].abs().sum() > 0
    with torch.no_grad():
        x2 = x.detach().clone()
        x2[0, 3, 0] = float("nan")
        assert stacked.HeadCrossEntropy.apply(x2, w, b, target, IGNORE, k)[0].isnan()
        bad = target.clone()
        bad[0, 0] = 6
        with pytest.raises(RuntimeError, match="out of bounds"):
            stacked.HeadCrossEntropy.apply(x, w, b, bad, IGNORE, k)


@pytest.mark.parametrize("case", [dict(head="each", tokens=True), dict(head="each", tokens=True, embed_dim=4),
                                  dict(head="last"), dict(head="each", layers=2, bidirectional=True)],
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("cell", FUSED)
def test_the_stacked_cross_entropy_equals_each_runs_models_loss(cell, case):
    """Stacked.head_loss "cross_entropy" (the features time-major, the targets put in their
    order) is objectives.Classification.loss of each run's own model, value and gradients."""
    K, O, I = 3, 4, 5
    ms = models(cell, K, O=O, I=I, **case)
    stack = stacked.of_runs(ms, [cfg(k) for k in range(K)], [torch.Generator() for _ in range(K)])
    x = inputs(K, case.get("tokens", False), I=I)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, O, (K, 4) if case["head"] == "last" else (K, 4, 6), generator=g)
    y[y == 3] = IGNORE
    _head_loss_is_each_runs_own(stack, ms, x, y, Classification(O))


def test_a_runs_cross_entropy_step_is_the_same_bits_stacked_with_others_or_alone(own_products):
    """float32, per-step head on one-hot tokens, dropout and clip, several steps: each run's
    losses, gradient norms and weights are the same bits in a pack of 3 as alone."""
    K = 3
    cfgs = [cfg(0, layers=2), cfg(1, lr=3e-2, dropout=0.3, layers=2), cfg(2, grad_clip=0.01, layers=2)]
    x = inputs(K, True, seed=3, I=5)
    y = torch.randint(0, 4, (K, 4, 6), generator=torch.Generator().manual_seed(4))
    y[:, :, :2] = IGNORE

    def train(indices):
        ms = [models("gru", K, head="each", layers=2, tokens=True, I=5, O=4, dtype=torch.float32)[k]
              for k in indices]
        stack = stacked.of_runs(ms, [cfgs[k] for k in indices], [torch.Generator().manual_seed(k) for k in indices])
        losses, norms = [], []
        for _ in range(3):
            stack.zero_grad()
            loss = stack.head_loss(x[indices], y[indices], "cross_entropy")
            loss.backward(torch.ones_like(loss))
            losses.append(loss.tolist())
            norms.append(stack.step(list(range(len(indices)))))
        return stack, losses, norms

    together, losses, norms = train(list(range(K)))
    for k in range(K):
        alone, alone_losses, alone_norms = train([k])
        assert [step[k] for step in losses] == [step[0] for step in alone_losses]
        assert [n[k] for n in norms] == [n[0] for n in alone_norms]
        for name, p in together.params.items():
            assert torch.equal(p[k], alone.params[name][0]), (k, name)
    assert len({together.params["head.bias"][k, 0].item() for k in range(K)}) == K  # the runs did differ


def test_head_squared_error_is_the_same_bits_as_linear_loss_terms_and_mean_per_run():
    """float32: HeadSquaredError gives exactly the losses and gradients of the path it
    replaced (Linear, Regression.loss_terms, mean_per_run: five autograd nodes), so the
    adding task's numbers are unchanged; float64: gradcheck of its hand-written backward."""
    k = build.kernels()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, 9, generator=g)
    w, b = torch.randn(3, 2, 9, generator=g), torch.randn(3, 2, generator=g)
    y = torch.randn(3, 50, 2, generator=g)
    weight = torch.tensor([1.0, 0.0, 1.0])  # a run that left weighs 0
    ours_in = [t.clone().requires_grad_() for t in (x, w, b)]
    ours = stacked.HeadSquaredError.apply(*ours_in, y.reshape(3, -1), k)
    ours.backward(weight)
    theirs_in = [t.clone().requires_grad_() for t in (x, w, b)]
    out = stacked.Linear.apply(*theirs_in, k)
    theirs = stacked.mean_per_run(Regression().loss_terms(out, y), k)
    theirs.backward(weight)
    assert torch.equal(ours, theirs)
    for a, t in zip(ours_in, theirs_in):
        assert torch.equal(a.grad, t.grad)
    doubles = [t.double().requires_grad_() for t in (x[:, :6], w, b)]
    assert torch.autograd.gradcheck(
        lambda x, w, b: stacked.HeadSquaredError.apply(x, w, b, y[:, :6].double().reshape(3, -1), k), doubles)


@pytest.mark.parametrize("case", [dict(head="last"), dict(head="each", bidirectional=True),
                                  dict(head="last", layers=2)],
                         ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("cell", FUSED)
def test_the_stacked_squared_error_equals_each_runs_models_loss(cell, case):
    K, O = 3, 2
    ms = models(cell, K, O=O, **case)
    stack = stacked.of_runs(ms, [cfg(k) for k in range(K)], [torch.Generator() for _ in range(K)])
    x = inputs(K, False)
    g = torch.Generator().manual_seed(1)
    y = torch.randn((K, 4, O) if case["head"] == "last" else (K, 4, 6, O), generator=g, dtype=torch.float64)
    _head_loss_is_each_runs_own(stack, ms, x, y, Regression())


def test_a_token_outside_the_vocabulary_stops_the_stacked_step_as_one_hot_did():
    ms = models("gru", 2, head="each", tokens=True, I=5, dtype=torch.float32)
    stack = stacked.of_runs(ms, [cfg(k) for k in range(2)], [torch.Generator() for _ in range(2)])
    x = inputs(2, True, I=5)
    for bad in (5, -1):
        x[1, 2, 3] = bad
        with pytest.raises(RuntimeError, match="out of bounds"):
            stack.head_loss(x, torch.zeros(2, 4, 6, dtype=torch.long), "cross_entropy")


def _head_loss_is_each_runs_own(stack, ms, x, y, objective):
    """The stacked head loss of K = 3 runs equals each run's own model loss, and its
    backward (run 2 weighted 0: a run that left) each run's own gradients (float64)."""
    losses = stack.head_loss(x, y, objective.head_loss)
    (losses * torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)).sum().backward()
    for k, m in enumerate(ms):
        theirs = objective.loss(m(x[k]), y[k])
        assert torch.allclose(losses[k], theirs, rtol=1e-13, atol=0)
        (theirs * (k + 1.0 if k < 2 else 0.0)).backward()
        for name, p in m.named_parameters():
            assert torch.allclose(stack.params[name].grad[k], p.grad, atol=1e-12, rtol=0), name
