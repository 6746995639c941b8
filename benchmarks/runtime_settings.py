"""What each of grucli's runtime settings buys (issue 6): flushing denormals, thread count,
and glibc malloc settings. Prints per-step medians (process CPU time and wall time) with
each setting on and off, measured interleaved.

    python benchmarks/runtime_settings.py [--seq-len 1000] [--repeats 5]

- flush denormals: toggled in-process between interleaved steps (torch.set_flush_denormal).
- threads: 1 vs 2 torch threads, interleaved in-process (wall time; CPU time counts both).
- malloc: must be set before allocations happen, so each setting runs in its own child
  process (default glibc vs runtime.tune_malloc), alternating, `--repeats` times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import torch

from grucli.bench import BenchConfig, Size, Variant


def timed(v: Variant) -> tuple[float, float]:
    return v.train_step()


def interleaved(variants, settings: dict, repeats: int) -> dict:
    """settings: name -> function applying it; every (variant, setting) timed once per round."""
    res = {(v.cell, v.impl, s): ([], []) for v in variants for s in settings}
    for r in range(repeats + 1):
        for v in variants:
            for s, apply in settings.items():
                apply()
                wall, cpu = timed(v)
                if r:
                    res[v.cell, v.impl, s][0].append(wall)
                    res[v.cell, v.impl, s][1].append(cpu)
    return {k: (1e3 * statistics.median(w), 1e3 * statistics.median(c)) for k, (w, c) in res.items()}


def report(title: str, res: dict, base: str, other: str) -> None:
    print(title)
    for cell, impl in dict.fromkeys((c, i) for c, i, _ in res):
        (bw, bc), (ow, oc) = res[cell, impl, base], res[cell, impl, other]
        print(f"  {cell}/{impl:6s} {base}: {bw:8.1f} ms wall {bc:8.1f} ms cpu | {other}: {ow:8.1f} ms wall "
              f"{oc:8.1f} ms cpu | {other}/{base}: wall {ow / bw:.2f}, cpu {oc / bc:.2f}")


def variants(args, cells=("gru", "lstm"), impls=("torch", "fused")):
    size = Size(hidden=args.hidden, seq_len=args.seq_len, batch=args.batch)
    cfg = BenchConfig(cells=list(cells), impls=list(impls), sizes=[size])
    return [Variant(c, i, size, cfg) for c in cells for i in impls]


def child(args) -> None:
    """One malloc setting in a fresh process: print JSON medians."""
    from grucli import runtime

    if args.child == "tuned":
        runtime.tune_malloc()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    res = interleaved(variants(args), {args.child: lambda: None}, args.repeats)
    print(json.dumps({f"{c}/{i}": v for (c, i, _), v in res.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=["flush", "threads", "malloc"], action="append")
    ap.add_argument("--child", choices=["default", "tuned"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    only = set(args.only or ["flush", "threads", "malloc"])
    print(f"H={args.hidden} T={args.seq_len} B={args.batch}, training steps, median of {args.repeats}")
    if "flush" in only:
        torch.set_num_threads(1)
        res = interleaved(variants(args), {"flush": lambda: torch.set_flush_denormal(True),
                                           "no flush": lambda: torch.set_flush_denormal(False)}, args.repeats)
        report("flush denormals (1 thread):", res, "flush", "no flush")
        torch.set_flush_denormal(True)
    if "threads" in only:
        res = interleaved(variants(args), {"1 thread": lambda: torch.set_num_threads(1),
                                           "2 threads": lambda: torch.set_num_threads(2)}, args.repeats)
        report("threads (flush on):", res, "1 thread", "2 threads")
    if "malloc" in only:
        out: dict = {"default": [], "tuned": []}
        for r in range(args.repeats):
            for setting in (["default", "tuned"] if r % 2 == 0 else ["tuned", "default"]):
                cmd = [sys.executable, __file__, "--child", setting, "--repeats", "3", "--seq-len", str(args.seq_len),
                       "--hidden", str(args.hidden), "--batch", str(args.batch)]
                out[setting].append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True)
                                               .stdout.strip().splitlines()[-1]))
        print("glibc malloc: default vs tuned (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=1 GiB), 1 thread:")
        for key in out["default"][0]:
            d = [statistics.median(run[key][k] for run in out["default"]) for k in (0, 1)]
            t = [statistics.median(run[key][k] for run in out["tuned"]) for k in (0, 1)]
            print(f"  {key:12s} default: {d[0]:8.1f} ms wall {d[1]:8.1f} ms cpu | tuned: {t[0]:8.1f} ms wall "
                  f"{t[1]:8.1f} ms cpu | tuned/default: wall {t[0] / d[0]:.2f}, cpu {t[1] / d[1]:.2f}")


if __name__ == "__main__":
    main()
