"""The wheel carries the templates and the JSON schemas (built for real, then opened)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.mark.network  # python -m build fetches hatchling into an isolated env
@pytest.mark.slow
def test_wheel_carries_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("envbuild-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*") if p.is_file()
    )
    assert templates, "templates/ is empty"
    for rel in templates:
        assert f"envbuild/{rel}" in names
    assert "envbuild/py.typed" in names
    assert "envbuild/schemas/envelope-v1.schema.json" in names
    assert "envbuild/serve/__init__.py" in names
