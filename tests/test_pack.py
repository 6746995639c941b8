"""Packed training (train.loop.train_pack, train.packing): runs of one shape trained together give
every run exactly the numbers it gets alone; which runs pack together; packs in the driver,
resumed after a kill mid-pack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
import yaml
from typer.testing import CliRunner

from grucli import execute
from grucli.cli import app
from grucli.config import RunConfig, load_experiment
from grucli.train import packing
from grucli.grid import expand
from grucli.tasks import build_task
from grucli.train.optim import clip_grad_norms
from grucli.train.loop import build_model, train_pack, train_run

runner = CliRunner()
TASK = {"name": "adding", "seq_len": 8, "n_train": 96, "n_val": 32, "n_test": 32}


def cfg(seed=0, impl="fused", cell="gru", dropout=0.0, layers=1, **train) -> RunConfig:
    return RunConfig(task=TASK, model={"cell": cell, "hidden_size": 6, "impl": impl, "num_layers": layers,
                                       "dropout": dropout},
                     train={"epochs": 4, "batch_size": 32, "lr": 5e-3, "threads": 1, **train}, seed=seed)


def numbers(r) -> tuple:
    """Everything a run records except times: status, why it stopped, history, metrics, weights."""
    history = [{k: v for k, v in row.items() if not k.endswith("time_s")} for row in r.history]
    weights = None if r.state_dict is None else {k: v.numpy().tobytes() for k, v in r.state_dict.items()}
    return (r.status, r.error, r.stopped_by, history, r.val, r.test, r.train, weights, r.timing.get("steps"),
            r.params, r.still_improving)


def mixed_pack(impl: str, cell: str = "gru") -> list[RunConfig]:
    """Seeds, learning rates, weight decay, clip, dropout; one run that diverges, one that stops early."""
    layers = 2  # so dropout (between layers) draws masks
    return [cfg(0, impl, cell, layers=layers), cfg(1, impl, cell, layers=layers),
            cfg(2, impl, cell, layers=layers, lr=2e-2, weight_decay=0.01),
            cfg(3, impl, cell, dropout=0.3, layers=layers, grad_clip=0.05),
            cfg(4, impl, cell, layers=layers, lr=1e30, grad_clip=None),  # diverges
            cfg(5, impl, cell, layers=layers, lr=5.0, early_stopping=1)]  # stops early


@pytest.mark.parametrize("impl,cell", [("fused", "gru"), ("fused", "lstm"), ("fused", "lstm_peephole"),
                                       ("torch", "gru"), ("reference", "rnn")])
def test_each_packed_run_equals_the_same_run_alone(impl, cell):
    cfgs = mixed_pack(impl, cell)
    finished = []
    packed = train_pack(cfgs, on_result=lambda i, r: finished.append(i))
    alone = [train_run(c) for c in cfgs]
    assert [numbers(p) for p in packed] == [numbers(a) for a in alone]
    statuses = [p.status for p in packed]
    assert statuses[4] == "diverged" and packed[4].history == []
    assert packed[5].stopped_by == "early_stopping" and len(packed[5].history) < 4
    assert all(p.status == "ok" and p.stopped_by == "epochs" for p in packed[:4])
    # runs that left early were handed on first, while the rest still trained
    assert finished[:2] == [4, 5] and sorted(finished) == list(range(6))
    assert {p.timing["pack_size"] for p in packed} == {6} and {a.timing["pack_size"] for a in alone} == {1}
    # one measured time for the pack's runs (one pack id); each run alone was measured apart
    ids = {p.timing["pack_id"] for p in packed}
    assert len(ids) == 1 and len({a.timing["pack_id"] for a in alone} - ids) == 6
    from grucli.cells.fused import build

    stackable = impl == "fused" and build.kernels().own_products()  # (a build without SIMD steps run by run)
    way = "stacked" if stackable else "per-run"  # fused runs train stacked, alone too (a pack of one)
    assert {r.timing["step"] for r in packed + alone} == {way}
    # the pack's runs do not all train alike: otherwise the test above would prove little
    assert len({json.dumps(p.test) for p in packed[:4]}) == 4


@pytest.mark.parametrize("task", [{"name": "copy", "seq_len": 5, "copy_len": 3, "n_symbols": 4},
                                  {"name": "temporal_order", "seq_len": 12}])
def test_packed_equals_alone_where_the_loss_is_per_run(task):
    """Classification losses are not a mean of elementwise terms: the stacked step computes
    them on each run's slice (adding, above, computes every run's loss at once)."""
    base = {**task, "n_train": 96, "n_val": 32, "n_test": 32}
    cfgs = [RunConfig(task=base, model={"cell": "gru", "hidden_size": 6, "impl": "fused"},
                      train={"epochs": 3, "batch_size": 32, "lr": lr, "threads": 1}, seed=s)
            for s, lr in [(0, 5e-3), (1, 2e-2), (2, 5e-3)]]
    from grucli.cells.fused import build

    packed = train_pack(cfgs)
    assert [numbers(p) for p in packed] == [numbers(train_run(c)) for c in cfgs]
    assert len({json.dumps(p.test) for p in packed}) == 3
    assert {p.timing["step"] for p in packed} == {"stacked" if build.kernels().own_products() else "per-run"}


def test_a_run_that_fails_in_a_pack_is_recorded_and_the_others_go_on(monkeypatch):
    import grucli.train.loop as train_mod

    real = train_mod.build_model

    def build(c, data):
        if c.seed == 1:
            raise RuntimeError("weights exploded")
        return real(c, data)

    monkeypatch.setattr(train_mod, "build_model", build)
    cfgs = [cfg(0), cfg(1), cfg(2)]
    packed = train_pack(cfgs)
    assert packed[1].status == "failed" and "weights exploded" in packed[1].error and "Traceback" in packed[1].traceback
    monkeypatch.setattr(train_mod, "build_model", real)
    assert numbers(packed[0]) == numbers(train_run(cfgs[0])) and numbers(packed[2]) == numbers(train_run(cfgs[2]))


class _FailsInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("gradient exploded")


@pytest.mark.parametrize("impl", ["fused", "torch"])
def test_an_error_in_the_shared_backward_fails_the_runs_stepping_and_is_recorded(monkeypatch, impl):
    # the runs' graphs are traversed by one backward, so an error there is every stepping
    # run's: they are recorded failed with it (not raised), and a run that left before keeps
    # its own result. fused: the stacked step (one graph for all); torch: run by run.
    import grucli.train.stacked as stacked_mod
    import grucli.train.loop as train_mod

    real_build, real_forward, real_stacked = train_mod.build_model, train_mod.forward, stacked_mod.Stacked.features
    doomed, calls = set(), {}

    def build(c, data):
        model = real_build(c, data)
        if c.seed == 1:
            doomed.add(id(model))
        return model

    def forward(model, batch):
        out, y = real_forward(model, batch)
        if id(model) in doomed and torch.is_grad_enabled():
            calls[id(model)] = calls.get(id(model), 0) + 1
            if calls[id(model)] == 5:  # in the second epoch (3 steps per epoch)
                out = _FailsInBackward.apply(out)
        return out, y

    def stacked_features(self, x):  # what the output layer reads, whichever loss follows
        out = real_stacked(self, x)
        calls["stacked"] = calls.get("stacked", 0) + 1
        return _FailsInBackward.apply(out) if calls["stacked"] == 5 else out

    monkeypatch.setattr(train_mod, "build_model", build)
    monkeypatch.setattr(train_mod, "forward", forward)
    monkeypatch.setattr(stacked_mod.Stacked, "features", stacked_features)
    cfgs = [cfg(0, impl), cfg(1, impl), cfg(2, impl, grad_clip=0.05), cfg(3, impl, lr=1e30, grad_clip=None)]
    packed = train_pack(cfgs)
    assert [p.status for p in packed] == ["failed", "failed", "failed", "diverged"]
    assert all("gradient exploded" in p.error and len(p.history) == 1 for p in packed[:3])
    monkeypatch.undo()
    assert numbers(packed[3]) == numbers(train_run(cfgs[3]))


def test_runs_of_different_shapes_never_share_a_pack():
    with pytest.raises(ValueError, match="differ"):
        train_pack([cfg(0), cfg(1, cell="lstm")])


def test_clip_of_several_runs_is_torchs_clip_of_each():
    gen = torch.Generator().manual_seed(0)
    runs = [[torch.nn.Parameter(torch.zeros(s)) for s in shapes] for shapes in ([(3, 4), (4,)], [(5,)], [(2, 2), (7,)])]
    for scale, ps in zip((10.0, 0.01, 3.0), runs):
        for p in ps:
            p.grad = scale * torch.randn(p.shape, generator=gen)
    mine = [[p.grad.clone() for p in ps] for ps in runs]
    before = [[g.clone() for g in gs] for gs in mine]
    clips = [1.0, 1.0, 0.5]
    for ps, c in zip(runs, clips):
        torch.nn.utils.clip_grad_norm_(ps, c)
    theirs = [[p.grad for p in ps] for ps in runs]
    as_params = [[SimpleNamespace(grad=g) for g in gs] for gs in mine]
    clip_grad_norms(as_params, clips)
    for a, b in zip(mine, theirs):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    assert not torch.equal(mine[0][0], before[0][0]) and torch.equal(mine[1][0], before[1][0])  # clipped / not


# --------------------------------------------------------------------------- which runs pack together
def test_the_pack_key_ignores_only_what_a_pack_lets_each_run_keep():
    base = packing.key(cfg(0))
    same = [cfg(7), cfg(0, lr=0.1), cfg(0, weight_decay=0.1), cfg(0, grad_clip=None), cfg(0, dropout=0.2),
            cfg(0, early_stopping=3), cfg(0, stop_at_target=True)]
    assert all(packing.key(c) == base for c in same)
    different = [cfg(0, cell="lstm"), cfg(0, impl="torch"), cfg(0, layers=2), cfg(0, batch_size=16), cfg(0, epochs=5),
                 cfg(0, max_steps=3), cfg(0, optimizer="sgd"), cfg(0, momentum=0.5), cfg(0, threads=2),
                 RunConfig(task={**TASK, "seq_len": 9}, model={"cell": "gru", "hidden_size": 6, "impl": "fused"},
                           train={"epochs": 4, "batch_size": 32, "lr": 5e-3, "threads": 1})]
    assert all(packing.key(c) != base for c in different)


def runs_of(cfgs):
    return [SimpleNamespace(config=c) for c in cfgs]


def test_take_packs_same_key_runs_in_queue_order_and_leaves_the_rest():
    queue = runs_of([cfg(0), cfg(0, cell="lstm"), cfg(1), cfg(2), cfg(1, cell="lstm"), cfg(3), cfg(4)])
    first = packing.take(queue, 3)  # 5 gru runs in packs of at most 3: 3 now, 2 later (not 3 + 2 by luck: equal)
    assert [r.config.seed for r in first] == [0, 1, 2] and all(r.config.model.cell == "gru" for r in first)
    assert [(r.config.model.cell, r.config.seed) for r in queue] == [("lstm", 0), ("lstm", 1), ("gru", 3), ("gru", 4)]
    assert [len(p) for p in packing.packs(queue, 3)] == [2, 2]


def test_a_shape_is_cut_into_equal_packs_so_no_worker_idles():
    eight = runs_of([cfg(s) for s in range(8)])
    assert [len(p) for p in packing.packs(eight, 7)] == [4, 4]  # not 7 + 1
    assert packing.size(None, eight, jobs=2) == 4
    assert [len(p) for p in packing.packs(runs_of([cfg(s) for s in range(6)]), 4)] == [3, 3]


def test_auto_pack_size_keeps_every_worker_busy_and_leaves_large_models_alone():
    demo = runs_of([cfg(s, cell=c) for c in ("rnn", "gru", "lstm") for s in range(3)])
    assert packing.size(None, demo, jobs=2) == 3  # a setting's 3 seeds: one pack (measured 1.08-1.17x)
    assert packing.size(None, demo[:3], jobs=2) == 1  # 3 runs, 2 workers: packs of 2 are below MIN_AUTO
    assert packing.size(None, demo * 2, jobs=2) == 6  # 6 of each shape: one pack each
    trials = runs_of([cfg(0, lr=10 ** -(1 + i / 8)) for i in range(24)])
    assert packing.size(None, trials, jobs=2) == packing.MAX_AUTO
    assert packing.size(None, runs_of([cfg(0), cfg(1)]), jobs=2) == 1  # two runs, two workers: one each
    big = runs_of([RunConfig(task=TASK, model={"cell": "gru", "hidden_size": 256}, seed=s) for s in range(8)])
    assert packing.size(None, big, jobs=1) == 1
    assert packing.size(4, big, jobs=1) == 4  # asked for: done


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_pack_option_is_one_line(tmp_path, value):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "task": TASK, "model": {"cell": "gru", "hidden_size": 4}}))
    out = runner.invoke(app, ["compare", str(path), "--pack", value, "--results", str(tmp_path / "r")])
    assert out.exit_code == 2 and "--pack" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- packs in the driver
GRID = {"name": "packed", "task": TASK, "model": {"cell": "gru", "hidden_size": 6, "impl": "fused"},
        "train": {"epochs": 3, "batch_size": 32, "lr": 5e-3, "threads": 1},
        "grid": {"model.cell": ["gru", "lstm"], "train.lr": [5e-3, 2e-2]}, "seeds": 2}


def stored(exp_dir):
    out = {}
    for s in exp_dir.glob("*/summary.json"):
        d = json.loads(s.read_text())
        hist = (s.parent / "history.csv").read_text().splitlines()
        out[d["run_id"]] = (d["status"], d["test"], d["val"], d["stopped_by"], len(hist))
    return out


@pytest.mark.parametrize("executor,jobs", [("inline", 1), ("local", 2), ("ray", 2)])
def test_a_packed_grid_stores_what_the_unpacked_grid_stores(tmp_path, executor, jobs):
    if executor == "ray":
        pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(GRID))
    runs = expand(load_experiment(path))
    execute.run_grid(runs, tmp_path / "alone", "packed", executor="inline", pack=1, threads=1)
    execute.run_grid(runs, tmp_path / "packed", "packed", executor=executor, jobs=jobs, pack=4, threads=1)
    alone, packed = stored(tmp_path / "alone"), stored(tmp_path / "packed")
    assert len(alone) == 8 and alone == packed
    sizes = {json.loads(s.read_text())["timing"]["pack_size"] for s in (tmp_path / "packed").glob("*/summary.json")}
    assert sizes == {4}  # one cell's 2 learning rates x 2 seeds per pack


def test_killed_mid_pack_keeps_the_runs_that_finished_and_resumes_the_rest(tmp_path):
    """A pack of 4 on the pool: one run diverges at once and is stored while the others
    train; kill -9 the whole tree; the same command trains only the missing runs, and the
    metrics equal an unpacked grid's."""
    spec = {**GRID, "train": {**GRID["train"], "epochs": 400}, "grid": {"train.lr": [5e-3, 1e30]},
            "model": {**GRID["model"], "cell": "gru"}}
    spec["train"]["grad_clip"] = None
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(spec))
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "grucli", "compare", str(path), "--jobs", "2", "--pack", "4", "--results", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    exp_dir = killed / "packed"
    deadline = time.time() + 240
    while time.time() < deadline:
        if len(list(exp_dir.glob("*/summary.json"))) >= 2:  # the two diverged runs, stored mid-pack
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = stored(exp_dir)
    assert sorted(s[0] for s in first.values()) == ["diverged", "diverged"], "only the runs that left the pack"
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "2 already finished" in resumed.stdout
    after = stored(exp_dir)
    assert len(after) == 4 and {k: after[k] for k in first} == first
    runs = expand(load_experiment(path))
    execute.run_grid(runs, tmp_path / "alone", "packed", executor="inline", pack=1, threads=1)
    assert stored(tmp_path / "alone") == after


