"""A grid's time budget: where each process's seconds go (GRUCLI_PROFILE=<folder>).

Off by default, and then nothing here runs: no timer sits in the training loop. When a
process is asked to profile (benchmarks/grid_profile.py sets GRUCLI_PROFILE and calls
`install()` in the driver; a pool worker calls `install_if_asked()` once as it starts),
`install()` wraps the functions of the grucli modules already imported with timed regions
(REGIONS) and switches on the fused kernels' product counters (products.h: seconds and
FLOPs of every matrix product). Regions nest: each records its exclusive seconds (its own
minus its sub-regions'), and the product seconds and FLOPs that ran in it, under its path
("pack/loop/forward/recurrent"). A worker writes its totals to <folder>/<role>-<pid>.json
after every pack; the driver after the command. Wrapping changes no number: the wrapped
functions run as before (tests/test_profiling.py compares a profiled run with one alone).

`budget(folder, wall, slots)` turns the files into the shares of the grid's wall time x
slots (BUCKETS), the pure part that grid_profile.py prints."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ENV = "GRUCLI_PROFILE"

# (module, attribute path, region name). A module not imported in this process is skipped.
REGIONS = [
    ("grucli.execute.worker", "train", "pack"),
    ("grucli.execute.local", "train", "pack"),
    ("grucli.experiment", "prepare", "prepare"),
    ("grucli.tune.run", "prepare", "prepare"),
    ("grucli.train.loop", "build_task", "data"),
    ("grucli.train.loop", "_fitting", "fitting"),
    ("grucli.train.loop", "_Member.__init__", "model"),
    ("grucli.train.loop", "_Pack.fit", "loop"),
    ("grucli.train.loop", "_Member.take", "batch"),
    ("grucli.train.loop", "_Member.evaluate", "evaluate"),
    ("grucli.train.loop", "_Member.finish", "finish"),
    ("grucli.train.steppers", "StackedSteps.forward", "forward"),
    ("grucli.train.steppers", "StackedSteps.update", "backward"),
    ("grucli.train.steppers", "RunByRun.forward", "forward"),
    ("grucli.train.steppers", "RunByRun.update", "backward"),
    ("grucli.train.stacked", "Stacked.step", "optimiser"),
    ("grucli.train.stacked", "Linear.forward", "output"),
    ("grucli.train.stacked", "Linear.backward", "output"),
    ("grucli.train.stacked", "HeadCrossEntropy.forward", "output"),  # the output layer with its loss
    ("grucli.train.stacked", "HeadCrossEntropy.backward", "output"),
    ("grucli.train.stacked", "HeadSquaredError.forward", "output"),
    ("grucli.train.stacked", "HeadSquaredError.backward", "output"),
    ("grucli.train.stacked", "_MeanPerRun.forward", "loss"),
    ("grucli.train.stacked", "_MeanPerRun.backward", "loss"),
    ("grucli.cells.fused", "GRULayer.forward", "recurrent"),
    ("grucli.cells.fused", "GRULayer.backward", "recurrent"),
    ("grucli.cells.fused", "LSTMLayer.forward", "recurrent"),
    ("grucli.cells.fused", "LSTMLayer.backward", "recurrent"),
    ("grucli.cells.fused", "RNNLayer.forward", "recurrent"),
    ("grucli.cells.fused", "RNNLayer.backward", "recurrent"),
    ("grucli.tune.study", "_Pruning.on_epoch", "tuner"),
    ("grucli.tune.study", "_Pruning.stop_reason", "tuner"),
    ("grucli.execute.local", "Pool.__init__", "pool_open"),
    ("grucli.execute.local", "Pool.close", "pool_close"),
]
MARKS = {"pool_open", "pool_close"}  # regions whose start time is kept (the pool's lifetime)


class Recorder:
    """Nested regions of one process: exclusive seconds, product seconds and FLOPs per path."""

    def __init__(self, products=None):
        self.products = products  # () -> (seconds, flops) of the kernels' products so far, or None
        self.stack: list[list] = []  # [name, t0, child_s, p0, child_p, f0, child_f, c0, child_c]
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)  # this thread's CPU seconds (no waiting for a core)
        self.product_s: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.marks: dict[str, list[float]] = defaultdict(list)  # name -> epoch seconds of each start
        self.packs: list[tuple[float, float]] = []  # (start, end) epoch seconds of each pack
        self.patched: list[tuple] = []  # (owner, attribute, original) of each wrapped function

    def _counters(self) -> tuple[float, float]:
        return self.products() if self.products else (0.0, 0.0)

    def enter(self, name: str) -> None:
        if name in MARKS:
            self.marks[name].append(time.time())
        if name == "pack" and not self.stack:
            self.packs.append((time.time(), float("nan")))
        p0, f0 = self._counters()
        self.stack.append([name, time.perf_counter(), 0.0, p0, 0.0, f0, 0.0, time.thread_time(), 0.0])

    def leave(self) -> None:
        name, t0, child_s, p0, child_p, f0, child_f, c0, child_c = self.stack.pop()
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        p1, f1 = self._counters()
        path = "/".join([f[0] for f in self.stack] + [name])
        self.seconds[path] += dt - child_s
        self.cpu[path] += dc - child_c
        self.product_s[path] += (p1 - p0) - child_p
        self.flops[path] += (f1 - f0) - child_f
        self.calls[path] += 1
        if self.stack:
            parent = self.stack[-1]
            parent[2] += dt
            parent[4] += p1 - p0
            parent[6] += f1 - f0
            parent[8] += dc
        elif name == "pack":
            self.packs[-1] = (self.packs[-1][0], time.time())

    def region(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        timed.__grucli_profiled__ = fn
        return timed

    def totals(self) -> dict:
        return {"cpu_s": time.process_time(), "seconds": dict(self.seconds), "cpu": dict(self.cpu),
                "product_s": dict(self.product_s), "flops": dict(self.flops), "calls": dict(self.calls),
                "marks": dict(self.marks), "packs": self.packs}


RECORDER: Recorder | None = None


def _kernel_products():
    """The fused kernels' product counters, switched on; None where the kernels are not built."""
    from grucli.cells.fused import build

    k = build.kernels()
    if k is None:
        return None
    k.product_profile(True)
    counters = lambda: k.product_profile(True)  # noqa: E731
    counters.kernels = k
    return counters


