"""A trained run rebuilt and measured: gate statistics, sample traces and gradient flow,
as numbers (figures.py draws them, run.py writes them).

A run folder is rebuilt exactly: config.yaml -> build_task (the same test split) ->
build_model -> the saved state_dict. Gates and ∂L/∂h_t come from unroll.py, which re-runs
the model's weights with its cell's own step.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grucli import cells, store
from grucli.cells import Cell
from grucli.config import RunConfig
from grucli.errors import GrucliError
from grucli.inspect.files import SCHEMA
from grucli.inspect.unroll import grad_norms, run_stack
from grucli import model as models
from grucli.model import SequenceModel
from grucli.tasks import Split, TaskData, build_task

LOW, HIGH = 0.1, 0.9  # a gate value below LOW or above HIGH counts as saturated
GRAD_SEQUENCES = 256  # test sequences averaged in the gradient-flow curves
CHUNK = 250  # test sequences per forward pass when collecting gate statistics
BINS = 50


# --------------------------------------------------------------------------- rebuilding a run
@dataclass
class LoadedRun:
    run_dir: Path
    cfg: RunConfig
    data: TaskData
    model: SequenceModel  # trained weights, eval mode, CPU
    summary: dict  # the run's summary.json ({} if absent)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def label(self) -> str:
        return f"{self.cfg.model.cell} · {self.cfg.task.name} · run {self.run_id}"


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild a trained model from its run folder. Raises GrucliError with one line when
    the folder is not a run or has no usable weights."""
    run_dir = Path(run_dir)
    model, cfg, _ = models.load(run_dir)  # one line for a folder that is not a run, or has no usable weights
    summary = store.read_summary(run_dir) or {}
    data = build_task(cfg.task)
    if not isinstance(model, SequenceModel):
        raise GrucliError(f"{run_dir}: task {cfg.task.name} trains an encoder-decoder; inspect traces the gates of "
                          "one recurrent stack and does not read encoder-decoders yet")
    weights = run_dir / store.WEIGHTS
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise GrucliError(f"{weights}: the weights hold NaN or inf (the run diverged); nothing to inspect")
    return LoadedRun(run_dir, cfg, data, model.eval(), summary)


