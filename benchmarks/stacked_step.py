"""One stacked training step of the demo's copy task, timed: the work between the kernels.

    python benchmarks/stacked_step.py                              # this checkout: ms a step per cell and T
    python benchmarks/stacked_step.py --against /work/main --repeats 3   # two checkouts, alternated
    python benchmarks/stacked_step.py --profile                    # torch.profiler's table of one case
    python benchmarks/stacked_step.py --task adding copy           # the demo's other task too

Each case is a pack of 3 seeds of the demo's copy runs (`experiments/long_dependency.yaml`:
copy_len 5, 4 symbols, seq_len 5 / 10 / 20, param budget 5000, batch 50, lr 1e-2; with
`--task adding`, its adding runs, seq_len 10 / 30 / 60, lr 5e-3) on the
fused kernels, stepped through the real stepper (grucli.train.steppers.StackedSteps: the
stacked forward, the objective's losses, one backward, the optimiser) on fixed batches,
on one thread. `--against ROOT` runs this same script in a fresh process from each checkout
in turn (ROOT's grucli and this one's, which first alternating, `--repeats` rounds) and prints each case's
ms per step and the ratio this / ROOT in the same round: on a loaded machine only the
ratios measured side by side say anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

# the grucli of this checkout (or of the one --against names, in its child), not the installed one
sys.path.insert(0, os.environ.get("STACKED_STEP_ROOT") or str(Path(__file__).resolve().parents[1]))

CELLS, SEQ_LENS = ("rnn", "gru", "lstm"), {"copy": (5, 10, 20), "adding": (10, 30, 60)}
TASKS = {"copy": ({"name": "copy", "copy_len": 5, "n_symbols": 4}, 1e-2),  # the demo's tasks, their lr
         "adding": ({"name": "adding"}, 5e-3)}


def cases(seq_lens, cells=CELLS):
    return [(cell, T) for T in seq_lens for cell in cells]


def time_steps(cell: str, T: int, steps: int, K: int = 3, profile: bool = False, stack: int = 0,
               task: str = "copy") -> float:
    """Seconds per stacked step of K seeds of the demo's run (task, cell, T)."""
    import torch

    from grucli.config import RunConfig
    from grucli.model import build
    from grucli.tasks import build_task
    from grucli.train import steppers

    torch.set_num_threads(1)
    knobs, lr = TASKS[task]
    cfgs = [RunConfig(task={**knobs, "seq_len": T, "n_train": 400, "n_val": 50, "n_test": 50},
                      model={"cell": cell, "param_budget": 5000, "impl": "fused"},
                      train={"lr": lr, "batch_size": 50, "epochs": 1}, seed=s) for s in range(K)]
    data = build_task(cfgs[0].task)
    runs = []
    for i, c in enumerate(cfgs):
        torch.manual_seed(c.seed)
        model = build(c, data)
        run = SimpleNamespace(index=i, cfg=c, model=model, rng=(torch.get_rng_state(),), done=False, loss=None,
                              take=lambda train, j, b: train.take(slice(j, j + b)))
        run.record = lambda loss, value=None, run=run: setattr(run, "loss", loss)
        runs.append(run)
    steps_ = steppers.choose(runs, data, torch.device("cpu"))
    assert steps_.kind == "stacked", steps_.why
    pack = SimpleNamespace(data=data, guard=lambda rs, action: action() or True)
    train = data.train
    n = len(train)

    def step(j):
        steps_.forward(pack, runs, train, (j * 50) % n, 50)
        steps_.update(runs)

    for j in range(5):  # warm-up
        step(j)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        with prof(activities=[ProfilerActivity.CPU], with_stack=bool(stack)) as p:
            for j in range(steps):
                step(j)
        print(p.key_averages(group_by_stack_n=stack).table(sort_by="self_cpu_time_total", row_limit=40))
    t0 = time.process_time()
    for j in range(steps):
        step(j)
    return (time.process_time() - t0) / steps


def measure(args) -> dict:
    return {f"{task} {cell} T={T}": 1e3 * time_steps(cell, T, args.steps, task=task)
            for task in args.task for cell, T in cases(args.seq_len or SEQ_LENS[task], args.cell)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150, help="timed steps per case")
    ap.add_argument("--cell", nargs="+", default=list(CELLS), help="cells (default: rnn gru lstm)")
    ap.add_argument("--task", nargs="+", default=["copy"], choices=list(TASKS), help="the demo's tasks (default copy)")
    ap.add_argument("--seq-len", nargs="+", type=int,
                    help="seq_len (default: the demo's, copy 5 10 20, adding 10 30 60)")
    ap.add_argument("--against", help="another checkout's root: both timed, alternated, in fresh processes")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of the two checkouts with --against")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's table of the first case")
    ap.add_argument("--stack", type=int, default=0, help="with --profile: group by this many Python frames")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's answer
    args = ap.parse_args()
    if args.profile:
        cell, T = cases(args.seq_len or SEQ_LENS[args.task[0]], args.cell)[0]
        time_steps(cell, T, args.steps, profile=True, stack=args.stack, task=args.task[0])
        return
    if not args.against:
        result = measure(args)
        if args.json:
            print(json.dumps(result))
        else:
            for name, ms in result.items():
                print(f"{name:18s} {ms:7.3f} ms/step (CPU)")
        return
    here = str(Path(__file__).resolve().parents[1])
    roots = {"other": os.path.abspath(args.against), "this": here}
    child = [sys.executable, str(Path(__file__).resolve()), "--json", "--steps", str(args.steps),
             "--cell", *args.cell, "--task", *args.task]
    if args.seq_len:
        child += ["--seq-len", *map(str, args.seq_len)]
    rounds = []
    for r in range(args.repeats):
        got = {}
        for name, root in sorted(roots.items(), reverse=r % 2 == 1):  # who goes first alternates
            env = {**os.environ, "STACKED_STEP_ROOT": root}
            out = subprocess.run(child, cwd=root, env=env, capture_output=True, text=True, check=True).stdout
            got[name] = json.loads(out.strip().splitlines()[-1])
        rounds.append(got)
    print(f"ms per stacked step (CPU), other = {roots['other']}, this = {roots['this']}")
    print(f"{'case':18s} " + "  ".join(f"other{r} this{r} ratio{r}" for r in range(args.repeats)))
    ratios = []
    for case in rounds[0]["this"]:
        cells = []
        for got in rounds:
            a, b = got["other"][case], got["this"][case]
            ratios.append(b / a)
            cells.append(f"{a:6.3f} {b:5.3f} {b / a:6.3f}")
        print(f"{case:18s} " + "  ".join(cells))
    print(f"this / other over all cases and rounds: {min(ratios):.3f}-{max(ratios):.3f}, "
          f"mean {sum(ratios) / len(ratios):.3f}")


if __name__ == "__main__":
    main()
