"""The README's first command, run as written on a fresh machine: a python:3.11-slim
container holding only the repository's tracked files (no SSL_CERT_FILE, no caches)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