def install(role: str = "driver") -> Recorder:
    """Wrap REGIONS in the grucli modules imported so far (once per process) and start counting."""
    global RECORDER
    if RECORDER is not None:
        return RECORDER
    import grucli.cells.fused  # noqa: F401  (loaded when the first model is built: wrap it now)

    RECORDER = rec = Recorder(_kernel_products())
    rec.role, rec.started, rec.cpu_at_start = role, time.time(), time.process_time()
    _wrap_loaded(rec)
    return rec


def _wrap_loaded(rec: Recorder) -> None:
    """Wrap the REGIONS of the modules imported so far that are not wrapped yet (a worker
    imports the tuner's module when it unpickles its first pack: wrapped then)."""
    for module, attr, name in REGIONS:
        mod = sys.modules.get(module)
        if mod is None:
            continue
        *owners, last = attr.split(".")
        owner = mod
        for o in owners:
            owner = getattr(owner, o)
        raw = owner.__dict__[last] if isinstance(owner, type) else getattr(owner, last)
        fn = raw.__func__ if isinstance(raw, staticmethod) else raw
        if hasattr(fn, "__grucli_profiled__"):
            continue
        timed = rec.region(name, fn)
        setattr(owner, last, staticmethod(timed) if isinstance(raw, staticmethod) else timed)
        rec.patched.append((owner, last, raw))


