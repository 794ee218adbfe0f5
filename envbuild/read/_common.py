"""Small helpers the readers share: the EB1xx findings they build and how a file the
model folder names is read (inside the folder, existing, UTF-8 text)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envbuild._paths import inside, relative_to
from envbuild._yaml import YamlDoc, format_path
from envbuild.codes import EB102
from envbuild.errors import InputError
from envbuild.findings import Finding, Location


def jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def read_in(
    root: Path, relative: str, location: Location | None, *, hint: str
) -> tuple[Path, str, str]:
    """A file named by the model folder: inside it (path safety), existing, UTF-8 text."""
    path = inside(root, relative, location=location or Location(file=relative))
    rel = relative_to(root, path)
    if not path.is_file():
        raise InputError(
            f"{rel} does not exist",
            hint=hint,
            location=location or Location(file=rel),
            code="EB103",
        )
    return path, rel, read_text(path, rel)


def read_text(path: Path, rel: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {rel}: {exc.strerror}", location=Location(file=rel), code="EB103"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start})",
            hint="save the file as UTF-8",
            location=Location(file=rel),
            code="EB101",
        ) from None


def read_given_file(path: Path, *, what: str, hint: str) -> str:
    """A file named on the command line (a lock, a secret file), as UTF-8 text; one
    InputError naming it when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read {what}: {exc}", hint=hint, location=Location(file=str(path))
        ) from None


def bad_shape(doc: YamlDoc, path: Sequence[str | int], what: str) -> Finding:
    return EB102.at(doc.at(path), f"{format_path(path)} {what}", hint="fix the file's structure")
