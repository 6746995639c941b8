"""How much does grucli's training loop add over a bare PyTorch loop? (issue 6 target: <= 3%)

Same model (train.build_model), data, optimiser, batch order and gradient clipping; the bare
loop drops everything grucli adds per step (loss.item() and the finite check, the callback,
bookkeeping). Both are timed per optimiser step in process CPU time (on shared cores wall time mostly
measures waiting), in alternating order, on 1 thread; reported: median per-step times.

    python benchmarks/loop_overhead.py [--impl fused] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from grucli import runtime
from grucli.config import RunConfig
from grucli.tasks import build_task
from grucli.train.optim import make_optimizer
from grucli.train.loop import Callback, build_model, forward, train_run


def config(impl: str, cell: str) -> RunConfig:
    return RunConfig(task={"name": "adding", "seq_len": 50, "n_train": 2048, "n_val": 256, "n_test": 256},
                     model={"cell": cell, "hidden_size": 64, "impl": impl},
                     train={"batch_size": 64, "epochs": 2, "threads": 1, "eval_batch_size": 256}, seed=0)


class StepClock(Callback):
    """Process CPU time at every optimiser step; the first step of each epoch is dropped
    (its interval holds the previous epoch's evaluation)."""

    def __init__(self, steps_per_epoch: int):
        self.spe, self.last, self.deltas = steps_per_epoch, None, []

    def tick(self, step: int) -> None:
        now = time.process_time()
        if self.last is not None and (step - 1) % self.spe != 0:
            self.deltas.append(now - self.last)
        self.last = now

    def on_step(self, step: int, loss: float) -> None:
        self.tick(step)


def grucli_loop(cfg: RunConfig) -> float:
    clock = StepClock(math.ceil(cfg.task.n_train / cfg.train.batch_size))
    clock.tick(0)
    r = train_run(cfg, callback=clock)
    assert r.status == "ok", r.error
    return statistics.median(clock.deltas)


def bare_loop(cfg: RunConfig) -> float:
    data = build_task(cfg.task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, data)
    opt = make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(cfg.seed)
    n, B, step = len(data.train), cfg.train.batch_size, 0
    clock = StepClock(math.ceil(n / B))
    clock.tick(0)
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, B):
            out, y = forward(model, data.train.take(perm[i:i + B]))
            loss = data.objective.loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            step += 1
            clock.tick(step)
    return statistics.median(clock.deltas)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", default="torch", help="model.impl (torch | fused | reference)")
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    runtime.configure(1, torch.device("cpu"))
    cfg = config(args.impl, args.cell)
    grucli_loop(cfg), bare_loop(cfg)  # warm-up (data cache, extension, allocator)
    g, b = [], []
    for i in range(args.repeats):  # alternate which loop goes first
        if i % 2:
            b.append(bare_loop(cfg))
            g.append(grucli_loop(cfg))
        else:
            g.append(grucli_loop(cfg))
            b.append(bare_loop(cfg))
    mg, mb = statistics.median(g), statistics.median(b)
    print(f"{args.cell}/{args.impl} H=64 T=50 B=64, {math.ceil(2048 / 64)} steps/epoch x 2 epochs, 1 thread, "
          f"{args.repeats} alternating repeats, CPU time")
    print(f"  grucli loop {1e3 * mg:.3f} ms/step   bare loop {1e3 * mb:.3f} ms/step   "
          f"overhead {100 * (mg / mb - 1):+.1f}%  (per-repeat ratios: "
          f"{', '.join(f'{x / y:.3f}' for x, y in zip(g, b))})")


if __name__ == "__main__":
    main()
