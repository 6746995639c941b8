"""grucli.profiling: a profiled run trains the same numbers; the regions and the kernels'
product counters see the work; the budget accounts for every slot-second."""

from __future__ import annotations

import json

import pytest

from grucli import profiling
from grucli.cells.fused import build
from grucli.train.loop import train_pack


def _numbers(results):
    return [(r.status, r.val, r.test, [{k: v for k, v in row.items() if not k.endswith("time_s")} for row in r.history])
            for r in results]


@pytest.fixture
def kernels():
    if build.compiler() is None:
        pytest.skip("no C++ compiler: the fused kernels cannot be built")
    assert build.kernels() is not None, build.unavailable_reason()


def test_a_profiled_pack_trains_the_same_numbers_and_is_seen(kernels, tiny_run, tmp_path, monkeypatch):
    cfgs = [tiny_run(seed=s, model={"cell": "gru", "impl": "fused"}, train={"epochs": 2}) for s in (0, 1)]
    alone = _numbers(train_pack(cfgs))
    monkeypatch.setenv(profiling.ENV, str(tmp_path))
    rec = profiling.install("worker")
    try:
        profiled = _numbers(train_pack(cfgs))
        path = profiling.dump()
    finally:
        profiling.uninstall()
    assert profiled == alone
    seen = json.loads(path.read_text())
    paths = set(seen["seconds"])
    assert any(p.endswith("forward/recurrent") for p in paths) and any(p.endswith("backward/recurrent") for p in paths)
    assert any("evaluate" in p and p.endswith("recurrent") for p in paths)
    fwd = sum(f for p, f in seen["flops"].items() if p.endswith("forward/recurrent"))
    assert fwd > 0 and sum(seen["product_s"].values()) > 0
    # off again: the functions are the originals and the counters stand still
    import grucli.cells.fused as fused

    assert not hasattr(fused.GRULayer.__dict__["forward"].__func__, "__grucli_profiled__")
    k = build.kernels()
    before = k.product_profile(False)
    train_pack(cfgs[:1])
    assert k.product_profile(False) == before
    assert rec is not None


def _file(folder, role, pid, started, seconds, cpu=None, packs=(), marks=None, flops=None, product_s=None):
    data = {"role": role, "pid": pid, "started": started, "cpu_at_start": 1.0, "cpu_s": 10.0,
            "seconds": seconds, "cpu": cpu or {k: v / 2 for k, v in seconds.items()}, "product_s": product_s or {},
            "flops": flops or {}, "calls": {k: 1 for k in seconds}, "marks": marks or {}, "packs": list(packs)}
    (folder / f"{role}-{pid}.json").write_text(json.dumps(data))


def test_the_budget_accounts_for_every_slot_second(tmp_path):
    # launched at 0, wall 100 s, 2 slots; driver ready at 5, prepares 3 s, pool 10..90
    _file(tmp_path, "driver", 1, 5.0, {"prepare": 3.0, "pool_open": 0.1, "pool_close": 0.2},
          marks={"pool_open": [10.0], "pool_close": [90.0]})
    # one worker starts its first pack at 14 and is busy 60 s; the other slot never gets a worker
    rec = "pack/loop/forward/recurrent"
    _file(tmp_path, "worker", 2, 12.0, {"pack": 2.0, "pack/loop": 8.0, "pack/loop/forward": 10.0, rec: 30.0,
                                        "pack/loop/evaluate": 6.0, "pack/loop/evaluate/recurrent": 4.0},
          packs=[(14.0, 80.0)], product_s={rec: 20.0, "pack/loop/evaluate/recurrent": 3.0},
          flops={rec: 1e12, "pack/loop/evaluate/recurrent": 1e11})
    b = profiling.budget(tmp_path, wall=100.0, slots=2, launched=0.0)
    s = b["seconds"]
    assert sum(s.values()) == pytest.approx(200.0)
    assert s["start-up and imports"] == pytest.approx(2 * 5 + 4)
    assert s["recurrent products"] == pytest.approx(20.0) and s["recurrent gate arithmetic"] == pytest.approx(10.0)
    assert s["idle workers"] == pytest.approx((90 - 14 - 60) + 80)  # the worker's tail, and the empty slot
    assert s["data building"] == pytest.approx(2 * 3)
    assert s["driver and writing"] == pytest.approx(2 * (100 - 5 - 80 - 3))
    assert s["evaluation"] == pytest.approx(10.0)
    assert b["flops"] == {"forward": 1e12, "evaluation": 1e11}
