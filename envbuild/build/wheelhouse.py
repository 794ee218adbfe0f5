"""The wheelhouse: every locked wheel for the target Python and platform, downloaded on
this machine (pip, via envbuild/_adapters/pip.py) so the image build needs no index."""

from __future__ import annotations

import logging
from pathlib import Path

from envbuild._adapters import pip as _pip
from envbuild.errors import FailedError
from envbuild.output import write_atomic
from envbuild.resolve.lock import Lock

log = logging.getLogger("envbuild")


def _platform_tags(platform: str, python_xy: str) -> list[str]:
    arch = "x86_64" if platform.endswith("amd64") else "aarch64"
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(39, 16, -1)]
    tags += [f"manylinux2014_{arch}", f"linux_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    return tags


def download_wheelhouse(lock: Lock, directory: Path) -> list[Path]:
    """Download every locked wheel for the target Python and platform into ``directory``
    (pip download: --only-binary, --platform, --python-version; hashes checked)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock_file = directory / "requirements.lock"
    write_atomic(lock_file, lock.text)
    xy = lock.python_version
    platforms = [*_platform_tags(lock.platform, xy), "any"]
    log.info("downloading the wheelhouse for Python %s on %s", xy, lock.platform)
    done = _pip.download(lock_file, directory, python_xy=xy, platforms=platforms)
    lock_file.unlink(missing_ok=True)
    lock_file.unlink(missing_ok=True)
    if not done.ok:
        tail = done.tail(3)
        raise FailedError(
            "downloading the wheelhouse failed: " + (tail[-1] if tail else "pip download failed"),
            hint="every locked package needs a wheel for the target platform; "
            + " | ".join(tail[:-1]),
            code="EB803",
        )
    return sorted(directory.glob("*.whl"))
