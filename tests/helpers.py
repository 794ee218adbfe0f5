"""What every test module shares: the project's folders and one way to run the CLI.

Importable as ``tests.helpers`` (pytest's ``pythonpath`` puts the project root on sys.path);
the fixtures built on these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"
SCHEMAS = ROOT / "envbuild" / "schemas"


def example_names() -> list[str]:
    return sorted(p.parent.name for p in EXAMPLES.glob("*/MLmodel"))


def run_envbuild(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """``python -m envbuild ARGS`` in a child, output captured, exit code not checked.

    ``env`` is the child's whole environment (default: this process's); the timeout only
    keeps a hung build from hanging the suite.
    """
    return subprocess.run(
        [sys.executable, "-m", "envbuild", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
        cwd=cwd,
        timeout=timeout,
    )


def require_python(xy: str) -> Path:
    """The interpreter envbuild would use for Python ``xy`` (PATH, then pyenv), or skip the
    test naming what is missing (in CI a skip fails, tests/conftest.py)."""
    import pytest

    from envbuild.build import find_python
    from envbuild.errors import EnvbuildError

    try:
        python, _ = find_python(xy, xy)
    except EnvbuildError as exc:
        pytest.skip(f"needs Python {xy}: {exc}")
    return python
