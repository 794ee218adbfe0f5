"""A default is written once: the Python a model without one is served on is
versions.DEFAULT_PYTHON, and no other code spells a Python version of its own."""

from __future__ import annotations

import ast
import re

from envbuild.versions import DEFAULT_PYTHON
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
    assert spelled == [f"envbuild/versions.py: {DEFAULT_PYTHON}"]


def test_versions_parse_once_and_compare_as_values() -> None:
    from packaging.version import Version

    from envbuild.versions import is_minor, is_platform, minor_of, python_of, same_python

    assert python_of(">=3.9") == Version("3.9") and python_of("3.10.*") == Version("3.10")
    assert same_python(Version("3.11"), Version("3.11.7"))
    assert not same_python(Version("3.11.6"), Version("3.11.7"))
    assert minor_of("3.11.7") == (3, 11) and minor_of(None) is None and minor_of("x") is None
    assert is_minor("3.12") and not is_minor("3.12.1") and not is_minor("3.12\n")
    assert is_platform("linux/arm64") and not is_platform("linux/s390x")
