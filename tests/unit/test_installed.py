"""Inspecting an interpreter's environment (in-process and by running the script)."""

from __future__ import annotations

import ast
import platform
import sys
from pathlib import Path

import pytest

from envbuild._scripts import introspect as _introspect
from envbuild.errors import ExitCode, ToolError
from envbuild.installed import inspect_env, introspection_source


def test_in_process_environment() -> None:
    env = inspect_env()
    assert env.python_version == platform.python_version()
    assert {"json", "os", "sys", "pickle"} <= env.stdlib
    assert env.is_stdlib("collections.abc") and not env.is_stdlib("pytest")
    pytest_dist = env.get("pytest")
    assert pytest_dist is not None and pytest_dist.version == pytest.__version__
    assert {"pytest", "_pytest"} <= set(pytest_dist.top_level)
    assert [d.name for d in env.providers("_pytest.config")] == ["pytest"]
    assert "pluggy" in {r.name for r in env.requirements_of("pytest")}
    assert {"pluggy", "iniconfig"} <= env.closure("pytest")
    assert "pytest" not in env.closure("pytest")
    assert env.markers["python_version"] == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_subprocess_matches_in_process() -> None:
    here = inspect_env()
    there = inspect_env(sys.executable)
    assert {n: d.version for n, d in there.distributions.items()} == {
        n: d.version for n, d in here.distributions.items()
    }
    assert there.stdlib == here.stdlib
    assert there.get("packaging") == here.get("packaging")


def test_missing_interpreter_is_an_environment_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as err:
        inspect_env(tmp_path / "no-python")
    assert err.value.code == "EB910"
    assert err.value.exit_code is ExitCode.ENVIRONMENT


def test_broken_interpreter_output(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho not json\n")
    fake.chmod(0o755)
    with pytest.raises(ToolError) as err:
        inspect_env(fake)
    assert err.value.code == "EB911"


def test_scripts_are_python_3_8_syntax() -> None:
    # they run inside training environments and image builds as old as Python 3.7
    ast.parse(introspection_source(), feature_version=(3, 7))
    scripts = sorted(Path(_introspect.__file__).parent.glob("*.py"))
    assert {p.name for p in scripts} >= {"introspect.py", "trace.py", "bytecode.py"}
    for script in scripts:
        ast.parse(script.read_text(), feature_version=(3, 7), filename=str(script))


def test_metadata_headers_keep_whitespace_continuations() -> None:
    text = (
        "Metadata-Version: 2.4\nName: demo\nLicense: line one\n        \n"
        "        line two\nRequires-Dist: numpy<3\nRequires-Dist: pandas; extra == 'x'\n\n"
        "Requires-Dist: not-a-header\n"
    )
    headers = _introspect._headers(text)
    assert headers["requires-dist"] == ["numpy<3", "pandas; extra == 'x'"]
    assert headers["name"] == ["demo"]


def test_egg_requires_sections() -> None:
    text = "numpy\n[plot]\nmatplotlib\n[:python_version < '3.9']\nimportlib-metadata\n"
    assert _introspect._egg_requires(text) == [
        "numpy",
        'matplotlib; extra == "plot"',
        "importlib-metadata; (python_version < '3.9')",
    ]
