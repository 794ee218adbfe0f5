"""No dead code in the package: module-level names nobody uses, a list that is returned
without anything ever added to it, a boolean expression decided by a constant."""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from pathlib import Path

from tests.helpers import ROOT

SOURCES = sorted((ROOT / "envbuild").rglob("*.py"))
# what may use a name the package defines: the package, its templates, tests, benchmarks
USERS = [*SOURCES, *(ROOT / "templates").glob("*.j2"), *(ROOT / "tests").rglob("*.py")]
USERS += sorted((ROOT / "benchmarks").rglob("*.py"))


@functools.cache
def trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in SOURCES]


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"


def test_every_module_level_name_is_used() -> None:
    words = Counter(w for p in USERS for w in re.findall(r"\w+", p.read_text(encoding="utf-8")))
    unused = []
    for path, tree in trees():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.decorator_list:  # registered by its decorator (click commands)
                    continue
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            for name in names:
                if name.startswith("__"):
                    continue
                if words[name] == 1:  # its definition only
                    unused.append(f"{where(path, node)} {name}")
    assert unused == []


def test_no_function_returns_a_list_it_never_fills() -> None:
    dead = []
    for path, tree in trees():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            names = [n for n in ast.walk(fn) if isinstance(n, ast.Name)]
            empty = {
                t.id
                for node in ast.walk(fn)
                if isinstance(node, (ast.Assign, ast.AnnAssign))
                and isinstance(node.value, ast.List)
                and not node.value.elts
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(t, ast.Name)
            }
            returned = {
                id(n)
                for r in ast.walk(fn)
                if isinstance(r, ast.Return) and r.value is not None
                for n in ast.walk(r.value)
            }
            for name in sorted(empty):
                uses = [n for n in names if n.id == name]
                stores = [n for n in uses if isinstance(n.ctx, ast.Store)]
                loads = [n for n in uses if isinstance(n.ctx, ast.Load)]
                if len(stores) == 1 and all(id(n) in returned for n in loads):
                    dead.append(f"{where(path, stores[0])} {fn.name}: {name}")
    assert dead == []


def test_no_boolean_expression_has_a_constant_operand() -> None:
    constant = [
        where(path, node)
        for path, tree in trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.BoolOp)
        and any(isinstance(v, ast.Constant) and isinstance(v.value, bool) for v in node.values)
    ]
    assert constant == []
