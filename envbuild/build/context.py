"""The build context: the files render planned, as a deterministic tar for the Docker
engine or written into a folder (--output, BuildKit)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from envbuild._paths import inside
from envbuild.errors import InputError
from envbuild.findings import Location
from envbuild.output import write_atomic
from envbuild.render import BuildPlan

# Every file in the context gets this mtime (2000-01-01), so the tar is byte-identical.
FIXED_MTIME = 946684800


def context_tar(plan: BuildPlan) -> bytes:
    """The build context as a deterministic tar: sorted paths, fixed mtimes, root owner,
    0644/0755 modes, directories listed before their files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for f in plan.files:
            parts = f.path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    _normalise(info)
                    tar.addfile(info)
            data = f.read()
            info = tarfile.TarInfo(f.path)
            info.size = len(data)
            info.mode = 0o755 if f.executable else 0o644
            _normalise(info)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _normalise(info: tarfile.TarInfo) -> None:
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.pax_headers = {}


def write_context(plan: BuildPlan, directory: Path) -> list[Path]:
    """Write the context into ``directory`` (created if needed). Refuse a non-empty folder
    that envbuild did not write, so --output never clobbers someone's files."""
    marker = directory / ".envbuild" / "requirements.lock"
    if directory.exists() and any(directory.iterdir()) and not marker.is_file():
        raise InputError(
            f"{directory} is not empty and does not hold an envbuild build context",
            hint="name an empty or new folder for --output",
            location=Location(file=str(directory)),
            code="EB805",
        )
    written = []
    for f in plan.files:
        target = inside(directory, f.path, location=Location(file=f.path))
        write_atomic(target, f.read(), mode=0o755 if f.executable else 0o644)
        os.utime(target, (FIXED_MTIME, FIXED_MTIME))
        written.append(target)
    return written
