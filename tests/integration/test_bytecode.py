"""envbuild/_scripts/bytecode.py (the image build's bytecode step) in a real venv: deferred
distributions get bytecode only for what the warm imports load; the rest in full."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

import envbuild

SCRIPT = Path(envbuild.__file__).parent / "_scripts" / "bytecode.py"


def pycs(folder: Path) -> set[str]:
    return {p.name.split(".")[0] for p in (folder / "__pycache__").glob("*.pyc")}


def sources(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py")}


@pytest.mark.venv
@pytest.mark.network
def test_deferred_distribution_gets_bytecode_only_where_imported(tmp_path: Path) -> None:
    """Also: PYTHONDONTWRITEBYTECODE in the build's environment does not stop the warm
    imports from writing bytecode, a failed warm import is reported and not fatal."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--no-compile",
         "--python", str(python), "idna==3.10", "six==1.17.0"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    assert not list(site.rglob("*.pyc"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = subprocess.run(
        [str(python), str(SCRIPT), "--defer", "idna", "--warm", "idna.core,no_such_module"],
        check=True, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout  # fmt: skip
    idna = site / "idna"
    # idna.core imports idna.idnadata and idna.intranges, not idna.codec or idna.compat
    assert {"__init__", "core", "idnadata", "intranges"} <= pycs(idna)
    assert not pycs(idna) & {"codec", "compat"}, pycs(idna)
    assert pycs(idna) < sources(idna)
    assert (site / "__pycache__").is_dir() and any(
        p.name.startswith("six.") for p in (site / "__pycache__").iterdir()
    )  # six, not deferred, compiled in full
    assert "warm import of no_such_module failed: ModuleNotFoundError" in out
    assert "deferred modules of 1 distribution(s)" in out
    assert not list(tmp.iterdir())  # the warm imports' HOME is removed
