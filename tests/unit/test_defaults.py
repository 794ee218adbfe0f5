"""A default is written once: the Python a model without one is served on is
resolve.DEFAULT_PYTHON, and no other code spells a Python version of its own."""

from __future__ import annotations

import ast
import re

from envbuild.resolve import DEFAULT_PYTHON
from tests.helpers import ROOT

# envbuild/serve/ runs inside the image and cannot import envbuild
SOURCES = [p for p in (ROOT / "envbuild").rglob("*.py") if "serve" not in p.parent.parts]


def test_the_default_python_is_spelled_once() -> None:
    spelled = [
        f"{path.relative_to(ROOT)}: {node.value}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"3\.\d{1,2}", node.value)
    ]
    assert spelled == [f"envbuild/resolve/target.py: {DEFAULT_PYTHON}"]
