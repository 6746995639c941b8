"""One stacked training step of the demo's tasks, timed: the work between the kernels.

    python benchmarks/stacked_step.py                                  # this checkout: ms a step per cell and T
    python benchmarks/stacked_step.py --task copy adding --against /work/main   # two checkouts, interleaved
    python benchmarks/stacked_step.py --profile --cell gru --seq-len 10  # torch.profiler's table of one case

Each case is a pack of 3 seeds of the demo's runs (`experiments/long_dependency.yaml`; copy:
copy_len 5, 4 symbols, seq_len 5 / 10 / 20, lr 1e-2; adding: seq_len 10 / 30 / 60, lr 5e-3;
param budget 5000, batch 50) on the fused kernels, stepped through the real stepper
(grucli.train.steppers.StackedSteps: the stacked forward and loss, one backward, the
optimiser) on fixed batches, on one thread, timed in CPU seconds. `--against ROOT` keeps
one process per checkout (ROOT's grucli and this one's) and, case by case, has them take
`--repeats` slices of the steps in turn (which goes first alternates), so both see the
same load: on a loaded machine only these side-by-side ratios say anything.
"""

from __future__ import annotations

import argparse
import statistics
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


def stepper(cell: str, T: int, task: str = "copy", K: int = 3):
    """step(j): one stacked training step (forward, backward, optimiser) of K seeds of the
    demo's run (task, cell, T) on its j-th batch, through the real stepper."""
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

    def step(j):
        steps_.forward(pack, runs, train, (j * 50) % len(train), 50)
        steps_.update(runs)

    for j in range(5):  # warm-up
        step(j)
    return step


def seconds_per_step(step, steps: int) -> float:
    t0 = time.process_time()
    for j in range(steps):
        step(j)
    return (time.process_time() - t0) / steps


def profile(step, steps: int, stack: int) -> None:
    from torch.profiler import ProfilerActivity, profile as prof

    with prof(activities=[ProfilerActivity.CPU], with_stack=bool(stack)) as p:
        for j in range(steps):
            step(j)
    print(p.key_averages(group_by_stack_n=stack).table(sort_by="self_cpu_time_total", row_limit=40))


def serve() -> None:
    """A child of --against: builds each case once, then answers "task cell T steps" lines
    with the CPU ms per step of that many steps."""
    built = {}
    print("ready", flush=True)
    for line in sys.stdin:
        task, cell, T, steps = line.split()
        key = (task, cell, int(T))
        if key not in built:
            built[key] = stepper(cell, int(T), task)
        print(1e3 * seconds_per_step(built[key], int(steps)), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150, help="timed steps per case")
    ap.add_argument("--cell", nargs="+", default=list(CELLS), help="cells (default: rnn gru lstm)")
    ap.add_argument("--task", nargs="+", default=["copy"], choices=list(TASKS), help="the demo's tasks (default copy)")
    ap.add_argument("--seq-len", nargs="+", type=int,
                    help="seq_len (default: the demo's, copy 5 10 20, adding 10 30 60)")
    ap.add_argument("--against", help="another checkout's root: both timed, alternated, in fresh processes")
    ap.add_argument("--repeats", type=int, default=6,
                    help="with --against: slices of --steps, the checkouts alternating")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's table of the first case")
    ap.add_argument("--stack", type=int, default=0, help="with --profile: group by this many Python frames")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # a child of --against
    args = ap.parse_args()
    todo = [(task, cell, T) for task in args.task for cell, T in cases(args.seq_len or SEQ_LENS[task], args.cell)]
    if args.serve:
        return serve()
    if args.profile:
        task, cell, T = todo[0]
        return profile(stepper(cell, T, task), args.steps, args.stack)
    if not args.against:
        for task, cell, T in todo:
            ms = 1e3 * seconds_per_step(stepper(cell, T, task), args.steps)
            print(f"{task} {cell} T={T}: {ms:7.3f} ms/step (CPU)")
        return
    roots = {"other": os.path.abspath(args.against), "this": str(Path(__file__).resolve().parents[1])}
    children = {}
    for name, root in roots.items():
        children[name] = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"], cwd=root,
                                          env={**os.environ, "STACKED_STEP_ROOT": root}, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
        assert children[name].stdout.readline().strip() == "ready"

    def ask(name, case, steps):
        child = children[name]
        child.stdin.write(f"{case[0]} {case[1]} {case[2]} {steps}\n")
        child.stdin.flush()
        return float(child.stdout.readline())

    slice_ = max(1, args.steps // args.repeats)
    print(f"CPU ms per stacked step, other = {roots['other']}, this = {roots['this']}; {args.repeats} slices of "
          f"{slice_} steps each, the two alternating (which first alternates); ratio = this / other per slice")
    print(f"{'case':18s} {'other':>7s} {'this':>7s}   ratio: median (range)")
    medians = []
    for case in todo:
        for name in children:  # build and warm up both before timing
            ask(name, case, 1)
        ratios, got = [], {"other": [], "this": []}
        for r in range(args.repeats):
            pair = {}
            for name in (["other", "this"] if r % 2 == 0 else ["this", "other"]):
                pair[name] = ask(name, case, slice_)
                got[name].append(pair[name])
            ratios.append(pair["this"] / pair["other"])
        med = statistics.median(ratios)
        medians.append(med)
        print(f"{case[0]} {case[1]} T={case[2]:<4d}".ljust(18) + f" {statistics.median(got['other']):7.3f} "
              f"{statistics.median(got['this']):7.3f}   {med:.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    for child in children.values():
        child.stdin.close()
        child.wait()
    print(f"median ratio over the cases: {statistics.median(medians):.3f} "
          f"(cases {min(medians):.3f}-{max(medians):.3f})")


if __name__ == "__main__":
    main()
