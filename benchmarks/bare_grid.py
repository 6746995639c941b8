"""The bare-PyTorch anchor: what a careful user would write instead of grucli for a grid,
and grucli's wall time over it, paired in one invocation.

    python benchmarks/bare_grid.py                          # the demo (54 runs): grucli / anchor, 1 pair
    python benchmarks/bare_grid.py --repeats 3 --simd avx2,native   # both kernel builds, interleaved
    python benchmarks/bare_grid.py --set task.n_train=1000  # a reduced demo (the same runs, 1/4 the steps)
    python benchmarks/bare_grid.py --anchor-only            # just the anchor (what a user would run)

The anchor trains the same runs as `grucli compare FILE` (grucli's grid expansion gives
each run's cell, hidden size from the parameter budget, task data, epochs, lr, batch size,
clip and seed): torch's nn.RNN / nn.GRU / nn.LSTM (batch_first) and an nn.Linear head,
one-hot inputs for token tasks, MSE on the last step or cross-entropy per step (ignoring
unscored steps), Adam and gradient-norm clipping as grucli's defaults, a fresh batch order
per epoch, a validation pass per epoch (no_grad, eval mode, in batches of the run's
eval_batch_size), the best epoch's weights kept and scored on the test split. The runs
go to a process pool of --jobs processes (fork) with 1 torch thread each, one run per
task in grid order; each worker builds a task's data once.

Each variant runs as its own command in a fresh process (start-up included in both), in
an order rotated every repeat. Printed: each wall time, and grucli's over the anchor's of
the same repeat (median and range).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's grucli, not an installed one

from grid_profile import fmt_range, grid_arguments  # noqa: E402  (one range form and one set of grid arguments)
_DATA: dict = {}


def _init() -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _data(task):
    key = task.model_dump_json()
    if key not in _DATA:
        from grucli.tasks import build_task

        _DATA[key] = build_task(task)
    return _DATA[key]


def train_one(spec: dict) -> dict:
    """One run, plain PyTorch: returns its best validation and final test metric."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from grucli.config import parse_run

    t0 = time.perf_counter()
    cfg = parse_run(spec["config"], "anchor")
    d = _data(cfg.task)
    H, I, O, tok = spec["hidden"], d.input_size, d.output_size, d.tokens
    torch.manual_seed(cfg.seed)
    rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cfg.model.cell](I, H, batch_first=True)
    head = nn.Linear(H, O)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.train.lr)
    per_step = d.head != "last"

    def model(x):
        if tok:
            x = F.one_hot(x, I).float()
        out, _ = rnn(x)  # (B, T, H)
        return head(out if per_step else out[:, -1])

    def loss_of(out, y):
        if per_step:
            return F.cross_entropy(out.reshape(-1, O), y.reshape(-1), ignore_index=-100)
        return F.mse_loss(out, y)

    @torch.no_grad()
    def score(split) -> float:
        rnn.eval()
        out = torch.cat([model(split.x[i:i + cfg.train.eval_batch_size])
                         for i in range(0, len(split.x), cfg.train.eval_batch_size)])
        rnn.train()
        if per_step:
            keep = split.score_mask.reshape(-1) if split.score_mask is not None else split.y.reshape(-1) >= 0
            return float((out.reshape(-1, O).argmax(-1)[keep] == split.y.reshape(-1)[keep]).float().mean())
        return float(F.mse_loss(out, split.y))

    gen = torch.Generator().manual_seed(cfg.seed)
    B, n = cfg.train.batch_size, len(d.train.x)
    best, best_state = None, None
    better = (lambda a, b: a > b) if per_step else (lambda a, b: a < b)
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, B):
            idx = perm[i:i + B]
            opt.zero_grad(set_to_none=True)
            loss = loss_of(model(d.train.x[idx]), d.train.y[idx])
            loss.backward()
            if cfg.train.grad_clip:
                nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            opt.step()
        v = score(d.val)
        if best is None or better(v, best):
            best, best_state = v, copy.deepcopy((rnn.state_dict(), head.state_dict()))
    rnn.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    return {"cell": cfg.model.cell, "task": f"{cfg.task.name} T={cfg.task.seq_len}", "val": best,
            "test": score(d.test), "seconds": time.perf_counter() - t0}


def anchor(path: str, overrides: list[str], jobs: int) -> list[dict]:
    """The whole grid the bare way; returns each run's numbers."""
    from grucli import config, grid, model
    from grucli.tasks import build_task

    runs = grid.expand(config.load_experiment(path, overrides))
    specs = []
    for r in runs:  # the hidden size grucli's param_budget gives (the same model sizes)
        hidden, _ = model.model_size(r.config, build_task(r.config.task))
        specs.append({"config": r.config.model_dump(mode="json"), "hidden": hidden})
    with mp.get_context("fork").Pool(jobs, initializer=_init) as pool:
        return list(pool.imap(train_one, specs, chunksize=1))


def timed(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = grid_arguments(__doc__)
    ap.add_argument("--simd", default="native", help="grucli's kernel builds to pair, e.g. avx2,native")
    ap.add_argument("--anchor-only", action="store_true", help="run the anchor once, print its runs' numbers")
    args = ap.parse_args()
    if args.anchor_only:
        t0 = time.perf_counter()
        rows = anchor(args.experiment, args.overrides, args.jobs)
        for row in rows:
            print(f"{row['task']:<14} {row['cell']:<5} val {row['val']:.4g} test {row['test']:.4g} "
                  f"{row['seconds']:.1f} s")
        print(f"anchor: {len(rows)} runs in {time.perf_counter() - t0:.1f} s")
        return
    import tempfile

    sets = [a for o in args.overrides for a in ("--set", o)]
    builds = [s.strip() for s in args.simd.split(",") if s.strip()]
    walls: dict[str, list[float]] = {b: [] for b in [*builds, "anchor"]}
    with tempfile.TemporaryDirectory(prefix="bare_grid-") as tmp:
        for r in range(args.repeats):
            order = [*builds, "anchor"]
            order = order[r % len(order):] + order[:r % len(order)]  # rotated: none always first
            for what in order:
                env = dict(os.environ)
                env.pop("GRUCLI_SIMD", None)
                if what == "anchor":
                    argv = [sys.executable, __file__, args.experiment, "--anchor-only", "--jobs", str(args.jobs), *sets]
                else:
                    if what != "native":
                        env["GRUCLI_SIMD"] = what
                    argv = [sys.executable, "-m", "grucli", "compare", args.experiment, "--results",
                            f"{tmp}/{what}-{r}", "--jobs", str(args.jobs), "--threads", "1", *sets]
                walls[what].append(timed(argv, env))
                print(f"repeat {r + 1}: {what:>7} {walls[what][-1]:.1f} s", flush=True)
    print(f"\nanchor (bare PyTorch, pool of {args.jobs}, 1 thread each): {fmt_range(walls['anchor'])} s")
    for b in builds:
        ratios = [g / a for g, a in zip(walls[b], walls["anchor"])]
        print(f"grucli ({b} kernels): {fmt_range(walls[b])} s; grucli / anchor, paired per repeat: {fmt_range(ratios, digits=2)}")


if __name__ == "__main__":
    main()
