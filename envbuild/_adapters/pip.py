"""The small adapter around pip (``python -m pip`` of the running interpreter): only this
module knows pip's command line. envbuild uses it for one job, ``pip download`` of wheels
for another Python and platform (the image's wheelhouse)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from envbuild._adapters.run import Ran, run


def download(requirements: Path, dest: Path, *, python_xy: str, platforms: Sequence[str]) -> Ran:
    """``pip download`` every line of ``requirements`` (hashes checked) into ``dest``:
    wheels only, no dependencies, for CPython ``python_xy`` on any of ``platforms``."""
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
        "--only-binary", ":all:", "--python-version", python_xy, "--implementation", "cp",
        "--abi", f"cp{python_xy.replace('.', '')}", "--abi", "abi3", "--abi", "none",
        "--dest", str(dest), "-r", str(requirements),
    ]  # fmt: skip
    for tag in platforms:
        argv += ["--platform", tag]
    return run(argv)
