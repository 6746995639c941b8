"""`grucli bench`: how fast is each cell and implementation, and how close to the machine?

For cells x sizes (H, T, B, layers) x implementations: parameters, gate FLOPs (forward, and
what a training step computes: see train_flops), training-step time (zero_grad, forward,
MSE on the last step, backward, Adam step, as grucli trains: stacked on the fused kernels,
else through the module and torch's Adam) and inference time
(no_grad forward), sequences/s, achieved GFLOP/s and its share of the matmul peak measured
in the same invocation, and the ratios GRU/LSTM, RNN/LSTM and impl/torch. Before timing,
every implementation's output and gradients are checked against torch's (or the reference
equations) at the sizes it is timed at: a wrong-but-fast kernel stops the bench.

Timing: every variant is built first, then each size is measured in rounds; a round times
every variant of that size once, in a rotated order (variants interleaved, so a noisy
neighbour hits all of them alike), each timed step right after an untimed one of its own. Reported: the median over the rounds after `warmup` rounds, of wall time and
of process CPU time. On a machine shared with other jobs the CPU time is the steadier
measure of the work a variant does (wall time also counts waiting for a core).
"""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from typing import Literal

from pydantic import Field, field_validator, model_validator

from grucli import runtime
from grucli.config import Strict, load_file
from grucli.errors import GrucliError, unknown_name
from grucli.numbers import num, times
from grucli.cells import CELLS, IMPLS, REFERENCE
from grucli.model import SequenceModel, count_params, describe_impl
from grucli.objectives import Regression
from grucli.train.optim import adam


class Size(Strict):
    hidden: int = Field(ge=1)  # H: units per layer and direction
    seq_len: int = Field(ge=1)  # T: steps per sequence
    batch: int = Field(ge=1)  # B: sequences per step
    layers: int = Field(1, ge=1)  # stacked layers

    def label(self) -> str:
        return f"H={self.hidden} T={self.seq_len} B={self.batch}" + (f" L={self.layers}" if self.layers > 1 else "")


class BenchConfig(Strict):
    """What `grucli bench` measures (a YAML file or CLI flags)."""

    cells: list[str] = ["rnn", "gru", "lstm"]  # registry names (see `grucli cells`)
    impls: list[str] = ["torch", "fused"]  # torch | fused | reference; a cell without the impl is skipped
    sizes: list[Size] = [Size(hidden=128, seq_len=100, batch=64), Size(hidden=16, seq_len=20, batch=32)]
    input_size: int = Field(32, ge=1)  # I: features per step
    bidirectional: bool = False
    repeats: int = Field(10, ge=1)  # measured rounds (the median is reported)
    warmup: int = Field(2, ge=0)  # rounds run first and discarded
    threads: int = Field(1, ge=1)  # torch intra-op threads
    flush_denormal: bool = True  # grucli's default on CPU; false measures what flushing saves
    inference: bool = True  # also time a no_grad forward
    clock: Literal["auto", "wall", "cpu"] = "auto"  # what "fastest" and GRU/LSTM of the fastest use; auto = cpu at 1 thread
    seed: int = 0
    simd: list[Literal["native", "avx512", "avx2", "none"]] = ["native"]  # fused kernel builds, timed side by side

    @field_validator("cells", "impls")
    @classmethod
    def _known(cls, v, info):
        kind, valid = {"cells": ("cell", CELLS), "impls": ("impl", IMPLS)}[info.field_name]
        for name in v:
            if name not in valid:
                raise ValueError(unknown_name(kind, name, valid))
        return v

    @model_validator(mode="after")
    def _nonempty(self):
        if not (self.cells and self.impls and self.sizes):
            raise ValueError("cells, impls and sizes must each list at least one value")
        return self


CLI_FLAGS = {"sizes": "--hidden/--seq-len/--batch/--layers", "flush_denormal": "--no-flush-denormal"}  # keys set by another flag


def load_bench_config(path: str | Path | None = None, **overrides) -> BenchConfig:
    """A BenchConfig from an optional YAML file, with CLI values (not None) on top; typed
    by grucli.config like every file grucli reads (one ConfigError line, exit 2)."""
    return load_file(path, BenchConfig, "bench", flags=CLI_FLAGS, **overrides)