def uninstall() -> None:
    """Put every wrapped function back and switch the product counters off (tests)."""
    global RECORDER
    if RECORDER is None:
        return
    for owner, attr, raw in reversed(RECORDER.patched):
        setattr(owner, attr, raw)
    if RECORDER.products is not None:
        RECORDER.products.kernels.product_profile(False)
    RECORDER = None


def install_if_asked(role: str = "worker") -> None:
    """In a process that may be profiled (a pool worker as it starts): install when GRUCLI_PROFILE is set."""
    if os.environ.get(ENV):
        install(role)
        _dump_after_packs()


def _dump_after_packs() -> None:
    """A worker is ended by its pool without running exit handlers: write after every pack."""
    rec = RECORDER
    for module in ("grucli.execute.worker", "grucli.execute.local"):
        mod = sys.modules.get(module)
        if mod is None or not hasattr(mod, "train"):
            continue
        inner = mod.train

        @functools.wraps(inner)
        def train_and_dump(*args, _inner=inner, **kwargs):
            _wrap_loaded(rec)
            try:
                return _inner(*args, **kwargs)
            finally:
                if not rec.stack:
                    dump()

        train_and_dump.__grucli_profiled__ = inner
        mod.train = train_and_dump
        rec.patched.append((mod, "train", inner))


def dump(folder: str | Path | None = None) -> Path | None:
    """Write this process's totals to <folder>/<role>-<pid>.json (atomically)."""
    folder = folder or os.environ.get(ENV)
    if RECORDER is None or not folder:
        return None
    path = Path(folder) / f"{RECORDER.role}-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"role": RECORDER.role, "pid": os.getpid(), "started": RECORDER.started,
                               "cpu_at_start": RECORDER.cpu_at_start,
                               **RECORDER.totals()}))
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- the budget
BUCKETS = [
    ("start-up and imports", "process start to the command's first line, and each worker's start to its first pack"),
    ("data building", "the task's data (driver's check and each pack's build) and each batch's gather"),
    ("recurrent products", "the fused layers' matrix products in training (forward + backward)"),
    ("recurrent gate arithmetic", "the rest of the fused layers' calls in training (gates, copies)"),
    ("output layer and loss", "head, loss, autograd's own work between the kernels"),
    ("optimiser", "clip and step (step.cpp)"),
    ("evaluation", "validation each epoch, final metrics, latency and memory measurements"),
    ("tuner", "a trial's report to the study and the pruner's question, each epoch (tune.db)"),
    ("training loop", "the workers' Python around the steps: the loop, callbacks, building models, pack overhead"),
    ("driver and writing", "the driver process: planning, progress, writing results, the table"),
    ("idle workers", "a slot with no pack to train (the grid's tail, a worker starting late)"),
]


def _bucket(path: str) -> str:
    parts = path.split("/")
    last = parts[-1]
    if last == "tuner":
        return "tuner"
    if "evaluate" in parts or "finish" in parts:
        return "evaluation"
    if last in ("data", "batch", "prepare"):
        return "data building"
    if last == "recurrent":
        return "recurrent"  # split into products and gate arithmetic by the caller
    if last in ("output", "loss", "forward", "backward"):
        return "output layer and loss"
    if last == "optimiser":
        return "optimiser"
    return "training loop"


