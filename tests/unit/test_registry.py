"""The finding-code registry: every finding is made from a declared Code, every declared
Code is in the README's table with the same summary, and a severity a code does not
declare is refused."""

from __future__ import annotations

import ast
import importlib
import pkgutil

import pytest

from envbuild.codes import all_codes
from envbuild.findings import Location, Severity, declared
from tests.helpers import ROOT


def test_no_finding_is_built_from_a_bare_code_string() -> None:
    allowed = {"findings.py", "errors.py"}
    offenders = []
    for path in sorted((ROOT / "envbuild").rglob("*.py")):
        if path.name in allowed or "serve" in path.parts or "_scripts" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Finding":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_every_declared_code_is_in_the_table_with_its_summary() -> None:
    # import every module of the package first: a stage that declares a Code but is not
    # among the modules codes.py gathers would otherwise go unnoticed
    import envbuild

    for info in pkgutil.walk_packages(envbuild.__path__, "envbuild."):
        if not info.name.endswith("__main__") and not any(
            part in info.name for part in (".serve", "._scripts")
        ):
            importlib.import_module(info.name)
    table = all_codes()
    codes = declared()
    assert codes, "no Code was declared"
    for code, decl in codes.items():
        assert table.get(code) == decl.summary, code


def test_a_severity_the_code_does_not_declare_is_refused() -> None:
    all_codes()
    code = declared()["EB410"]  # info by default, a warning when the files are large
    assert code.at(Location(file="x"), "m").severity is Severity.INFO
    assert code.at(Location(file="x"), "m", severity=Severity.WARNING).severity is Severity.WARNING
    with pytest.raises(ValueError):
        code.at(Location(file="x"), "m", severity=Severity.ERROR)


def test_every_error_code_raised_is_declared() -> None:
    """Errors carry their code as ``code="EB8xx"``: each must be a declared Code, so the
    README table lists every exit a user can meet."""
    table = all_codes()
    undeclared = []
    for path in sorted((ROOT / "envbuild").rglob("*.py")):
        if "serve" in path.parts or "_scripts" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                if kw.arg == "code" and isinstance(value, str) and value not in table:
                    undeclared.append(f"{path.relative_to(ROOT)}:{node.lineno} {value}")
    assert undeclared == []
