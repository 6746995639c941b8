"""`grucli inspect`: gate activations, gate saturation and gradient flow of trained runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from grucli.commands.common import clean_errors, console
from grucli.numbers import num
from grucli.errors import GrucliError


def _print_summary(summary: dict) -> None:
    table = Table("gate", "mean", "share < 0.1", "share > 0.9", title=f"{summary['cell']} · layer {summary['layer']}")
    for name, g in summary["gates"].items():
        table.add_row(name, num(g["mean"]), num(g["share_lt_0.1"]), num(g["share_gt_0.9"]))
    if summary["gates"]:
        console.print(table)
    grad = summary["gradient"]
    console.print(f"{summary['cell']}: ‖∂L/∂h‖ first/last step: trained {num(grad['ratio'])}, "
                  f"at init {num(grad['ratio_init'])}; mean ‖h_t‖ {num(summary['hidden']['mean_norm'])}")


def _where(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise GrucliError(f"--where {item}: expected dotted.key=value, e.g. task.seq_len=60")
        key, text = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(text)
    return out


@clean_errors
def inspect(
    path: Path = typer.Argument(..., help="A run folder results/<experiment>/<run_id> "
                                "(or results/<experiment> with --compare)."),
    samples: int = typer.Option(2, "--samples", "-n", help="Test sequences to draw gate traces for."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write figures and JSON here instead of <path>/inspect/."),
    layer: Optional[int] = typer.Option(None, "--layer",
                                        help="Recurrent layer to inspect, 0-based (default: the last)."),
    compare: bool = typer.Option(False, "--compare",
                                 help="PATH is an experiment: one run per cell, side by side on the same inputs."),
    where: list[str] = typer.Option([], "--where", "-w",
                                    help="With --compare: only runs whose config has this value, e.g. "
                                         "--where task.seq_len=60 (repeatable). Default: the task config most "
                                         "cells share, lowest seed."),
) -> None:
    """Look inside trained runs: gate traces over time (GRU z/r, LSTM f/i/o, ‖h_t‖) under the
    input, gate saturation over the test set, and ‖∂L/∂h_t‖ back through time, trained vs
    at initialisation. Writes PNG + SVG figures and inspect.json (compare.json with --compare)
    into <path>/inspect/.

    Example:

        grucli inspect results/adding/<run_id> --samples 4 --out figs/
        grucli inspect results/adding --compare
        grucli inspect results/long_dependency --compare --where task.name=adding --where task.seq_len=60
    """
    from grucli.inspect.run import inspect_compare, inspect_run

    if compare:
        result = inspect_compare(path, out, samples, layer, _where(where))
        same = "same test inputs" if result["same_task"] else "task configs differ: each run's own test inputs"
        seeds = result["seeds"]
        runs = ", ".join(f"{c} ({r}, seed {seeds[c]})" for c, r in result["runs"].items())
        console.print(f"compared {runs}; {same}")
        if result.get("task"):
            task = ", ".join(f"{k}={v}" for k, v in result["task"].items() if v is not None)
            console.print(f"task: {task}")
        for summary in result["summaries"].values():
            _print_summary(summary)
    else:
        result = inspect_run(path, out, samples, layer)
        _print_summary(result)
    console.print(f"figures and {'compare.json' if compare else 'inspect.json'}: {result['out_dir']}")