def budget(folder: str | Path, wall: float, slots: int, launched: float) -> dict:
    """Shares of wall x slots from the <role>-<pid>.json files of one profiled command that
    started (epoch seconds) at `launched` and took `wall` seconds with `slots` workers.

    Per slot, the timeline is: the driver's start-up (launch to its first line: every slot
    waits), the driver's own work outside a pool (data preparation, planning, writing), and
    for each pool of workers its lifetime, split per worker into start-up (the pool opened
    to its first pack), packs (split by regions) and idle (the rest; a slot with no worker
    file is idle throughout). The driver's CPU seconds (which share the cores with the
    workers) are reported apart, as are each worker's. FLOPs: the recurrent products the
    kernels counted in training (forward, backward) and in evaluation."""
    files = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    driver = next(f for f in files if f["role"] == "driver")
    workers = [f for f in files if f["role"] == "worker"]
    out, flops, cpu = defaultdict(float), defaultdict(float), defaultdict(float)

    def add_regions(f) -> float:
        """Adds a process's regions to the wall buckets (and their CPU seconds to cpu); returns their wall seconds."""
        total = 0.0
        for path, s in f["seconds"].items():
            parts = path.split("/")
            if parts[0] in MARKS:
                continue
            b, c = _bucket(path), f["cpu"].get(path, 0.0)
            if parts[-1] == "recurrent":
                in_eval = "evaluate" in parts or "finish" in parts
                p = f["product_s"].get(path, 0.0)
                if in_eval:
                    out["evaluation"] += s
                    cpu["evaluation"] += c
                else:  # products' CPU: their wall seconds at the region's CPU/wall rate
                    out["recurrent products"] += p
                    out["recurrent gate arithmetic"] += s - p
                    cpu["recurrent products"] += p * c / s if s else 0.0
                    cpu["recurrent gate arithmetic"] += c - (p * c / s if s else 0.0)
                kind = "evaluation" if in_eval else ("backward" if "backward" in parts else "forward")
                flops[kind] += f["flops"].get(path, 0.0)
            else:
                out[b] += s
                cpu[b] += c
            total += s
        return total

    end = launched + wall
    out["start-up and imports"] += slots * (driver["started"] - launched)
    opens, closes = driver["marks"].get("pool_open", []), driver["marks"].get("pool_close", [])
    pools = list(zip(opens, closes + [end] * (len(opens) - len(closes))))
    outside = (end - driver["started"]) - sum(b - a for a, b in pools)
    cpu["start-up and imports"] += driver["cpu_at_start"]
    if workers:  # the driver's regions outside the pools: prepare (the data, once per task)
        prepared = driver["seconds"].get("prepare", 0.0)
        out["data building"] += slots * prepared
        out["driver and writing"] += slots * (outside - prepared)
        cpu["data building"] += driver["cpu"].get("prepare", 0.0)
        cpu["driver and writing"] += driver["cpu_s"] - driver["cpu_at_start"] - driver["cpu"].get("prepare", 0.0)
    else:  # inline: the driver trained
        out["driver and writing"] += slots * outside - add_regions(driver)
        cpu["driver and writing"] += driver["cpu_s"] - driver["cpu_at_start"] - sum(
            c for p, c in driver["cpu"].items() if p.split("/")[0] not in MARKS)
    for a, b in pools:
        mine = [w for w in workers if w["packs"] and a <= w["packs"][0][0] <= b]
        for w in mine:
            first = w["packs"][0][0]
            out["start-up and imports"] += first - a
            out["idle workers"] += (b - first) - add_regions(w)
        out["idle workers"] += max(0, slots - len(mine)) * (b - a)
    for w in workers:  # a worker's CPU outside its packs (start-up after the fork, the queue)
        cpu["training loop"] += w["cpu_s"] - sum(w["cpu"].values())
    detail = defaultdict(lambda: [0.0, 0.0, 0])  # path -> [wall, cpu, calls] over the processes that trained
    for f in workers or [driver]:
        for path, sec in f["seconds"].items():
            d = detail[path]
            d[0] += sec
            d[1] += f["cpu"].get(path, 0.0)
            d[2] += f["calls"].get(path, 0)
    return {"capacity_s": wall * slots, "seconds": {name: out.get(name, 0.0) for name, _ in BUCKETS},
            "cpu": {name: cpu.get(name, 0.0) for name, _ in BUCKETS if name != "idle workers"},
            "flops": dict(flops), "driver_cpu_s": driver.get("cpu_s"), "pools": len(pools),
            "workers": len(workers), "detail": {p: tuple(v) for p, v in detail.items()},
            "worker_cpu_s": sum(w.get("cpu_s", 0.0) for w in workers),
            "worker_busy_s": sum(sum(w["seconds"].values()) for w in workers)}
