"""The driver's cost as grids grow: overhead per run, its growth with N, the dry run of a
100,000-point grid, the driver's peak memory, and the same for a tuning study's trials.

    python benchmarks/scale.py                          # 1,000 and 10,000 runs, a 1,000-trial study (long)
    python benchmarks/scale.py --runs 250 1000 --trials 100 300   # smaller, the same growth measured
    python benchmarks/scale.py --runs 1000 --dry-points 0 --trials
    python benchmarks/scale.py --runs --trials --dry-points 0 --kill 10000   # kill -9 half way, resume

Each grid is tiny adding runs (T=4, hidden 2, 1 epoch, 16 training sequences), trained as
`grucli compare` trains them (process pool of --jobs workers, packs chosen automatically,
the CLI's progress reporter writing plain lines to a log), into a fresh results folder, one
grid per fresh process. The driver is the process that plans, claims, stores and reports;
the workers train. Measured per grid:

- driver CPU per run: the driver process's CPU time (time.process_time, all its threads)
  over the grid, divided by N -- what grows when the driver does O(N) work per run;
- wall per run: the grid's wall time over N (on a shared machine, mostly the workers);
- peak memory: the driver process's maximum resident set (ru_maxrss).

A study (--trials) is `grucli tune` of one arm over the same tiny runs (random sampler,
no pruning, one searched learning rate, 2 final seeds): the driver there also asks and tells
Optuna through tune.db (SQLite) for every trial, so its CPU per trial includes Optuna's.

Targets (issue 27): driver overhead per run flat in N (within 20% from the smallest to the
largest grid) and under 20 ms; the dry run of a 100,000-point grid under 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's grucli, whatever is installed

GRID = """\
# python benchmarks/scale.py --runs {n}
name: scale_{n}
task: {{name: adding, seq_len: 4, n_train: 16, n_val: 8, n_test: 8}}
model: {{cell: gru, hidden_size: 2}}
train: {{epochs: 1, batch_size: 16, threads: 1, eval_batch_size: 64}}
{grid}seeds: {seeds}
"""


def _timed(log: Path, run) -> tuple:
    """run(reporter) with the command's own progress written to `log`; (its result, the
    driver's wall seconds, the driver's CPU seconds)."""
    from grucli.commands.common import ProgressReporter

    with open(log, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        with ProgressReporter() as reporter:
            wall, cpu = time.perf_counter(), time.process_time()
            result = run(reporter)
            return result, time.perf_counter() - wall, time.process_time() - cpu


def one_grid(n: int, jobs: int, root: Path) -> dict:
    """Train a grid of n tiny runs in this process's driver; return its measurements."""
    from grucli import experiment

    path = root / f"scale_{n}.yaml"
    path.write_text(GRID.format(n=n, grid="", seeds=n))
    log = root / f"scale_{n}.log"
    er, wall, cpu = _timed(log, lambda reporter: experiment.run(path, results=root / "results", executor="local",
                                                                 jobs=jobs, reporter=reporter))
    finished = sum(er.outcome.finished.values()) if er.outcome else 0
    table = root / "results" / f"scale_{n}" / "runs.csv"
    rows = sum(1 for _ in open(table)) - 1 if table.is_file() else 0
    return {"n": n, "finished": finished, "ok": er.outcome.finished.get("ok", 0) if er.outcome else 0,
            "runs_csv_rows": rows, "wall_s": wall, "driver_cpu_s": cpu,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


STUDY = """\
# python benchmarks/scale.py --trials {n}
name: study_{n}
task: {{name: adding, seq_len: 4, n_train: 16, n_val: 8, n_test: 8}}
model: {{cell: gru, hidden_size: 2}}
train: {{epochs: 1, batch_size: 16, threads: 1, eval_batch_size: 64}}
search:
  trials: {n}
  sampler: random
  pruner: none
  space:
    train.lr: {{log_uniform: [1.0e-4, 1.0e-1]}}
  final_seeds: 2
"""


def one_study(n: int, jobs: int, root: Path) -> dict:
    """Tune one arm for n trials in this process's driver; return its measurements."""
    from grucli.tune import run as tuning

    path = root / f"study_{n}.yaml"
    path.write_text(STUDY.format(n=n))
    log = root / f"study_{n}.log"
    tr, wall, cpu = _timed(log, lambda reporter: tuning.run(path, results=root / "results", executor="local",
                                                             jobs=jobs, reporter=reporter))
    trials = root / "results" / f"study_{n}" / "trials.csv"
    rows = sum(1 for _ in open(trials)) - 1 if trials.is_file() else 0
    finished = sum(tr.trial_outcome.finished.values()) if tr.trial_outcome else 0
    return {"n": n, "finished": finished, "ok": tr.trial_outcome.finished.get("ok", 0) if tr.trial_outcome else 0,
            "runs_csv_rows": rows, "wall_s": wall, "driver_cpu_s": cpu,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(kind: str, sizes: list[int], jobs: int, root: Path) -> None:
    """One fresh process per grid (or study), its line, then the growth from the smallest
    to the largest."""
    grids = []
    unit, table = ("runs", "runs.csv") if kind == "grid" else ("trials", "trials.csv")
    for n in sizes:
        done = subprocess.run([sys.executable, __file__, f"--one-{kind}", str(n), "--jobs", str(jobs), "--root",
                               str(root)], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{kind} of {n} {unit} failed:\n{done.stderr[-3000:]}")
        g = json.loads(done.stdout.strip().splitlines()[-1])
        grids.append(g)
        print(f"{n:>7} {unit}: {g['ok']} ok, {table} {g['runs_csv_rows']} rows | wall {g['wall_s']:8.1f} s "
              f"({1000 * g['wall_s'] / n:6.1f} ms/run) | driver CPU {g['driver_cpu_s']:7.1f} s "
              f"({1000 * g['driver_cpu_s'] / n:5.2f} ms/run) | driver peak {g['peak_mb']:6.0f} MB", flush=True)
    if len(grids) > 1:
        a, b = grids[0], grids[-1]
        per = [1000 * g["driver_cpu_s"] / g["n"] for g in (a, b)]
        wall = [1000 * g["wall_s"] / g["n"] for g in (a, b)]
        print(f"growth {a['n']} -> {b['n']} {unit} ({b['n'] / a['n']:.0f}x): driver CPU per run "
              f"x{per[1] / per[0]:.2f} (target within 0.8-1.2, and < 20 ms: {per[1]:.2f} ms), "
              f"wall per run x{wall[1] / wall[0]:.2f}", flush=True)


def kill_and_resume(n: int, jobs: int, root: Path) -> dict:
    """`grucli compare` of n tiny runs killed with SIGKILL (the whole process tree) once about
    half are stored, then the same command again: every run must end finished exactly once,
    the runs stored before the kill untouched, runs.csv one row per run."""
    import os
    import signal

    path = root / f"kill_{n}.yaml"
    path.write_text(GRID.format(n=n, grid="", seeds=n).replace(f"name: scale_{n}", f"name: kill_{n}"))
    exp_dir = root / "results" / f"kill_{n}"
    cmd = [sys.executable, "-m", "grucli", "compare", str(path), "--results", str(root / "results"), "--jobs",
           str(jobs)]
    with open(root / f"kill_{n}.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)
        while proc.poll() is None and len(list(exp_dir.glob("*/summary.json"))) < n // 2:
            time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob("*/summary.json")}
    wall = time.perf_counter()
    with open(root / f"kill_{n}.resume.log", "w") as out:
        done = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=out)
    wall = time.perf_counter() - wall
    after = {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob("*/summary.json")}
    rows = sum(1 for _ in open(exp_dir / "runs.csv")) - 1 if (exp_dir / "runs.csv").is_file() else 0
    return {"n": n, "killed_at": len(before), "resumed_exit": done.returncode, "finished": len(after),
            "kept": sum(after.get(k) == v for k, v in before.items()), "runs_csv_rows": rows,
            "temps_left": len(list(exp_dir.rglob("*.tmp"))), "resume_wall_s": wall}


def dry_run(points: int, root: Path) -> dict:
    """`grucli compare --dry-run` of a grid of `points` runs (10 learning rates x seeds),
    as a user runs it (a fresh process, the listing written to a file)."""
    path = root / "dry.yaml"
    path.write_text(GRID.format(n=points, grid="grid:\n  train.lr: [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, "
                                "0.007, 0.008, 0.009, 0.01]\n", seeds=max(1, points // 10)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    with open(root / "dry.log", "w") as out:
        subprocess.run([sys.executable, "-m", "grucli", "compare", str(path), "--results", str(root / "results"),
                        "--dry-run"], cwd=ROOT, stdout=out, check=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    listed = sum(1 for line in open(root / "dry.log") if line.startswith("#"))
    return {"points": listed, "wall_s": wall, "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "peak_mb": after.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, nargs="*", default=[1000, 10000], help="grid sizes to train (none: skip)")
    ap.add_argument("--trials", type=int, nargs="*", default=[100, 1000], help="study sizes to tune (none: skip)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--dry-points", type=int, default=100_000, help="points of the dry-run grid (0: skip)")
    ap.add_argument("--kill", type=int, default=0, help="runs of a grid killed half way and resumed (0: skip)")
    ap.add_argument("--one-grid", type=int, help=argparse.SUPPRESS)  # internal: train one grid, print JSON
    ap.add_argument("--one-study", type=int, help=argparse.SUPPRESS)  # internal: tune one study, print JSON
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_grid:
        print(json.dumps(one_grid(args.one_grid, args.jobs, args.root)))
        return
    if args.one_study:
        print(json.dumps(one_study(args.one_study, args.jobs, args.root)))
        return
    with tempfile.TemporaryDirectory(prefix="grucli-scale-") as tmp:
        root = Path(tmp)
        if args.runs:
            measure("grid", args.runs, args.jobs, root)
        if args.trials:
            measure("study", args.trials, args.jobs, root)
        if args.kill:
            k = kill_and_resume(args.kill, args.jobs, root)
            lost = k["n"] - k["finished"] + (k["killed_at"] - k["kept"])
            print(f"killed (SIGKILL) a {k['n']:,}-run grid at {k['killed_at']:,} stored runs; the same command again: "
                  f"exit {k['resumed_exit']}, {k['finished']:,} finished, {k['kept']:,} of the {k['killed_at']:,} "
                  f"kept untouched, runs.csv {k['runs_csv_rows']:,} rows, {k['temps_left']} temp files left, "
                  f"resumed in {k['resume_wall_s']:.0f} s: {'nothing lost' if not lost else f'{lost} LOST'}",
                  flush=True)
        if args.dry_points:
            d = dry_run(args.dry_points, root)
            print(f"dry run of {d['points']:,} points: wall {d['wall_s']:.1f} s, CPU {d['cpu_s']:.1f} s "
                  f"(target < 10 s), peak {d['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
