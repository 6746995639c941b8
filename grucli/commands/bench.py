"""`grucli bench`: time cells x sizes x implementations; table, CSV and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress
from rich.table import Table

from grucli.commands.common import clean_errors, console
from grucli.numbers import num, times


def _ints(text: Optional[str]) -> Optional[list[int]]:
    return None if text is None else [int(v) for v in text.split(",") if v.strip()]


def _names(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


@clean_errors
def bench(
    config: Optional[Path] = typer.Argument(None, help="Optional bench YAML (see benchmarks/bench.yaml)."),
    cells: Optional[str] = typer.Option(None, "--cells", help="Comma-separated cells, e.g. rnn,gru,lstm."),
    impls: Optional[str] = typer.Option(None, "--impls", help="Comma-separated impls: torch,fused,reference."),
    hidden: Optional[str] = typer.Option(None, "--hidden", "-H", help="Hidden sizes, e.g. 16,128."),
    seq_len: Optional[str] = typer.Option(None, "--seq-len", "-T", help="Sequence lengths, e.g. 20,100."),
    batch: Optional[str] = typer.Option(None, "--batch", "-B", help="Batch sizes, e.g. 32,64."),
    layers: Optional[str] = typer.Option(None, "--layers", "-L", help="Layer counts, e.g. 1,2."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Measured rounds, median reported (default 10)."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Warm-up rounds, discarded (default 2)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 1)."),
    no_flush_denormal: bool = typer.Option(False, "--no-flush-denormal", help="Measure without flushing denormals."),
    simd: Optional[str] = typer.Option(None, "--simd", help="Fused kernel builds timed side by side, e.g. "
                                       "avx2,native (native: this CPU's widest; default native)."),
    out: Path = typer.Option(Path("results/bench"), "--out", "-o", help="Folder for bench.csv and bench.png."),
) -> None:
    """Time a training step and an inference pass for every cell x size x implementation.

    Sizes from --hidden/--seq-len/--batch/--layers form a cartesian product (and replace the
    YAML's sizes). Ratios compare variants measured in the same invocation.

    Example:

        grucli bench --cells gru,lstm --impls torch,fused -H 16,128 -T 20,100 -B 32,64

        grucli bench benchmarks/bench.yaml --simd avx2,native
    """
    from grucli import bench as lib
    from grucli.cells import REFERENCE

    sizes = None
    if any(v is not None for v in (hidden, seq_len, batch, layers)):
        base = lib.load_bench_config(config).sizes[0]
        sizes = lib.sizes_product(_ints(hidden) or [base.hidden], _ints(seq_len) or [base.seq_len],
                                  _ints(batch) or [base.batch], _ints(layers) or [base.layers])
    cfg = lib.load_bench_config(config, cells=_names(cells), impls=_names(impls), sizes=sizes, repeats=repeats,
                                warmup=warmup, threads=threads, flush_denormal=False if no_flush_denormal else None,
                                simd=_names(simd))
    if "fused" in cfg.impls:
        from grucli.cells.fused import build as fused_build

        for name in cfg.simd:
            with fused_build.simd_build(name):
                if fused_build.will_compile():
                    console.print(f"[dim]compiling grucli's CPU kernels ({name}) once for this machine, about a "
                                  "minute[/]")
                console.print(f"fused kernels ({name}): {fused_build.describe()}"
                              + ("" if fused_build.available() else " -- the fused variants are left out"))
    variants = lib.variants_of(cfg)
    n, sizes_measured = len(variants), len({size for *_, size in variants})
    console.print(f"[dim]{n} variants, each timed in {cfg.warmup} warm-up + {cfg.repeats} measured rounds, "
                  f"{cfg.threads} thread(s)[/]")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=(cfg.warmup + cfg.repeats) * sizes_measured)
        rows, peak = lib.run_bench(cfg, on_round=lambda done, total: progress.update(task, completed=done))
    table = Table("cell", "impl", "size", "params", "step ms\n(wall)", "step ms\n(cpu)", "infer ms\n(wall)",
                  "train\nseq/s", "train\nGFLOP/s", "% of\nmatmul\npeak", "step /\ntorch", "step /\ntorch\n(cpu)",
                  "infer /\ntorch", "infer /\ntorch\n(cpu)", f"step /\n{REFERENCE}\n(same\nimpl)",
                  title=f"training step (forward, loss, backward, Adam) and inference; medians over {cfg.repeats} rounds; "
                        f"input size {cfg.input_size}; this machine's matmul peak now (the faster of torch's "
                        f"and grucli's 512x512 product): {num(peak)} GFLOP/s",
                  title_justify="left")
    for r in rows:
        size = f"H={r['hidden']} T={r['seq_len']} B={r['batch']}" + (f" L={r['layers']}" if r["layers"] > 1 else "")
        impl = r["impl"] + (f" ({r['simd']})" if len(cfg.simd) > 1 and r["simd"] else "")
        table.add_row(r["cell"], impl + (" *" if r["fastest"] else ""), size, num(r["params"]),
                      num(r["train_step_ms"]), num(r["train_cpu_ms"]), num(r["inference_ms"]),
                      num(r["train_seq_s"]), num(r["train_gflop_s"]), num(100 * r["peak_share"], 2),
                      num(r["train_vs_torch"], 2), num(r["train_cpu_vs_torch"], 2), num(r["inference_vs_torch"], 2),
                      num(r["inference_cpu_vs_torch"], 2), num(r[f"train_vs_{REFERENCE}"], 2))
    console.print(table)
    key = f"fastest_vs_fastest_{REFERENCE}"
    for r in (r for r in rows if r[key] is not None and r["cell"] != REFERENCE):
        build = f", {r['simd']} build" if len(cfg.simd) > 1 and r["simd"] else ""
        console.print(f"fastest {r['cell']} ({r['impl']}{build}) / fastest {REFERENCE}, H={r['hidden']} "
                      f"T={r['seq_len']} B={r['batch']}: {times(r[key])} (by {r['fastest_by']})")
    checked = [r for r in rows if r["checked_against"]]
    if checked:
        worst = max(checked, key=lambda r: r["max_rel_diff"])
        console.print(f"checked before timing: {len(checked)} variant(s) against torch (or the reference equations) "
                      f"on their own batch, outputs and gradients; largest relative difference "
                      f"{num(worst['max_rel_diff'], 2)} ({worst['impl']} {worst['cell']}). GFLOP/s count the products a "
                      "training step computes (layer 0 computes no input gradient).")
    csv = lib.write_csv(rows, out / "bench.csv")
    png = lib.plot(rows, out / "bench.png")
    console.print(f"* = fastest impl of the cell at that size. wrote {csv} and {png}")
