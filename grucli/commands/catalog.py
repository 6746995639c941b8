"""`grucli tasks` and `grucli cells`: what the registries hold."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from grucli.commands.common import clean_errors, console

HIDDEN_KEYS = {"name", "content_sha256"}  # set by the registry / the loader, never by hand


@clean_errors
def tasks() -> None:
    """List every registered task with its kind, keys and what it measures.

    Example:

        grucli tasks
    """
    from grucli.tasks import TASKS

    table = Table("task", "kind", "what it is / data", "baseline", "keys (defaults)")
    for name, task in TASKS.items():
        keys = ", ".join(f"{k}={'(required)' if f.is_required() else f.default}"
                         for k, f in task.config.model_fields.items() if k not in HIDDEN_KEYS)
        data = f"{task.summary}\n[dim]data: {escape(task.source)}" + (f"; {escape(task.sizes)}" if task.sizes else "") + "[/]"
        baseline = task.measure_baseline() if task.measure_baseline else task.baseline
        table.add_row(name, task.kind, data, baseline, keys)
    console.print(table)


@clean_errors
def cells() -> None:
    """List every registered recurrent cell: what it is, its parameters per layer and
    direction in closed form (I = layer input size, H = hidden size), and its implementations.

    Example:

        grucli cells
    """
    from grucli.cells import CELLS

    table = Table("cell", "what it is", "parameters per layer and direction", "gates", "impls (auto: first available)")
    for name, cell in CELLS.items():
        gates = ", ".join(f"{g} ({role})" for g, role in cell.gates.items()) or "none"
        table.add_row(name, f"{cell.summary}\n[dim]{escape(cell.citation)}[/]", cell.formula, gates, ", ".join(cell.impls))
    console.print(table)