def sizes_product(hidden, seq_len, batch, layers) -> list[dict]:
    """CLI flags -> the cartesian product of sizes."""
    return [dict(hidden=h, seq_len=t, batch=b, layers=n) for h, t, b, n in itertools.product(hidden, seq_len, batch, layers)]


# --------------------------------------------------------------------------- counting
def gate_flops(cell: str, size: Size, input_size: int, bidirectional: bool = False) -> int:
    """FLOPs (multiply-adds x 2) of the weight-matrix products for one forward pass over a
    batch: 2 * B * T * the cell's matrix multiply-adds per step (G * H * (I_layer + H) for a
    cell with G gate blocks), per layer and direction."""
    return sum(2 * (inp + rec) * size.batch * size.seq_len for _, inp, rec in _products(cell, size, input_size,
                                                                                      bidirectional))


def train_flops(cell: str, size: Size, input_size: int, bidirectional: bool = False) -> int:
    """FLOPs of the weight-matrix products a training step computes: the forward, the weight
    gradients (as many), the gradient through the recurrent products, and the gradient
    through the input products of every layer but the first -- the data need no gradient,
    so layer 0 never computes it (a step is less than 3x the forward; at I >> H much less).
    The head and the elementwise gate arithmetic are left out, as in the forward count."""
    total = 0
    for layer, inp, rec in _products(cell, size, input_size, bidirectional):
        total += 2 * size.batch * size.seq_len * (2 * (inp + rec) + rec + (inp if layer > 0 else 0))
    return total


def _products(cell: str, size: Size, input_size: int, bidirectional: bool):
    """(layer, input multiply-adds, recurrent multiply-adds) per step and sequence, one entry
    per layer and direction."""
    H, d = size.hidden, 2 if bidirectional else 1
    spec = CELLS[cell]
    for layer in range(size.layers):
        rec = spec.matmul_macs(0, H)  # the input matrices have no columns at input size 0
        inp = spec.matmul_macs(input_size if layer == 0 else d * H, H) - rec
        for _ in range(d):
            yield layer, inp, rec


def matmul_peak_gflops(n: int = 512, repeats: int = 5) -> float:
    """This machine's matmul rate now, at the current thread count: the best of `repeats`
    n x n products, by the faster of torch's matmul (its BLAS) and the fused kernels' own
    products (grucli/cells/fused/gemm.h) where they are built -- the rate a kernel could
    reach with the best product available here."""
    return max(matmul_rates(n, repeats).values())


def matmul_rates(n: int = 512, repeats: int = 5, simd: list[str] = ("native",)) -> dict[str, float]:
    """GFLOP/s of an n x n product, best of `repeats`: {"torch": ..., "grucli": ...} (the
    second only where the fused kernels are built; with several `simd` builds, one entry
    "grucli/<build>" each)."""
    from grucli.cells.fused import build

    a, b = torch.randn(n, n), torch.randn(n, n)
    products = {"torch": lambda: a @ b}
    for name in simd:
        with build.simd_build(name):
            k = build.kernels()
        if k is not None:
            products["grucli" if len(simd) == 1 else f"grucli/{name}"] = lambda k=k: k.matmul(a, b, False)
    rates = {}
    for name, product in products.items():
        product()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            product()
            best = min(best, time.perf_counter() - t0)
        rates[name] = 2 * n**3 / best / 1e9
    return rates


