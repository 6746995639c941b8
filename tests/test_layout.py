"""The structure holds: no import cycle among grucli's modules, no branch on a cell's name
outside grucli/cells, the report and the cell registry load without torch, and run ids of
the shipped experiments are the ones users' results folders already hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from synthetic_results import write_experiment

import grucli
from grucli.cells import CELLS
from grucli.config import load_experiment
from grucli.grid import expand

PACKAGE = Path(grucli.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    """grucli modules imported at module level (imports inside functions run later, on use)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("grucli")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("grucli"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_no_import_cycle():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {d for d in _top_level_imports(p, m) if d in modules and d != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, d]))
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_nothing_outside_cells_compares_against_a_cell_name():
    names = set(CELLS)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "cells" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = [c for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                consts += [e for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set))
                           for e in c.elts if isinstance(e, ast.Constant)]
                if any(c.value in names for c in consts):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_the_report_and_the_cell_registry_load_without_torch(tmp_path):
    exp = write_experiment(tmp_path, "light", seq_lens=(10, 20))
    code = ("import sys\nfrom grucli.report import build_report\nimport grucli.cells\n"
            f"build_report([{str(exp)!r}], None, ('md',), ('png',))\n"
            "assert 'torch' not in sys.modules, 'the report imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_run_ids_of_shipped_experiments_are_unchanged():
    """Ids that grucli before the cells/ redesign (aed16f7) gave these files: every user's
    results folder is keyed by them, so a change here orphans finished runs."""
    assert [r.run_id for r in expand(load_experiment("experiments/adding.yaml"))] == ["585f1a431f23"]
    ids = [r.run_id for r in expand(load_experiment("experiments/long_dependency.yaml"))]
    assert len(ids) == 54 and ids[:4] == ["08b5c9f4cc35", "ea3f242ff3c7", "7e81c0d2f1ab", "34239fbb7b0c"]
