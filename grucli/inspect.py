"""`grucli inspect`: look inside a trained run -- gate activations over time, gate
saturation over the test set, and gradient flow back through time, trained vs at init.

A run folder is rebuilt exactly: config.yaml -> build_task (the same test split) ->
build_model -> the saved state_dict. Gates and ∂L/∂h_t come from grucli.gates (a step-wise
re-run of torch's own weights); figures from grucli.inspect_plots.

Outputs (stable; the report reads them):

    <run_dir>/inspect/inspect.json                   the numeric summary (SUMMARY_KEYS below)
    <run_dir>/inspect/gates_<i>.png|svg              gate traces of test sequence i (i = 0..samples-1)
    <run_dir>/inspect/saturation.png|svg             gate histograms over the test set
    <run_dir>/inspect/gradient_flow.png|svg          ‖∂L/∂h_t‖ vs t, trained and at init
    <exp_dir>/inspect/compare.json, compare_gates_<i>, compare_saturation, compare_gradient_flow

`--out DIR` writes the same files into DIR instead.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import yaml

from grucli import store
from grucli.config import RunConfig, parse_run
from grucli.errors import GrucliError
from grucli.gates import Rule, grad_norms, rule_for, run_stack
from grucli.models import SequenceModel
from grucli.tasks import Split, TaskData, build_task
from grucli.train import build_model

SCHEMA = 1
INSPECT_DIR, SUMMARY_FILE, COMPARE_FILE = "inspect", "inspect.json", "compare.json"
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
    if not run_dir.is_dir():
        raise GrucliError(f"{run_dir}: no such folder")
    if not (run_dir / store.CONFIG).is_file():
        hint = " (an experiment folder: add --compare)" if any(run_dir.glob(f"*/{store.CONFIG}")) else ""
        raise GrucliError(f"{run_dir}: not a run folder (no {store.CONFIG}){hint}")
    summary = store.read_summary(run_dir) or {}
    weights = run_dir / store.WEIGHTS
    if not weights.is_file():
        state = f"status {summary['status']}" if summary else "unfinished"
        raise GrucliError(f"{run_dir}: no weights ({store.WEIGHTS} missing, run {state}); nothing to inspect")
    try:
        raw = yaml.safe_load((run_dir / store.CONFIG).read_text())
    except yaml.YAMLError as e:
        raise GrucliError(f"{run_dir / store.CONFIG}: malformed YAML ({str(e).splitlines()[0]})") from None
    cfg = parse_run(raw if isinstance(raw, dict) else {}, str(run_dir / store.CONFIG))
    data = build_task(cfg.task)
    model = build_model(cfg, data)
    try:
        ckpt = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # corrupt file, wrong keys or shapes
        raise GrucliError(f"{weights}: cannot load the weights ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise GrucliError(f"{weights}: the weights hold NaN or inf (the run diverged); nothing to inspect")
    return LoadedRun(run_dir, cfg, data, model.eval(), summary)


def init_model(cfg: RunConfig, data: TaskData) -> SequenceModel:
    """The same architecture with the weights the run started from: grucli.train builds
    the model first thing inside fork_rng + manual_seed(cfg.seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg, data).eval()


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
    rule: Rule
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
    names = rule_for(model.cell.name).gates
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
    rule = rule_for(model.cell.name)
    ranges: dict[str, tuple[float, float] | None] = {g: (0.0, 1.0) for g in rule.gates}
    ranges["h"] = None if model.cell.name == "rnn_relu" else (-1.0, 1.0)  # relu: set on the first chunk
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
    gates = {g: {"mean": sums[g] / n, "share_lt_0.1": low[g] / n, "share_gt_0.9": high[g] / n} for g in rule.gates}
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


