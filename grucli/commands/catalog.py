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
        table.add_row(name, task.kind, data, task.baseline, keys)
    console.print(table)


@clean_errors
def cells() -> None:
    """List every registered recurrent cell.

    Example:

        grucli cells
    """
    from grucli.models import CELLS

    table = Table("cell", "gate blocks G", "what it is")
    for name, cell in CELLS.items():
        table.add_row(name, str(cell.gates), cell.summary)
    console.print(table)
