"""`grucli tasks` and `grucli cells`: what the registries hold."""

from __future__ import annotations

from rich.table import Table

from grucli.commands.common import clean_errors, console
from grucli.models import CELLS
from grucli.tasks import TASKS


@clean_errors
def tasks() -> None:
    """List every registered task with its kind, keys and what it measures.

    Example:

        grucli tasks
    """
    table = Table("task", "kind", "what it is", "keys (defaults)")
    for name, task in TASKS.items():
        keys = ", ".join(f"{k}={f.default}" for k, f in task.config.model_fields.items() if k != "name")
        table.add_row(name, task.kind, task.summary, keys)
    console.print(table)


@clean_errors
def cells() -> None:
    """List every registered recurrent cell.

    Example:

        grucli cells
    """
    table = Table("cell", "gate blocks G", "what it is")
    for name, cell in CELLS.items():
        table.add_row(name, str(cell.gates), cell.summary)
    console.print(table)
