"""The README's first command, run as written on a fresh machine: a python:3.11-slim
container holding only the repository's tracked files (no SSL_CERT_FILE, no caches); and
its "Python API" example, run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_readme_first_command_in_a_fresh_container(tmp_path: Path) -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    command = blocks[0].strip()
    assert command.startswith("python3 -m pip install . && envbuild ")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    src = tmp_path / "src"
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name, follow_symlinks=False)
    done = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{src}:/src:ro", "python:3.11-slim", "sh", "-c",
         f"cp -r /src /tmp/s && cd /tmp/s && {command}"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "examples/sklearn-credit: ok (" in done.stdout
    assert "examples/pyfunc-custom: ok (" in done.stdout


@pytest.mark.network
def test_readme_python_api_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mlflow.pyfunc.model 0" in done.stdout
    assert "examples/sklearn-credit ok" in done.stdout
    assert re.search(r"^\d+ pins for Python 3\.12", done.stdout, flags=re.M), done.stdout
    assert "python:3.11-slim False" in done.stdout