def init_model(cfg: RunConfig, data: TaskData) -> SequenceModel:
    """The same architecture with the weights the run started from: grucli.train builds
    the model first thing inside fork_rng + manual_seed(cfg.seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return models.build(cfg, data).eval()


# --------------------------------------------------------------------------- analysis
@dataclass
class SampleTrace:
    """One test sequence: its input and, per direction, gates and hidden states (valid steps only)."""

    index: int  # position in the test split
    x: np.ndarray  # (L,) token ids or (L, I) features
    tokens: bool
    gates: list[dict[str, np.ndarray]]  # per direction: gate -> (L, H)
    h: list[np.ndarray]  # per direction: (L, H)


@dataclass
class Inspection:
    run: LoadedRun
    layer: int
    cell: Cell
    directions: list[str]
    samples: list[SampleTrace]
    hists: dict[str, tuple[np.ndarray, np.ndarray]]  # gate (or "h") -> (bin edges, share of values per bin)
    grad: dict[str, list[np.ndarray]]  # "trained" / "init" (/ "trained_c": LSTM ‖∂L/∂c_t‖) -> per direction (T,)
    summary: dict = field(default_factory=dict)


def _cut(split: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """x, y, lengths with padding beyond the longest sequence removed (as grucli.train.forward)."""
    split = split.trim()
    return split.x, split.y, split.lengths


def resolve_layer(model: SequenceModel, layer: int | None) -> int:
    if layer is None:
        return model.layers - 1
    if not 0 <= layer < model.layers:
        raise GrucliError(f"--layer {layer}: the model has {model.layers} layer(s), choose 0..{model.layers - 1}")
    return layer


@torch.no_grad()
def sample_traces(model: SequenceModel, split: Split, layer: int, n: int) -> list[SampleTrace]:
    """The first n test sequences, cut to their own lengths."""
    x, _, lengths = _cut(split.take(slice(0, n)))
    traces = run_stack(model, x, lengths)[layer]
    names = list(model.cell.gates)
    out = []
    for b in range(len(x)):
        L = int(lengths[b]) if lengths is not None else x.shape[1]
        out.append(SampleTrace(index=b, x=x[b, :L].numpy(), tokens=model.tokens,
                               gates=[{g: tr.gates[g][b, :L].numpy() for g in names} for tr in traces],
                               h=[tr.out[b, :L].numpy() for tr in traces]))
    return out


@torch.no_grad()
def gate_statistics(model: SequenceModel, split: Split, layer: int) -> tuple[dict, dict, dict]:
    """Over every valid step of every test sequence (both directions pooled): per gate the
    mean and the shares below LOW / above HIGH; for h the mean norm, mean |h| and the share
    |h| > HIGH; and a histogram of each (bin edges, share of values per bin)."""
    gate_names = list(model.cell.gates)
    ranges: dict[str, tuple[float, float] | None] = {g: (0.0, 1.0) for g in gate_names}
    ranges["h"] = (-1.0, 1.0) if model.cell.bounded else None  # unbounded (relu): set on the first chunk
    n, steps, norm_sum = 0, 0, 0.0
    sums, low, high, counts = Counter(), Counter(), Counter(), {}
    for i in range(0, len(split), CHUNK):
        x, _, lengths = _cut(split.take(slice(i, i + CHUNK)))
        for tr in run_stack(model, x, lengths)[layer]:
            steps += int(tr.valid.sum())
            n += int(tr.valid.sum()) * tr.out.shape[-1]
            norm_sum += float(tr.out.norm(dim=-1)[tr.valid].sum())
            for g in ranges:
                v = (tr.out if g == "h" else tr.gates[g])[tr.valid].flatten()  # values at valid steps
                if ranges[g] is None:
                    ranges[g] = (0.0, max(float(v.max()), 1e-6) * 1.05)
                lo, hi = ranges[g]
                a = v.abs()  # gates are positive
                sums[g] += float(a.sum())
                low[g] += int((a < LOW).sum())
                high[g] += int((a > HIGH).sum())
                counts[g] = counts.get(g, 0) + torch.histc(v.clamp(lo, hi), BINS, lo, hi).numpy()
    n = max(n, 1)
    gates = {g: {"mean": sums[g] / n, "share_lt_0.1": low[g] / n, "share_gt_0.9": high[g] / n} for g in gate_names}
    hidden = {"mean_norm": norm_sum / max(steps, 1), "mean_abs": sums["h"] / n, "share_abs_gt_0.9": high["h"] / n}
    hists = {g: (np.linspace(*ranges[g], BINS + 1), c / max(c.sum(), 1)) for g, c in counts.items()}
    return gates, hidden, hists


def gradient_flow(model: SequenceModel, data: TaskData, layer: int, n: int = GRAD_SEQUENCES,
                  wrt: str = "h") -> tuple[list, list]:
    """Per direction: the mean ‖∂L/∂h_t‖ over up to n test sequences (T,), and the ratio of
    the mean norm at the direction's first step to that at its last step (t=1 over t=T for
    the forward direction, per sequence length): < 1 means the gradient shrinks going back."""
    x, y, lengths = _cut(data.test.take(slice(0, n)))
    norms = grad_norms(model, x, y, lengths, data.objective.loss, layer, wrt)
    curves, ratios = [], []
    last = (lengths - 1) if lengths is not None else torch.full((len(x),), x.shape[1] - 1)
    rows = torch.arange(len(x))
    for d, nrm in enumerate(norms):  # (B, T)
        curves.append(torch.nanmean(nrm, 0).numpy())
        at_start, at_end = nrm[:, 0], nrm[rows, last]
        first, final = (at_start, at_end) if d == 0 else (at_end, at_start)  # backward runs t = T..1
        denom = float(final.mean())
        ratios.append(float(first.mean()) / denom if denom > 0 else None)
    return curves, ratios


def json_safe(value):
    """JSON-safe: numpy to python, non-finite floats to None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def analyse(run: LoadedRun, layer: int | None = None, samples: int = 2) -> Inspection:
    """Everything `inspect` shows for one run, as numbers (nothing is written)."""
    model, data = run.model, run.data
    k = resolve_layer(model, layer)
    cell = model.cell
    directions = ["forward", "backward"][:model.dirs]
    gates, hidden, hists = gate_statistics(model, data.test, k)
    trained, ratio = gradient_flow(model, data, k)
    at_init, ratio_init = gradient_flow(init_model(run.cfg, data), data, k)
    summary = {
        "schema": SCHEMA, "run_id": run.run_id, "experiment": run.summary.get("experiment", run.run_dir.parent.name),
        "cell": run.cfg.model.cell, "task": run.cfg.task.name, "convention": cell.equation,
        "layer": k, "num_layers": model.layers, "directions": directions, "hidden_size": model.hidden,
        "test_sequences": len(data.test), "grad_sequences": min(GRAD_SEQUENCES, len(data.test)),
        "gates": gates, "hidden": hidden,
        "gradient": {
            "ratio": ratio[0], "ratio_init": ratio_init[0],
            "by_direction": {d: {"ratio": ratio[i], "ratio_init": ratio_init[i]} for i, d in enumerate(directions)},
            "curves": {d: {"trained": trained[i], "init": at_init[i]} for i, d in enumerate(directions)},
        },
    }
    grad = {"trained": trained, "init": at_init}
    if len(cell.states) > 1:  # a memory (LSTM's c) is where gradient is meant to flow back
        memory, memory_ratio = gradient_flow(model, data, k, wrt="c")
        grad["trained_c"] = memory
        summary["gradient"]["cell_state"] = {d: {"ratio": memory_ratio[i], "curve": memory[i]}
                                             for i, d in enumerate(directions)}
    return Inspection(run, k, cell, directions, sample_traces(model, data.test, k, samples), hists, grad, summary)


