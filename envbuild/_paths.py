"""Path safety: every path a model folder names must stay inside it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from envbuild.errors import InputError
from envbuild.findings import Location


def inside(root: Path, relative: str, *, location: Location) -> Path:
    """Resolve ``relative`` against ``root``; refuse absolute paths, ``..`` escapes and
    symlinks that lead out of ``root``. Does not require the path to exist."""
    if not isinstance(relative, str) or not relative.strip():
        raise InputError(
            "empty or non-text path",
            hint="name a file inside the model folder",
            location=location,
            code="EB104",
        )
    if "\x00" in relative:
        raise InputError("path contains a NUL byte", location=location, code="EB104")
    if (
        os.path.isabs(relative)
        or PurePosixPath(relative).is_absolute()
        or relative.startswith("\\")
    ):
        raise InputError(
            f"absolute path {relative!r} is not allowed",
            hint="paths in a model folder must be relative to the folder",
            location=location,
            code="EB104",
        )
    base = root.resolve()
    try:
        target = (base / relative).resolve()
        target.exists()  # a name the OS refuses (too long, ...) fails here, not later
    except (OSError, ValueError) as exc:
        raise InputError(
            f"path {relative[:80]!r} cannot be used: {getattr(exc, 'strerror', None) or exc}",
            hint="name a file inside the model folder",
            location=location,
            code="EB104",
        ) from None
    if target != base and base not in target.parents:
        via_link = Path(os.path.normpath(base / relative)) != target
        raise InputError(
            f"path {relative!r} leaves the model folder"
            + (" through a symbolic link" if via_link else ""),
            hint="keep every file the MLmodel names inside the model folder",
            location=location,
            code="EB104",
        )
    return target


def relative_to(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
