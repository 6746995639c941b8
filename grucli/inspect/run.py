"""`grucli inspect` end to end: rebuild and analyse runs (analysis.py), draw (figures.py),
write the figures and JSON (names in files.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from grucli import store
from grucli.errors import GrucliError
from grucli.inspect import figures
from grucli.inspect.analysis import analyse, json_safe, load_run, pick_runs
from grucli.inspect.files import COMPARE_FILE, INSPECT_DIR, SCHEMA, SUMMARY_FILE


def _out_dir(default: Path, out: str | Path | None) -> Path:
    path = Path(out) if out is not None else default / INSPECT_DIR
    if path.exists() and not path.is_dir():
        raise GrucliError(f"--out {path}: exists and is not a folder")
    return path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def inspect_run(run_dir: str | Path, out: str | Path | None = None, samples: int = 2, layer: int | None = None) -> dict:
    """Analyse one run and write its figures and inspect.json (into <run_dir>/inspect/ or
    `out`). Returns the summary, with "out_dir" added."""
    if samples < 1:
        raise GrucliError("--samples must be at least 1")
    run = load_run(run_dir)
    out_dir = _out_dir(run.run_dir, out)
    insp = analyse(run, layer, samples)
    drawn = {"gates": [figures.save(figures.gate_traces(insp, s), out_dir, f"gates_{s.index}") for s in insp.samples],
             "saturation": figures.save(figures.saturation(insp), out_dir, "saturation"),
             "gradient_flow": figures.save(figures.gradient_flow(insp), out_dir, "gradient_flow")}
    summary = json_safe({**insp.summary, "figures": drawn, "created_at": _now()})
    store.atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    return {**summary, "out_dir": str(out_dir)}


def inspect_compare(exp_dir: str | Path, out: str | Path | None = None, samples: int = 1,
                    layer: int | None = None, where: dict | None = None) -> dict:
    """Side-by-side figures of one run per cell of an experiment, on the same test inputs,
    plus compare.json (which runs, whether their task configs match, each run's summary)."""
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
    drawn = {
        "gates": [figures.save(figures.compare_gates(insps, s, same_task), out_dir, f"compare_gates_{s}")
                  for s in range(min(len(i.samples) for i in insps))],
        "saturation": figures.save(figures.compare_saturation(insps), out_dir, "compare_saturation"),
        "gradient_flow": figures.save(figures.compare_gradient_flow(insps), out_dir, "compare_gradient_flow"),
    }
    result = json_safe({"schema": SCHEMA, "experiment": exp_dir.name, "same_task": same_task,
                        "runs": {c: d.name for c, d in chosen.items()},
                        "task": insps[0].run.cfg.task.model_dump(mode="json") if same_task else None,
                        "seeds": {i.run.cfg.model.cell: i.run.cfg.seed for i in insps},
                        "summaries": {i.run.cfg.model.cell: i.summary for i in insps}, "figures": drawn,
                        "created_at": _now()})
    store.atomic_write_text(out_dir / COMPARE_FILE, json.dumps(result, indent=2))
    return {**result, "out_dir": str(out_dir)}
