"""Python versions and target platforms: parsed once here, compared as values.

The readers keep their own checks of what a file may say (``python_version: 3.10.*`` in
python_env.yaml is a file format); everything that decides or compares a Python or a
platform goes through these functions.
"""

from __future__ import annotations

import re
from typing import Literal

from packaging.version import Version

Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
DEFAULT_PYTHON = "3.11"  # the target when the model records no Python

_MINOR = re.compile(r"3\.\d{1,2}")
_SOME_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def python_of(text: str) -> Version | None:
    """``3.8``, ``3.8.12``, ``3.10.*``, ``>=3.9`` (conda) -> a Version of X.Y[.Z]."""
    match = _SOME_VERSION.search(text)
    if not match:
        return None
    return Version(".".join(g for g in match.groups() if g is not None))


def same_python(a: Version, b: Version) -> bool:
    """Two pins agree when they share what both say: 3.11 agrees with 3.11.7."""
    n = min(len(a.release), len(b.release), 3)
    return a.release[:n] == b.release[:n]


def minor_of(text: str | None) -> tuple[int, int] | None:
    """(3, 11) for ``3.11``, ``3.11.7`` or ``3.11.*``; None when ``text`` names no Python."""
    version = python_of(text) if text else None
    return (version.major, version.minor) if version is not None else None


def is_minor(text: str) -> bool:
    """``3.11``: a target Python as images, venvs and locks name it."""
    return _MINOR.fullmatch(text) is not None


def is_platform(text: str) -> bool:
    return text in PLATFORMS
