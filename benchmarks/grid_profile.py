"""Where a grid's wall time goes: a time budget of `grucli compare` (or `grucli tune`).

    python benchmarks/grid_profile.py                                  # the demo grid, --jobs 2
    python benchmarks/grid_profile.py --set task.n_train=1000          # a reduced demo (same runs, 1/4 the steps)
    python benchmarks/grid_profile.py --tune                           # a 24-trial lr search (adding T=30, H=32)
    python benchmarks/grid_profile.py --repeats 3 --overhead           # ranges; and the same command unprofiled

Each repeat runs the real command (`grucli compare FILE` / `grucli tune FILE`) in a fresh
process with GRUCLI_PROFILE set (grucli/profiling.py): the driver and every pool worker
time their regions and the fused kernels count their products' seconds and FLOPs. The
grid's wall time x its slots (--jobs) is then split into start-up and imports, data,
recurrent products, the rest of the recurrent kernels (gate arithmetic), output layer and
loss, optimiser, evaluation, the driver and writing, and idle workers (grucli.profiling.BUCKETS),
printed as shares (the range over repeats), beside the grid's recurrent-product FLOPs and
the time they would take at this machine's matmul peak on `--jobs` cores (the limit).

--overhead interleaves an unprofiled run of the same command with each profiled one and
prints profiled/unprofiled wall time, and whether both wrote the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's grucli, not an installed one


def inner(argv: list[str]) -> None:
    """The profiled command itself (a fresh process): imports, install, the CLI, dump."""
    from grucli import profiling
    from grucli.cli import app
    import grucli.execute.local  # noqa: F401  (the pool's open and close are marked)
    import grucli.train.loop  # noqa: F401  (its regions are wrapped before a run trains in this process)

    profiling.install("driver")
    try:
        app(argv, standalone_mode=False)
    finally:
        profiling.dump()


def one(command: list[str], results: Path, profile: Path | None) -> float:
    env = dict(os.environ)
    env.pop("GRUCLI_PROFILE", None)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        env["GRUCLI_PROFILE"] = str(profile)
    argv = [*command, "--results", str(results), "--jobs", str(ARGS.jobs), "--threads", "1"]
    t0 = time.time()
    if profile is not None:
        done = subprocess.run([sys.executable, __file__, "--inner", *argv], env=env, cwd=ROOT,
                              capture_output=True, text=True)
    else:
        done = subprocess.run([sys.executable, "-m", "grucli", *argv], env=env, cwd=ROOT, capture_output=True,
                              text=True)
    wall = time.time() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return t0, wall


def grid_arguments(doc: str) -> argparse.ArgumentParser:
    """The arguments the grid benchmarks share (this one and bare_grid.py): the experiment
    (default: the demo), --set overrides, --jobs, --repeats."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="?", default=str(ROOT / "experiments" / "long_dependency.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override a key (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    return ap


def fmt_range(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = [x * scale for x in values]
    mid = statistics.median(v)
    return f"{mid:.{digits}f}" if len(v) == 1 else f"{mid:.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def main() -> None:
    global ARGS
    if sys.argv[1:2] == ["--inner"]:
        return inner(sys.argv[2:])
    ap = grid_arguments(__doc__)
    ap.add_argument("--tune", action="store_true", help="profile a learning-rate search instead of a grid")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=5, help="epochs per trial (--tune)")
    ap.add_argument("--overhead", action="store_true", help="also run unprofiled, interleaved; compare")
    ap.add_argument("--json", type=Path, help="write every repeat's budget here")
    ARGS = args = ap.parse_args()

    import torch

    from grucli import bench, profiling

    torch.set_num_threads(1)
    peaks = [bench.matmul_peak_gflops()]
    budgets, walls, plain, same = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="grid_profile-") as tmp:
        tmp = Path(tmp)
        if args.tune:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from batched_grid import SEARCH  # the same learning-rate study batched_grid packs

            spec = tmp / "search.yaml"
            spec.write_text(SEARCH.format(trials=args.trials, epochs=args.epochs))
            command = ["tune", str(spec)]
        else:
            command = ["compare", args.experiment]
        for o in args.overrides:
            command += ["--set", o]
        for r in range(args.repeats):
            order = ["profiled", "plain"] if args.overhead else ["profiled"]
            if r % 2:
                order.reverse()  # interleaved: neither always runs first
            folders = {}
            for what in order:
                results = tmp / f"{what}-{r}"
                prof = tmp / f"profile-{r}" if what == "profiled" else None
                launched, wall = one(command, results, prof)
                folders[what] = results
                if what == "profiled":
                    walls.append(wall)
                    budgets.append(profiling.budget(prof, wall, args.jobs, launched))
                else:
                    plain.append(wall)
                print(f"repeat {r + 1}: {what} {wall:.1f} s", flush=True)
            if args.overhead:
                sys.path.insert(0, str(ROOT / "benchmarks"))
                from batched_grid import numbers

                a, b = ([numbers(d) for d in sorted(p.iterdir()) if d.is_dir()] for p in folders.values())
                same.append(a == b and len(a) > 0)
        peaks.append(bench.matmul_peak_gflops())
    peak = max(peaks)
    report(budgets, walls, peak, args.jobs)
    if args.overhead:
        ratios = [p / q for p, q in zip(walls, plain)]
        print(f"profiled / unprofiled wall time: {fmt_range(ratios, digits=2)}; "
              f"same numbers: {'yes' if all(same) else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps({"walls": walls, "budgets": budgets, "peak_gflops": peak, "plain": plain}))


def report(budgets: list[dict], walls: list[float], peak: float, slots: int) -> None:
    from grucli.profiling import BUCKETS

    print(f"\nwall time {fmt_range(walls)} s x {slots} slots; shares of wall x slots "
          f"(median{' and range' if len(walls) > 1 else ''} over {len(walls)} repeat(s)):\n")
    print(f"{'component':<27} {'slot-seconds':>19} {'% of wall x slots':>19} {'CPU seconds':>19} {'% of CPU':>17}")
    for name, what in BUCKETS:
        secs = [b["seconds"][name] for b in budgets]
        shares = [b["seconds"][name] / b["capacity_s"] for b in budgets]
        cpu = [b["cpu"].get(name, float("nan")) for b in budgets]
        cpu_share = [b["cpu"].get(name, float("nan")) / sum(b["cpu"].values()) for b in budgets]
        print(f"{name:<27} {fmt_range(secs):>19} {fmt_range(shares, 100):>19} {fmt_range(cpu):>19} "
              f"{fmt_range(cpu_share, 100):>17}   {what}")
    total = [sum(b["seconds"].values()) / b["capacity_s"] for b in budgets]
    cpu_sum = fmt_range([sum(b["cpu"].values()) for b in budgets])
    print(f"{'(sum)':<27} {'':>19} {fmt_range(total, 100):>19} {cpu_sum:>19}")
    fl = {k: [b["flops"].get(k, 0.0) for b in budgets] for k in ("forward", "backward", "evaluation")}
    all_flops = [sum(v) for v in zip(*fl.values())]
    limit = [f / (peak * 1e9 * slots) for f in all_flops]
    print(f"\nrecurrent products: forward {fmt_range(fl['forward'], 1e-12, 2)} TFLOP, backward "
          f"{fmt_range(fl['backward'], 1e-12, 2)}, evaluation {fmt_range(fl['evaluation'], 1e-12, 2)}; "
          f"total {fmt_range(all_flops, 1e-12, 2)} TFLOP")
    print(f"matmul peak {peak:.0f} GFLOP/s per core (1 thread, best of before/after) -> the limit: "
          f"{fmt_range([x * slots for x in limit])} core-seconds, {fmt_range(limit)} s on {slots} cores = "
          f"{fmt_range([a / w for a, w in zip(limit, walls)], 100)}% "
          "of the wall time")
    for clock, key in (("wall", "seconds"), ("CPU", "cpu")):
        rp = [b[key]["recurrent products"] for b in budgets]
        tr = [(b["flops"].get("forward", 0) + b["flops"].get("backward", 0)) / s / 1e9 if s else float("nan")
              for b, s in zip(budgets, rp)]
        print(f"training products ran at {fmt_range(tr, digits=0)} GFLOP/s per {clock} second "
              f"({fmt_range([t / peak for t in tr], 100)}% of peak)")
    cpu_total = [sum(b["cpu"].values()) for b in budgets]
    print(f"the limit over the grid's CPU seconds: {fmt_range([a / c for a, c in zip(limit, cpu_total)], 100)}% "
          "(what the share of the wall time would be on cores of its own)")
    print("\nregions of the processes that trained (exclusive seconds, first repeat; by CPU):")
    detail = sorted(budgets[0]["detail"].items(), key=lambda kv: -kv[1][1])
    for path, (wall_s, cpu_s, calls) in detail[:14]:
        print(f"  {path:<48} wall {wall_s:8.1f} s  CPU {cpu_s:7.1f} s  {calls:>8} calls  "
              f"{1e6 * cpu_s / max(calls, 1):8.1f} us CPU/call")
    busy = [b["worker_busy_s"] for b in budgets]
    cpu = [b["worker_cpu_s"] for b in budgets]
    if any(busy):
        rate = fmt_range([c / w for c, w in zip(cpu, busy) if w], digits=2)
        print(f"workers' CPU seconds / their busy wall seconds: {rate} "
              f"(below 1: waiting for a core); driver CPU {fmt_range([b['driver_cpu_s'] for b in budgets])} s")


if __name__ == "__main__":
    main()
