"""The package's shape (issue 12): small modules, no import cycle, no private name used across modules.

Read from the source with :mod:`ast` (nothing imported): a module-level ``import``/``from … import`` of
another ``ihs_hpc`` module is an edge of the import graph; imports inside functions (deferred on purpose)
and under ``if TYPE_CHECKING:`` are not.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ihs_hpc"
#: lines a module may have; single-algorithm numba kernels (ihs_hpc/kernels/) are exempt
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _top_level_imports(name: str, path: Path):
    """``(target module, imported names)`` of the module-level imports of ``name``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ([node] if not isinstance(node, (ast.If, ast.Try)) else ast.walk(node)):
            if isinstance(sub, ast.Import):
                for alias in sub.names:
                    yield alias.name, []
            elif isinstance(sub, ast.ImportFrom):
                target = _resolve(name, is_package, sub)
                names = [a.name for a in sub.names]
                # "from . import x" / "from .pkg import mod": the names may be modules themselves
                submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                yield target, [n for n in names if f"{target}.{n}" not in MODULES]
                for sm in submodules:
                    yield sm, []


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        edges = set()
        for target, _ in _top_level_imports(name, path):
            if target in MODULES and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle of logic; everything else is
    for pkg in [m for m, p in MODULES.items() if p.name == "__init__.py"]:
        for child in [m for m in graph if m.startswith(pkg + ".")]:
            graph[child].discard(pkg)
    assert _cycles(graph) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    path = MODULES[name]
    if path.relative_to(PACKAGE).parts[0] == "kernels":
        return
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines (> {MAX_LINES}): split it by reason to change"


def test_no_private_name_imported_across_modules():
    offenders = []
    for name, path in MODULES.items():
        for target, names in _top_level_imports(name, path):
            if not target.startswith("ihs_hpc") or target == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{name} imports {private} from {target}")
    # deferred imports inside functions count as well
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.col_offset > 0:
                target = _resolve(name, path.name == "__init__.py", node)
                if target.startswith("ihs_hpc") and target != name:
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                               and f"{target}.{a.name}" not in MODULES]  # a module's own name is no private name
                    if private:
                        offenders.append(f"{name} imports {private} from {target} (in a function)")
    assert offenders == []


def test_every_module_and_public_name_has_a_docstring():
    missing = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        if not ast.get_docstring(tree):
            missing.append(f"{name} (module)")
        for node in tree.body:
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
                    and not ast.get_docstring(node)):
                missing.append(f"{name}.{node.name}")
    assert missing == []