def _clean(value):
    """JSON-safe: numpy to python, non-finite floats to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def analyse(run: LoadedRun, layer: int | None = None, samples: int = 2) -> Inspection:
    """Everything `inspect` shows for one run, as numbers (nothing is written)."""
    model, data = run.model, run.data
    k = resolve_layer(model, layer)
    rule = rule_for(model.cell.name)
    directions = ["forward", "backward"][:model.dirs]
    gates, hidden, hists = gate_statistics(model, data.test, k)
    trained, ratio = gradient_flow(model, data, k)
    at_init, ratio_init = gradient_flow(init_model(run.cfg, data), data, k)
    summary = {
        "schema": SCHEMA, "run_id": run.run_id, "experiment": run.summary.get("experiment", run.run_dir.parent.name),
        "cell": run.cfg.model.cell, "task": run.cfg.task.name, "convention": rule.equation,
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
    if rule.n_states > 1:  # LSTM: the cell state is where its memory is meant to carry gradient back
        cell, cell_ratio = gradient_flow(model, data, k, wrt="c")
        grad["trained_c"] = cell
        summary["gradient"]["cell_state"] = {d: {"ratio": cell_ratio[i], "curve": cell[i]}
                                             for i, d in enumerate(directions)}
    return Inspection(run, k, rule, directions, sample_traces(model, data.test, k, samples), hists, grad, summary)


# --------------------------------------------------------------------------- writing
def _out_dir(default: Path, out: str | Path | None) -> Path:
    path = Path(out) if out is not None else default / INSPECT_DIR
    if path.exists() and not path.is_dir():
        raise GrucliError(f"--out {path}: exists and is not a folder")
    return path


def inspect_run(run_dir: str | Path, out: str | Path | None = None, samples: int = 2, layer: int | None = None) -> dict:
    """Analyse one run and write its figures and inspect.json (into <run_dir>/inspect/ or
    `out`). Returns the summary, with "out_dir" added."""
    from grucli import inspect_plots as plots

    if samples < 1:
        raise GrucliError("--samples must be at least 1")
    run = load_run(run_dir)
    out_dir = _out_dir(run.run_dir, out)
    insp = analyse(run, layer, samples)
    figures = {"gates": [], "saturation": None, "gradient_flow": None}
    for s in insp.samples:
        figures["gates"].append(plots.save(plots.gate_traces(insp, s), out_dir, f"gates_{s.index}"))
    figures["saturation"] = plots.save(plots.saturation(insp), out_dir, "saturation")
    figures["gradient_flow"] = plots.save(plots.gradient_flow(insp), out_dir, "gradient_flow")
    summary = _clean({**insp.summary, "figures": figures,
                      "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    store.atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    return {**summary, "out_dir": str(out_dir)}


def read_inspect_summary(run_dir: str | Path) -> dict | None:
    """The run's inspect summary (<run_dir>/inspect/inspect.json) if it exists and parses, else None.
    Figure paths in it ("figures") are relative to that inspect folder."""
    try:
        data = json.loads((Path(run_dir) / INSPECT_DIR / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


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
    from grucli.models import CELLS

    return {c: chosen[c] for c in CELLS if c in chosen}


def inspect_compare(exp_dir: str | Path, out: str | Path | None = None, samples: int = 1,
                    layer: int | None = None, where: dict | None = None) -> dict:
    """Side-by-side figures of one run per cell of an experiment, on the same test inputs,
    plus compare.json (which runs, whether their task configs match, each run's summary)."""
    from grucli import inspect_plots as plots

    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise GrucliError(f"{exp_dir}: no such folder")
    if (exp_dir / store.CONFIG).is_file():
        raise GrucliError(f"{exp_dir}: a run folder; --compare takes an experiment folder (results/<experiment>)")
    if samples < 1:
        raise GrucliError("--samples must be at least 1")
    chosen = pick_runs(exp_dir, where)
    out_dir = _out_dir(exp_dir, out)
    insps = [analyse(load_run(d), layer, samples) for d in chosen.values()]
    same_task = len({i.run.cfg.task.model_dump_json() for i in insps}) == 1
    figures = {
        "gates": [plots.save(plots.compare_gates(insps, s, same_task), out_dir, f"compare_gates_{s}")
                  for s in range(min(len(i.samples) for i in insps))],
        "saturation": plots.save(plots.compare_saturation(insps), out_dir, "compare_saturation"),
        "gradient_flow": plots.save(plots.compare_gradient_flow(insps), out_dir, "compare_gradient_flow"),
    }
    result = _clean({"schema": SCHEMA, "experiment": exp_dir.name, "same_task": same_task,
                     "runs": {c: d.name for c, d in chosen.items()},
                     "task": insps[0].run.cfg.task.model_dump(mode="json") if same_task else None,
                     "seeds": {i.run.cfg.model.cell: i.run.cfg.seed for i in insps},
                     "summaries": {i.run.cfg.model.cell: i.summary for i in insps}, "figures": figures,
                     "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    store.atomic_write_text(out_dir / COMPARE_FILE, json.dumps(result, indent=2))
    return {**result, "out_dir": str(out_dir)}
