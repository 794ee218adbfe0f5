"""Every runtime dependency pyproject.toml declares is imported by the package: a declared
one that nothing uses only costs every install (and its own Python floor)."""

from __future__ import annotations

import ast
import importlib.metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from envbuild._compat import tomllib
from tests.helpers import ROOT


def imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "envbuild").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.partition(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.partition(".")[0])
    return names


def import_names(dist: str) -> set[str]:
    provided = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) == canonicalize_name(dist) for d in dists)
    }
    # a dependency not installed here (its marker excludes this Python): its own name
    return provided or {canonicalize_name(dist).replace("-", "_")}


def test_every_runtime_dependency_is_imported() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    imported = imported_top_levels()
    unused = [
        str(req)
        for req in map(Requirement, project["dependencies"])
        if not import_names(req.name) & imported
    ]
    assert unused == []
