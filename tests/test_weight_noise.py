"""train.weight_noise (Graves 2011; Chung et al. 2014 trained with it): off by default and
then the run id and the numbers are those of the code before it existed; on, the gradient
is taken at noisy weights, the clean weights step, and the run is reproducible alone or in
a pack."""

from __future__ import annotations

import pytest
import torch

from grucli.config import parse_run
from grucli.grid import run_id
from grucli.train.loop import train_pack, train_run

# A tiny run and what the code before weight_noise (commit e13dfd0) gave for it on this
# machine's build: the run id, the test MSE and the last epoch's training loss.
BEFORE = {"torch": ("e8f84efa1755", 0.20622623778565996, 0.3297254107892513),
          "fused": ("d8c995a83f27", 0.20622532952611516, 0.3297245092689991)}


def _cfg(impl: str = "torch", seed: int = 1, **train):
    return parse_run({"task": {"name": "adding", "seq_len": 12, "n_train": 64, "n_val": 32, "n_test": 32},
                      "model": {"cell": "gru", "hidden_size": 4, "impl": impl},
                      "train": {"lr": 0.01, "epochs": 2, "batch_size": 16, "threads": 1, **train}, "seed": seed}, "x")


@pytest.mark.parametrize("impl", ["torch", "fused"])
def test_weight_noise_off_is_the_code_before_it(impl):
    rid, mse, loss = BEFORE[impl]
    assert run_id(_cfg(impl)) == run_id(_cfg(impl, weight_noise=0.0)) == rid
    r = train_run(_cfg(impl, weight_noise=0.0))
    assert (r.test["mse"], r.history[-1]["train_loss"]) == (mse, loss)  # bit for bit
    assert r.timing["step"] == ("stacked" if impl == "fused" else "per-run")


def test_weight_noise_changes_the_numbers_reproducibly():
    plain = train_run(_cfg())
    a, b = train_run(_cfg(weight_noise=0.05)), train_run(_cfg(weight_noise=0.05))
    assert run_id(_cfg(weight_noise=0.05)) != run_id(_cfg())
    assert a.test == b.test and a.test != plain.test
    assert a.timing["step"] == "per-run" and a.timing["step_why"] == "weight noise trains run by run"


@pytest.mark.parametrize("impl", ["torch", "fused"])
def test_the_noise_is_taken_off_before_the_step(impl):
    """With a learning rate too small to move a weight, a run with weight noise ends with
    exactly its initial weights, as the run without noise does."""
    noisy = train_run(_cfg(impl, weight_noise=0.5, lr=1e-30, optimizer="sgd"))
    plain = train_run(_cfg(impl, lr=1e-30, optimizer="sgd"))
    assert all(torch.equal(noisy.state_dict[k], plain.state_dict[k]) for k in plain.state_dict)
    assert noisy.history[0]["train_loss"] != plain.history[0]["train_loss"]  # the forward did see the noise


def test_a_noisy_run_in_a_pack_has_its_numbers_alone():
    cfgs = [_cfg(seed=s, weight_noise=0.05) for s in (1, 2)]
    packed = train_pack(cfgs)
    for cfg, r in zip(cfgs, packed):
        alone = train_run(cfg)
        assert r.test == alone.test and r.history[-1]["train_loss"] == alone.history[-1]["train_loss"]


def test_negative_noise_is_refused():
    with pytest.raises(Exception, match="weight_noise"):
        _cfg(weight_noise=-0.1)
