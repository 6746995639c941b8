"""How much packing could ever win here: the same runs trained alone and packed, in this
process on one thread, with the time spent inside the recurrent kernels measured in both.

    python benchmarks/pack_bound.py                     # 8 trials of the --tune search (adding T=30, H=32)
    python benchmarks/pack_bound.py --cell lstm
    python benchmarks/pack_bound.py experiments/long_dependency.yaml --set seeds=8 --first 8

A pack shares what runs around the kernels (autograd engine calls, clipping, the optimiser
step, Python, data preparation) but every run keeps its own kernels: that is what keeps its
arithmetic, and so its numbers, its own. So no packing can make K runs faster than K runs'
kernel time, and `alone wall / alone kernel time` bounds its speedup. The kernel time is
the wall time inside the fused kernels' calls (forward and backward, training and
evaluation), timed around each call. Needs the fused kernels (a cell with model.impl fused
or auto).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import grucli.cells.fused as fused
from grucli import grid
from grucli.train import loop as train
from grucli.config import load_experiment
from grucli.train import packing

SEARCH = """
name: pack_bound
task: {{name: adding, seq_len: 30, n_train: 2000, n_val: 500, n_test: 500}}
model: {{cell: {cell}, hidden_size: 32}}
train: {{epochs: 5, batch_size: 50}}
grid:
  train.lr: [1.0e-4, 2.0e-4, 5.0e-4, 1.0e-3, 2.0e-3, 5.0e-3, 1.0e-2, 3.0e-2]
"""


RECURRENT = ("gru_", "lstm_", "rnn_")  # the layers' kernels (the output layer and optimiser calls are not timed)


class Timed:
    """The kernel module with every call of a recurrent layer's kernel timed (seconds summed
    in `.seconds`)."""

    def __init__(self, module):
        self._module, self.seconds, self.calls = module, 0.0, 0

    def __getattr__(self, name):
        fn = getattr(self._module, name)
        if not name.startswith(RECURRENT):
            return fn

        def timed(*args):
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        return timed


def measure(label: str, action) -> tuple[float, float]:
    """(wall seconds, seconds inside the kernels) of action()."""
    timed = Timed(fused.kernels())
    real = fused.kernels
    fused.kernels = lambda: timed  # what FusedLayers asks for when a model is built
    try:
        t0 = time.perf_counter()
        action()
        wall = time.perf_counter() - t0
    finally:
        fused.kernels = real
    print(f"{label:>7}: {wall:.2f} s, of which {timed.seconds:.2f} s inside the recurrent kernels "
          f"({timed.seconds / wall:.0%}, {timed.calls} calls)", flush=True)
    return wall, timed.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="?", help="an experiment file (default: the lr search of batched_grid --tune)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override a key (repeatable)")
    ap.add_argument("--cell", default="gru", help="the search's cell (default gru; without an experiment file)")
    ap.add_argument("--first", type=int, default=8, help="pack the first N runs of one shape (default 8)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.experiment) if args.experiment else Path(tmp) / "search.yaml"
        if not args.experiment:
            path.write_text(SEARCH.format(cell=args.cell))
        runs = grid.expand(load_experiment(path, args.overrides))
    cfgs = [r.config for r in packing.packs(runs, args.first)[0]]
    if fused.kernels() is None:
        raise SystemExit("the fused kernels are unavailable here: nothing to measure")
    m = cfgs[0].model
    print(f"{len(cfgs)} runs of one shape: {m.cell}, hidden {m.hidden_size or m.param_budget}, "
          f"task {cfgs[0].task.name}, {cfgs[0].train.epochs} epochs; 1 thread, this process")
    train.train_pack(cfgs[:1])  # warm-up: kernels loaded, data cached, allocator primed
    alone, kernel_alone = measure("alone", lambda: [train.train_run(c) for c in cfgs])
    packed, _ = measure("packed", lambda: train.train_pack(cfgs))
    print(f"packed/alone runs per minute: {alone / packed:.2f}")
    print(f"bound: runs keep their own kernels, so packing wins at most alone / kernel time = "
          f"{alone / kernel_alone:.2f}x")


if __name__ == "__main__":
    main()
