"""grucli.train.stacked: the stacked training step of a pack on the fused kernels. Its forward
equals each run's SequenceModel (outputs and gradients, every cell family, head, depth and
direction), its optimiser step equals torch's optimisers and clip, each run's slice of a
stack equals the same run stacked alone bit for bit, and the cases it does not cover say why."""

from __future__ import annotations

import pytest
import torch

from grucli.train import stacked
from grucli.cells import CELLS
from grucli.cells.fused import build
from grucli.config import RunConfig
from grucli.model import SequenceModel
from grucli.objectives import Regression
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