# --------------------------------------------------------------------------- timing
class Variant:
    """One (cell, impl, size): a model, its optimiser and one batch of data. Its training step
    is the one grucli trains it with: stacked (grucli.train.stacked, a pack of one) where the model
    trains that way, else the module's forward and backward and torch's fused Adam."""

    def __init__(self, cell: str, impl: str, size: Size, cfg: BenchConfig, simd: str = ""):
        from grucli.train import stacked
        from grucli.cells.fused import build

        self.cell, self.impl, self.size, self.simd = cell, impl, size, simd  # simd: the fused build ("" otherwise)
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[]), build.simd_build(simd or "native"):
            self.kernels = describe_impl(impl)
            torch.manual_seed(cfg.seed)
            self.model = SequenceModel(cell, input_size=cfg.input_size, output_size=1, hidden_size=size.hidden,
                                       head="last", num_layers=size.layers, bidirectional=cfg.bidirectional, impl=impl)
        self.stack = None
        if stacked.unsupported([self.model], None, torch.device("cpu")) is None:
            self.stack = stacked.Stacked([self.model], [torch.Generator()], lr=[1e-3])
        else:
            self.opt = adam(self.model.parameters(), lr=1e-3)
        self.x = torch.randn(size.batch, size.seq_len, cfg.input_size, generator=gen)  # (B, T, I)
        self.y = torch.randn(size.batch, 1, generator=gen)  # (B, 1)
        self.times: dict[str, list[float]] = {k: [] for k in ("train", "train_cpu", "inference", "inference_cpu")}
        self.checked: tuple[str, float] = ("", 0.0)  # set by check_variant before timing

    @property
    def step_kind(self) -> str:
        return "stacked" if self.stack is not None else "per-run"

    def train_step(self) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        if self.stack is not None:
            self.stack.zero_grad()  # the squared error as grucli trains a regression: in the head's node
            loss = self.stack.head_loss(self.x[None], self.y[None], Regression.head_loss)[0]
            loss.backward()
            self.stack.step([0])
        else:
            self.opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(self.model(self.x), self.y)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0, time.process_time() - c0

    @torch.no_grad()
    def inference(self) -> tuple[float, float]:
        self.model.eval()
        t0, c0 = time.perf_counter(), time.process_time()
        self.model(self.x)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        self.model.train()
        return dt, dc


CHECK_TOLERANCE = 1e-4  # float32: max |ours - theirs| / (1 + max |theirs|), outputs and gradients


def check_variant(v: Variant, cfg: BenchConfig) -> tuple[str, float]:
    """Compare a variant's output and parameter gradients on its own batch with the cell's
    baseline implementation (torch's module where the cell has one, else the reference
    equations) holding the same weights: (the baseline's name, the largest relative
    difference). The baseline itself gives ("", 0.0). Raises GrucliError above
    CHECK_TOLERANCE."""
    base_impl = "torch" if "torch" in CELLS[v.cell].impls else "reference"
    if v.impl == base_impl:
        return "", 0.0
    s = v.size
    base = SequenceModel(v.cell, input_size=cfg.input_size, output_size=1, hidden_size=s.hidden, head="last",
                         num_layers=s.layers, bidirectional=cfg.bidirectional, impl=base_impl)
    base.load_state_dict(v.model.state_dict())
    worst = 0.0
    results = []
    for model in (v.model, base):
        model.zero_grad(set_to_none=True)
        out = model(v.x)
        F.mse_loss(out, v.y).backward()
        results.append([out.detach(), *(p.grad.detach().clone() for p in model.parameters())])
        model.zero_grad(set_to_none=True)
    for ours, theirs in zip(*results):
        worst = max(worst, float((ours - theirs).abs().max() / (1 + theirs.abs().max())))
    if not worst <= CHECK_TOLERANCE:
        raise GrucliError(f"{v.impl} {v.cell} at H={s.hidden} T={s.seq_len} B={s.batch}: output or gradients differ "
                          f"from {base_impl} by {num(worst)} (relative; tolerance {CHECK_TOLERANCE:g}): not timed")
    return base_impl, worst


def variants_of(cfg: BenchConfig) -> list[tuple[str, str, Size]]:
    """Every cell x impl x size that can run here: an impl the cell has, and for fused,
    kernels that actually built (never a stand-in under the name "fused")."""
    from grucli.cells import impl_available

    return [(c, i, s) for s in cfg.sizes for c in cfg.cells for i in cfg.impls
            if i in CELLS[c].impls and impl_available(i)]


