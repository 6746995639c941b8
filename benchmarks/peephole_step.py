"""One training step of lstm_peephole on the fused kernels against its reference path, and
against the fused plain LSTM, at the polyphonic claim's sizes (experiments/claims/polyphonic.yaml:
88 keys in and out, a per-step head, about 20k parameters, batch 8; T steps per sequence).

    PYTHONPATH=. python benchmarks/peephole_step.py    # from the checkout root: T=100, 1 thread, 7 rounds
    PYTHONPATH=. python benchmarks/peephole_step.py --rounds 21 --steps 10

A step: forward, the per-key BCE loss, backward, RMSProp (the claim's optimiser), through each
model's own torch optimiser (the same for every variant; packs step through step.cpp instead).
The variants run interleaved, round after round, so that a loaded machine slows them alike:
quote the ratios (medians over rounds), not the times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from grucli.model import SequenceModel, hidden_for_budget

VARIANTS = [("lstm_peephole", "fused"), ("lstm_peephole", "reference"), ("lstm", "fused")]


def step_time(model, opt, x, y, steps: int) -> float:
    """Seconds per training step, over `steps` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=100, help="steps per sequence")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--budget", type=int, default=20000, help="parameters per model (model.param_budget)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="training steps per variant and round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keys = 88
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.batch, args.T, keys, generator=g) < 0.05).float()  # piano-roll-like inputs
    y = (torch.rand(args.batch, args.T, keys, generator=g) < 0.05).float()
    runs = {}
    for cell, impl in VARIANTS:
        H = hidden_for_budget(args.budget, cell, input_size=keys, output_size=keys)
        torch.manual_seed(0)
        model = SequenceModel(cell, input_size=keys, output_size=keys, hidden_size=H, head="each", impl=impl)
        assert model.impl == impl, (cell, impl, model.impl)
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
        step_time(model, opt, x, y, 1)  # warm up (first backward imports, kernel load)
        runs[(cell, impl)] = (model, opt, H)
    times = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v in VARIANTS:
            model, opt, _ = runs[v]
            times[v].append(step_time(model, opt, x, y, args.steps))
    med = {v: statistics.median(t) for v, t in times.items()}
    print(f"T={args.T} batch={args.batch} budget={args.budget} threads={args.threads} rounds={args.rounds}x{args.steps} "
          f"steps; hidden: " + ", ".join(f"{c}={runs[(c, i)][2]}" for c, i in VARIANTS if i == "fused"))
    per_round = lambda a, b: [u / w for u, w in zip(times[a], times[b])]  # noqa: E731
    for name, num, den in [("reference / fused lstm_peephole", VARIANTS[1], VARIANTS[0]),
                           ("fused lstm_peephole / fused lstm", VARIANTS[0], VARIANTS[2])]:
        r = per_round(num, den)
        print(f"{name}: {med[num] / med[den]:.2f}x (per round {min(r):.2f}-{max(r):.2f})")


if __name__ == "__main__":
    main()
