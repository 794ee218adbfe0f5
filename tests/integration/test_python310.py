"""envbuild installed and run on the oldest Python it declares (requires-python >= 3.10):
what a pipx or uvx install on Ubuntu 22.04 gets. The test suite runs on 3.11+, so this is
the one place an API newer than 3.10 (enum.StrEnum, tomllib, ...) would show."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from envbuild._adapters.uv import uv_bin
from tests.helpers import EXAMPLES, ROOT, require_python

OLDEST = "3.10"


@pytest.fixture(scope="module")
def envbuild310(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The envbuild script of a Python 3.10 venv with this checkout installed (not editable:
    the wheel's contents, templates included, are what runs)."""
    python = require_python(OLDEST)  # PATH or pyenv has it, or this skips (CI: fails)
    venv = tmp_path_factory.mktemp("py310") / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    for cmd in (
        [uv_bin(), "venv", "-q", "--python", str(python), str(venv)],
        [uv_bin(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(ROOT)],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin" / "envbuild"


@pytest.mark.venv
@pytest.mark.network
def test_show_runs_on_python_310(envbuild310: Path) -> None:
    done = subprocess.run([str(envbuild310), "show", str(EXAMPLES / "sklearn-credit")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loader     mlflow.sklearn" in done.stdout
    assert "scikit-learn==1.9.1" in done.stdout


@pytest.mark.venv
@pytest.mark.network
def test_check_offline_runs_on_python_310(envbuild310: Path, tmp_path: Path) -> None:
    model = str(EXAMPLES / "pyfunc-custom")
    done = subprocess.run([str(envbuild310), "check", "--offline", model],
                          capture_output=True, text=True, check=False, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # a severity prints as its value (str() of the StrEnum), not as "Severity.WARNING"
    assert "ok (1 finding(s)" in done.stdout and "WARNING EB230" in done.stdout
    # [tool.envbuild] in pyproject.toml is read with tomllib on 3.11+, tomli before
    (tmp_path / "pyproject.toml").write_text('[tool.envbuild]\nignore = ["EB230"]\n')
    again = subprocess.run([str(envbuild310), "check", "--offline", model],
                           capture_output=True, text=True, check=False, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "ok (0 finding(s)" in again.stdout and "EB230" not in again.stdout