def run_bench(cfg: BenchConfig, on_round=None) -> tuple[list[dict], float]:
    """Measure every variant; returns (one row per variant, matmul peak GFLOP/s).
    `on_round(done, total)` is called after each round (for a progress bar).

    Sizes are measured one after another, the variants of a size interleaved in rotated
    rounds, and each timed step (and inference) right after an untimed one of the same
    variant. A step after another model's pays for the caches that model left cold, which
    no grid sees (a run trains thousands of steps in a row): measured here, a fused GRU
    step at H=16 took 0.83 ms right after an H=128 step and 0.27 ms after its own
    (zero_grad and the loss, pure dispatch, 2.5x slower too), and 0.36 ms after torch's GRU
    at its own size."""
    threads = runtime.configure(cfg.threads, torch.device("cpu"))
    torch.set_flush_denormal(cfg.flush_denormal)
    variants = [Variant(c, i, s, cfg, simd) for c, i, s in variants_of(cfg)
                for simd in (cfg.simd if i == "fused" else [""])]
    for v in variants:  # before any timing: a wrong-but-fast kernel is never timed
        v.checked = check_variant(v, cfg)
    rates = matmul_rates(simd=cfg.simd)
    rounds = cfg.warmup + cfg.repeats
    sizes = list(dict.fromkeys(v.size for v in variants))
    done = 0
    for size in sizes:  # one size at a time (see run_bench's docstring)
        block = [v for v in variants if v.size == size]
        for r in range(rounds):
            k = r % len(block)
            for v in block[k:] + block[:k]:  # rotated: no variant always runs first
                v.train_step()  # each timed step follows one of its own, as in training
                t_train = v.train_step()
                if cfg.inference:
                    v.inference()
                t_infer = v.inference() if cfg.inference else (float("nan"), float("nan"))
                if r >= cfg.warmup:
                    for name, value in zip(v.times, (*t_train, *t_infer)):
                        v.times[name].append(value)
            done += 1
            if on_round:
                on_round(done, rounds * len(sizes))
    # measured before and after: the better of the two
    rates = {k: max(v, rates.get(k, 0.0)) for k, v in matmul_rates(simd=cfg.simd).items()}
    peak = max(rates.values())
    rows = []
    for v in variants:
        s = v.size
        flops = gate_flops(v.cell, s, cfg.input_size, cfg.bidirectional)
        step_flops = train_flops(v.cell, s, cfg.input_size, cfg.bidirectional)
        ms = {k: 1e3 * statistics.median(t) for k, t in v.times.items()}
        train_ms, infer_ms = ms["train"], ms["inference"]
        gflops = step_flops / (train_ms / 1e3) / 1e9
        rows.append({
            "cell": v.cell, "impl": v.impl, "hidden": s.hidden, "seq_len": s.seq_len, "batch": s.batch,
            "layers": s.layers, "bidirectional": cfg.bidirectional, "input_size": cfg.input_size,
            "params": count_params(v.model), "gate_gflop_fwd": flops / 1e9, "gate_gflop_train": step_flops / 1e9,
            "checked_against": v.checked[0], "max_rel_diff": v.checked[1],
            "train_step_ms": train_ms, "train_step_ms_min": 1e3 * min(v.times["train"]),
            "train_cpu_ms": ms["train_cpu"], "inference_ms": infer_ms, "inference_cpu_ms": ms["inference_cpu"],
            "train_seq_s": s.batch / (train_ms / 1e3),
            "inference_seq_s": s.batch / (infer_ms / 1e3), "train_gflop_s": gflops,
            "peak_share": gflops / peak, "cpu_peak_share": step_flops / (ms["train_cpu"] / 1e3) / 1e9 / peak,
            "repeats": cfg.repeats, "threads": threads, "kernels": v.kernels, "step": v.step_kind,
            "flush_denormal": cfg.flush_denormal, "simd": v.simd,
            # the share of the build's own tiles' product rate (an AVX2 build: about the peak of an AVX2-only machine)
            "build_peak_share": gflops / rates.get("grucli" if len(cfg.simd) == 1 else f"grucli/{v.simd}", peak),
        })
    clock = cfg.clock if cfg.clock != "auto" else ("cpu" if threads == 1 else "wall")
    add_ratios(rows, "train_cpu_ms" if clock == "cpu" else "train_step_ms")
    return rows, peak


RATIO_OF = {"train": "train_step_ms", "inference": "inference_ms", "train_cpu": "train_cpu_ms",
            "inference_cpu": "inference_cpu_ms"}  # ratio name -> column


