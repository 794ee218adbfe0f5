"""Shared fixtures: the example model folders and the broken copies, as cases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"


def example_names() -> list[str]:
    return sorted(p.parent.name for p in EXAMPLES.glob("*/MLmodel"))


@pytest.fixture
def copy_model(tmp_path: Path):
    """Copy a model folder (an example name, or a path) into tmp_path and return it."""

    def _copy(name_or_path: str | Path) -> Path:
        src = Path(name_or_path)
        if not src.is_absolute():
            src = EXAMPLES / str(name_or_path)
        dst = tmp_path / src.name
        shutil.copytree(src, dst, symlinks=True)
        return dst

    return _copy


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: the Docker, venv and network tests must run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips fail CI", red=True)
        session.exitstatus = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ files from the current output instead of comparing",
    )
