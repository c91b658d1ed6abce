# SPDX-License-Identifier: MIT
"""pvlab.exercises has no import cycles and no function-level imports (issue 11, item 5),
and its closed sets are Literal types."""

from __future__ import annotations

import ast
import typing
from pathlib import Path
from typing import get_args

import pvlab.exercises
from pvlab.exercises.kinds.l3check import Situation
from pvlab.exercises.problem import DIFFICULTIES, KIND_NAMES, KINDS, Difficulty

PKG = Path(pvlab.exercises.__file__).parent


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> tuple[set[str], list[int]]:
    """Modules of pvlab.exercises this file imports, and the lines of nested imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    nested: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if node.col_offset > 0:
                nested.append(node.lineno)
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names])
            found |= {n for n in names if n.startswith("pvlab.exercises")}
    return found, nested


def test_no_function_level_imports() -> None:
    for path in PKG.rglob("*.py"):
        _, nested = imports(path)
        assert not nested, f"{path.name}: imports inside functions at lines {nested}"


def test_the_import_graph_has_no_cycle() -> None:
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph = {name: {m for m in imports(path)[0] if m in modules and m != name}
             for name, path in modules.items()}
    # the package __init__ files re-export; the cycle question is about the modules
    graph = {k: {m for m in v if m not in ("pvlab.exercises", "pvlab.exercises.kinds")}
             for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_closed_sets_are_literals() -> None:
    assert DIFFICULTIES == get_args(Difficulty) == ("pencil", "normal", "hard")
    assert set(KINDS) == set(KIND_NAMES)
    hints = typing.get_type_hints(Situation)
    assert get_args(hints["via"]) == ("guest", "builder", "migration")
    assert get_args(hints["vcpu0"]) == ("absent", "not initialised", "initialised")