def add_ratios(rows: list[dict], by_col: str = "train_step_ms") -> None:
    """In place: impl/torch for the same cell and size; each cell over the reference cell
    (grucli.cells.REFERENCE, the LSTM) for the same impl and size; and the same over the
    fastest implementation of each cell (by `by_col`)."""
    key = lambda r: (r["hidden"], r["seq_len"], r["batch"], r["layers"])  # noqa: E731
    by = {(r["cell"], r["impl"], r.get("simd", ""), key(r)): r for r in rows}  # simd: a fused row's build
    builds = list(dict.fromkeys(r.get("simd", "") for r in rows if r.get("simd", ""))) or [""]
    best: dict[tuple, dict] = {}  # per build: the fastest of the torch rows and that build's rows
    for r in rows:
        for g in ([r["simd"]] if r.get("simd", "") else builds):
            b = best.get((r["cell"], g, key(r)))
            if b is None or r[by_col] < b[by_col]:
                best[(r["cell"], g, key(r))] = r
    for r in rows:  # a torch row (simd "") is the baseline of every build's fused row
        k, g = key(r), r.get("simd", "") or builds[0]
        t = by.get((r["cell"], "torch", "", k))
        ref = by.get((REFERENCE, r["impl"], r.get("simd", ""), k))
        for what, col in RATIO_OF.items():
            r[f"{what}_vs_torch"] = r[col] / t[col] if t and col in t else None
            r[f"{what}_vs_{REFERENCE}"] = r[col] / ref[col] if ref and col in ref else None
        fastest_ref = best.get((REFERENCE, g, k))
        r["fastest"] = best[(r["cell"], g, k)] is r
        r[f"fastest_vs_fastest_{REFERENCE}"] = r[by_col] / fastest_ref[by_col] if r["fastest"] and fastest_ref else None
        r["fastest_by"] = by_col


def write_csv(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def plot(rows: list[dict], path: Path) -> Path:
    """One column of panels per size (linear axes: sizes differ by orders of magnitude, so
    they are not drawn on one axis): training step (top) and inference (bottom), one bar per
    cell x impl, coloured by cell, hatched by impl, each labelled with its ratio to the
    cell's torch implementation. Drawn and saved (atomically) with grucli.report.figure."""
    from grucli.cells import colour
    from grucli.report import figure

    sizes = list(dict.fromkeys((r["hidden"], r["seq_len"], r["batch"], r["layers"]) for r in rows))
    variants = list(dict.fromkeys((r["cell"], r["impl"]) for r in rows))
    impls = list(dict.fromkeys(impl for _, impl in variants))
    hatches = dict(zip(impls, ["", "///", "...", "xx"]))
    quantities = [("train_step_ms", "train_vs_torch", "training step (ms)"),
                  ("inference_ms", "inference_vs_torch", "inference (ms)")]
    quantities = [q for q in quantities if any(r.get(q[0]) == r.get(q[0]) and r.get(q[0]) is not None for r in rows)]
    fig, axes = figure.new(len(sizes), len(quantities), width=max(4.0, 0.55 * len(variants) + 1.2), height=3.0)
    for col, size in enumerate(sizes):
        at = {(r["cell"], r["impl"]): r for r in rows if (r["hidden"], r["seq_len"], r["batch"], r["layers"]) == size}
        for row, (key, ratio, label) in enumerate(quantities):
            ax = axes[row][col]
            for i, (cell, impl) in enumerate(variants):
                r = at.get((cell, impl))
                if not r or r.get(key) is None:
                    continue
                ax.bar(i, r[key], 0.8, color=colour(cell), hatch=hatches[impl], edgecolor="white", lw=0,
                       label=f"{cell} / {impl}")
                if impl != "torch" and r.get(ratio) == r.get(ratio) and r.get(ratio) is not None:
                    ax.annotate(times(r[ratio]), (i, r[key]), ha="center", va="bottom", fontsize=7)
            ax.set_xticks(range(len(variants)))
            ax.set_xticklabels([f"{c}\n{m}" for c, m in variants], fontsize=7)
            ax.set_ylabel(f"{label}, median")
            h, t, b, n = size
            ax.set_title(f"H={h} T={t} B={b}" + (f" L={n}" if n > 1 else ""), fontsize=9)
            ax.margins(y=0.12)
            ax.grid(axis="x", visible=False)
    fig.suptitle(f"grucli bench, {rows[0]['threads']} thread(s): median times\n"
                 "bar labels: ratio to the cell's torch implementation", fontsize=8)
    return figure.save_file(fig, path)