def test_pack_bound_times_the_kernels_of_both_variants(tmp_path):
    # benchmarks/pack_bound.py: the bound is only meaningful if the kernel calls are really
    # timed (a refactor that bypassed its proxy would report 0 s and an infinite bound)
    exp = tmp_path / "tiny.yaml"
    exp.write_text(yaml.safe_dump({"name": "tiny", "task": TASK, "model": {"cell": "gru", "hidden_size": 6},
                                   "train": {"epochs": 2, "batch_size": 32, "threads": 1}, "seeds": 3}))
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "pack_bound.py")
    done = subprocess.run([sys.executable, script, str(exp), "--first", "3"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3 runs of one shape: gru")
    for label in ("alone", "packed"):
        line = next(ln for ln in lines if ln.strip().startswith(label + ":"))
        share = float(line.split("(")[1].split("%")[0])
        calls = int(line.split(", ")[-1].split()[0])
        assert 0 < share < 100 and calls > 0
    bound = float(lines[-1].rsplit("= ", 1)[1].rstrip("x"))
    assert bound > 1


def test_fit_keeps_every_cores_packs_within_the_memory_share():
    gib = 2**30
    assert packing.fit(8, 10 * 2**20, 16 * gib, 2) == 8  # 10 MB runs: all 8 fit easily
    assert packing.fit(8, 1 * gib, 16 * gib, 2) == 4  # 0.5 * 16 GiB / 2 cores = 4 GiB: 4 runs
    assert packing.fit(8, 5 * gib, 16 * gib, 2) == 1  # not even one fits: it still trains, alone
    assert packing.fit(8, 1 * gib, None, 2) == 8  # memory unknown: as asked


def test_a_pack_too_big_for_memory_trains_in_smaller_packs_with_the_same_numbers(monkeypatch):
    import grucli.train.memory as memory_mod

    cfgs = [cfg(s, grad_clip=0.05 if s % 2 else None) for s in range(5)]
    # memory for two such runs per core: the pack of 5 trains as 2 + 2 + 1
    seen = {}

    def available():
        return seen["two"]

    real = packing.fit

    def spy(k, run_bytes, avail, cores):
        seen["run_bytes"] = run_bytes
        return real(k, run_bytes, avail, cores)

    seen["two"] = None
    monkeypatch.setattr(packing, "fit", spy)
    train_pack(cfgs[:2])  # learns one run's bytes
    run_bytes = seen["run_bytes"]
    params = sum(p.numel() for p in build_model(cfgs[0], build_task(cfgs[0].task)).parameters())
    assert run_bytes > 4 * 4 * params  # weights, gradients, two Adam moments (float32) and activations
    seen["two"] = int(2 * run_bytes * os.cpu_count() / packing.MEMORY_SHARE) + 1
    monkeypatch.setattr(memory_mod, "available_bytes", available)
    monkeypatch.setattr("grucli.runtime.usable_cores", lambda: os.cpu_count())
    packed = train_pack(cfgs)
    assert [p.timing["pack_size"] for p in packed] == [2, 2, 2, 2, 1]
    ids = [p.timing["pack_id"] for p in packed]  # trained one after another: three packs, three times
    assert ids[0] == ids[1] and ids[2] == ids[3] and len(set(ids)) == 3
    assert [numbers(p) for p in packed] == [numbers(train_run(c)) for c in cfgs]


def test_compare_says_how_it_packs(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({**GRID, "grid": {"train.lr": [5e-3, 2e-2]}, "train": {**GRID["train"], "epochs": 1}}))
    out = runner.invoke(app, ["compare", str(path), "--jobs", "1", "--pack", "4", "--results", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert "4 runs, 0 already finished, 4 to run (local, 1 worker, packs of up to 4 runs of one shape)" in out.output
    alone = runner.invoke(app, ["compare", str(path), "--jobs", "1", "--pack", "1", "--results", str(tmp_path / "s")])
    assert "4 to run (local, 1 worker)" in alone.output


def test_the_reader_finds_the_packs_of_runs_written_before_pack_ids(tmp_path):
    """Summaries of an older grucli have pack_size but no pack_id: the runs of one pack share
    each step's time to the last bit, so their first epochs took the very same time."""
    from grucli import store
    from grucli.grid import Run, run_id
    from grucli.store import reader

    cfgs = [cfg(s) for s in range(4)]
    results = [*train_pack(cfgs[:2]), *train_pack(cfgs[2:]), train_run(cfg(9))]
    for i, (c, r) in enumerate(zip([*cfgs, cfg(9)], results)):
        run_dir = store.write_run(tmp_path, Run(i + 1, c, {}, run_id(c)), r, "old")
        summary = json.loads((run_dir / "summary.json").read_text())
        for key in ("pack_id", "first_epoch_time_s", "epoch_time_steady"):
            del summary["timing"][key]
        (run_dir / "summary.json").write_text(json.dumps(summary))
    runs = reader.collect([tmp_path], histories=False).runs.set_index("seed")
    ids = runs["timing.pack_id"]
    assert ids[0] == ids[1] and ids[2] == ids[3] and len({ids[0], ids[2], ids[9]}) == 3
    assert ids[9] == run_id(cfg(9))  # trained alone: its own
