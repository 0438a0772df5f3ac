"""The import graph of fomm, computed from the source: no cycles, and the model and data layers
import nothing from the layers above them.

Every ``import`` counts, at module level or inside a function (an import deferred to a function
still ties the two files together). ``from fomm.x import y`` is an arrow to ``fomm.x.y`` when ``y``
is a submodule, else to ``fomm.x``. Arrows to and from ``fomm`` itself (``fomm/__init__.py``, whose
public names are lazy strings) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fomm

ROOT = Path(fomm.__file__).parent

# What the model and data layers may import (besides themselves).
LOWER_LAYERS = ("fomm.models", "fomm.data", "fomm.config", "fomm.errors", "fomm.atomic", "fomm.cpu")
# A command module (``X/cli.py``) is the user-facing layer placed beside the code it drives: it may
# also use the argparse helpers.
COMMAND_HELPERS = ("fomm.cli_args",)


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("fomm", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` is, or the nearest package above it that is one (None: not fomm)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The fomm modules ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_target(a.name, modules) for a in node.names if a.name.split(".")[0] == "fomm")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            if base.split(".")[0] != "fomm":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else _target(base, modules))
    found.discard(None)
    found.discard(module)
    return {m for m in found if m != "fomm"}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {m: imports_of(m, p, modules) for m, p in modules.items() if m != "fomm"}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_function_level_and_submodule_imports():
    graph = import_graph()
    assert "fomm.models.checkpoint" in graph["fomm.animation.pipeline"]  # imported inside a function
    assert "fomm.models.registry" in graph["fomm.hub.cli"]  # from fomm.models.registry import ...
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_cycles():
    found = [sorted(c) for c in cycles(import_graph())]
    assert not found, f"import cycles among fomm modules: {found}"


def test_models_and_data_import_nothing_above_them():
    graph = import_graph()
    upward = {
        f"{m} -> {t}"
        for m, targets in graph.items()
        if _in(m, ("fomm.models", "fomm.data"))
        for t in targets
        if not _in(t, LOWER_LAYERS + (COMMAND_HELPERS if m.endswith(".cli") else ()))
    }
    assert not upward, f"imports from the model/data layers upward: {sorted(upward)}"
