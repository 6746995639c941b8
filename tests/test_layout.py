"""The structure holds: no import cycle among grucli's modules, no branch on a cell's name
outside grucli/cells, the report and the cell registry load without torch, and run ids of
the shipped experiments are the ones users' results folders already hold."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from synthetic_results import write_experiment

import grucli
from grucli.cells import CELLS
from grucli.config import load_experiment
from grucli.grid import expand

PACKAGE = Path(grucli.__file__).parent
PACKAGE_NAME = "grucli"


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules) -> set[str]:
    """grucli modules `path` imports anywhere: at module level and inside functions (an
    import inside a function still ties the two modules together; it only runs later).
    `from grucli.x import y` counts as importing grucli.x.y when that is a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("grucli")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("grucli"):
                out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    # The root package is left out: every module imports it implicitly (its parent), and its
    # lazy front door (grucli.compare, .tune, .load, PEP 562) reaches the API only on use.
    return {m for m in out if m in modules and m != name and m != PACKAGE_NAME}


def import_cycle(root: Path = PACKAGE) -> list[str] | None:
    """The first import cycle among the modules under `root`, as a path of module names."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {m: _imports(p, m, modules) for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return [*path, m, d]
            if d not in state and (found := visit(d, [*path, m])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [])):
            return found
    return None


def test_no_import_cycle_not_even_through_imports_inside_functions():
    cycle = import_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_planted_cycle_inside_a_function_is_found(tmp_path):
    """The check sees what a lazy import hides: errors.py importing config inside a function
    (config imports errors at module level) is a cycle."""
    copy = tmp_path / "grucli"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert import_cycle(copy) is None
    with open(copy / "errors.py", "a") as f:
        f.write("\n\ndef _planted():\n    from grucli.config import load_experiment\n\n    return load_experiment\n")
    cycle = import_cycle(copy)
    assert cycle is not None and "grucli.errors" in cycle and "grucli.config" in cycle


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
