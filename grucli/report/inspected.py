"""What `grucli inspect` left in the results folders, for the report's "Inside the cells"
section: per-run gate and gradient numbers (<run_dir>/inspect/inspect.json) and the
side-by-side figures of an experiment (<experiment>/inspect/compare_*.png).

Read through grucli.inspect.files (plain JSON, the results folder is the interface), so
the report never imports torch. Absent or unreadable inspect files leave the section out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from grucli.inspect.files import compare_figures, read_inspect_summary
from grucli.numbers import NONE, num, share
from grucli.store.reader import OK


@dataclass
class Inspected:
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per inspected run
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (png, caption) per compare figure


def collect_inspect(runs: pd.DataFrame, experiments: list[dict]) -> Inspected:
    out = Inspected()
    for exp in experiments:
        for png, what in compare_figures(exp["path"]):
            out.figures.append((png, f"{exp['name']}: {what} ({png.stem}, grucli inspect)"))
    rows = []
    finished = runs[runs["state"] == OK] if len(runs) else runs
    for r in finished.itertuples():
        data = read_inspect_summary(r.run_dir)
        if data is None:
            continue
        grad = data.get("gradient") or {}
        gates = data.get("gates") or {}
        rows.append({"experiment": r.experiment, "run_id": r.run_id, "task": r.task, "cell": r.cell, "seed": r.seed,
                     "layer": data.get("layer"), "grad_ratio": grad.get("ratio"), "grad_ratio_init": grad.get("ratio_init"),
                     "hidden_mean_norm": (data.get("hidden") or {}).get("mean_norm"),
                     **{f"gate_{g}_{k}": v.get(k) for g, v in gates.items() if isinstance(v, dict)
                        for k in ("mean", "share_lt_0.1", "share_gt_0.9")}})
    out.rows = pd.DataFrame(rows)
    return out


def display(rows: pd.DataFrame) -> pd.DataFrame:
    """Per run: gradient ratio trained and at init, ‖h‖, each gate's mean [share < 0.1 | > 0.9]."""
    if rows.empty:
        return rows
    gates = sorted({c.split("_")[1] for c in rows.columns if c.startswith("gate_")})

    def gate_text(row, g):
        mean = row.get(f"gate_{g}_mean")
        if mean is None or mean != mean:
            return NONE
        lo, hi = row.get(f"gate_{g}_share_lt_0.1"), row.get(f"gate_{g}_share_gt_0.9")
        return f"{num(mean)} [{share(lo)} | {share(hi)}]"

    out = pd.DataFrame({"run": rows["experiment"] + "/" + rows["run_id"], "cell": rows["cell"],
                        "seed": rows["seed"].map(num), "layer": rows["layer"].map(num),
                        "grad ratio (trained)": rows["grad_ratio"].map(num),
                        "grad ratio (init)": rows["grad_ratio_init"].map(num),
                        "mean ‖h‖": rows["hidden_mean_norm"].map(num)})
    for g in gates:
        out[f"gate {g}: mean [<0.1 | >0.9]"] = [gate_text(r, g) for r in rows.to_dict("records")]
    return out