# --------------------------------------------------------------------------- comparing cells
_MISSING = object()


def _lookup(config: dict, key: str):
    """The value at dotted `key` (task.seq_len) in a run's config, or _MISSING."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _matches(config: dict, where: dict) -> bool:
    """Every dotted key of `where` (task.seq_len: 60) has that value in the run's config."""
    return all((v := _lookup(config, key)) == want or str(v) == str(want) for key, want in where.items())


def pick_runs(exp_dir: Path, where: dict | None = None) -> dict[str, Path]:
    """One finished run with weights per cell, all on the same task config when possible:
    the task config shared by the most cells wins (ties: the first in the folder); within a
    cell the lowest seed. `where` ({"task.seq_len": 60}) keeps only runs whose config has
    those values."""
    runs, known = [], set()
    for run_dir in sorted(p for p in Path(exp_dir).iterdir() if p.is_dir()):
        s = store.read_summary(run_dir)
        if s:
            known |= {k for k in (where or {}) if _lookup(s["config"], k) is not _MISSING}
        if s and s.get("status") == "ok" and (run_dir / store.WEIGHTS).is_file() and _matches(s["config"], where or {}):
            runs.append((s["config"]["model"]["cell"], json.dumps(s["config"]["task"], sort_keys=True), s["seed"], run_dir))
    unknown = [k for k in (where or {}) if k not in known]
    if unknown:
        raise GrucliError(f"--where {unknown[0]}: no run in {exp_dir} has this config key "
                          "(keys look like task.seq_len, model.cell, train.lr)")
    if not runs:
        which = " matching " + ", ".join(f"{k}={v}" for k, v in where.items()) if where else ""
        raise GrucliError(f"{exp_dir}: no finished run with weights{which} to compare")
    cells_per_task = Counter(task for task, _ in {(t, c) for c, t, _, _ in runs})
    best_task = max(cells_per_task, key=lambda t: (cells_per_task[t], -min(i for i, r in enumerate(runs) if r[1] == t)))
    chosen: dict[str, Path] = {}
    for cell, task, seed, run_dir in sorted(runs, key=lambda r: (r[1] != best_task, r[2], r[3].name)):
        chosen.setdefault(cell, run_dir)
    return {c: chosen[c] for c in cells.order(chosen)}


