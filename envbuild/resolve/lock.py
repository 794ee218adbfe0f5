"""The lock: every package pinned with its hashes and where it came from, rendered as a
pip requirements file (requirements.lock), and read back for ``lock --check``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from envbuild._redact import strip_credentials
from envbuild.output import header
from envbuild.read import PipOption
from envbuild.resolve.target import Target

LOCK_NAME = "requirements.lock"

CODES: dict[str, str] = {
    "EB340": "the lock file is stale: resolving again gives a different lock",
}


@dataclass(frozen=True, kw_only=True)
class Pin:
    name: str  # canonical name
    version: Version
    hashes: tuple[str, ...]
    requested_by: tuple[str, ...]  # "requirements.txt:3", "envbuild serving stack", "pandas"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version),
            "hashes": list(self.hashes),
            "requested_by": list(self.requested_by),
        }


@dataclass(frozen=True, kw_only=True)
class Lock:
    target: Target
    pins: tuple[Pin, ...]
    text: str  # the requirements.lock content
    options: tuple[PipOption, ...]  # index/find-links lines needed (values unredacted)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def pin(self, name: str) -> Pin | None:
        key = canonicalize_name(name)
        return next((p for p in self.pins if p.name == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "sha256": self.sha256,
            "pins": [p.to_json() for p in self.pins],
            "options": [o.to_json() for o in self.options],
        }


def render_lock(
    pins: Sequence[Pin],
    *,
    target: Target,
    options: Sequence[PipOption],
    command: str,
    sources: str,
    exclude_newer: str | None = None,
) -> str:
    """The requirements.lock text: header, option lines, one pin per package with every
    hash, and where each came from. Sorted and free of timestamps: the same inputs give
    the same bytes."""
    out = [
        header(command),
        f"# target: {target.describe()} ({target.uv_platform})\n",
        f"# from: {sources}\n",
        "# install: pip install --require-hashes -r requirements.lock\n",
    ]
    if exclude_newer:
        out.insert(3, f"# index as of: {exclude_newer} (files uploaded later are ignored)\n")
    seen: set[str] = set()
    for opt in options:
        line = f"{opt.option} {strip_credentials(opt.value)}" if opt.value else opt.option
        if line not in seen:
            seen.add(line)
            out.append(line + "\n")
    for pin in pins:
        hashes = list(pin.hashes)
        out.append(f"{pin.name}=={pin.version}" + (" \\\n" if hashes else "\n"))
        for i, h in enumerate(hashes):
            out.append(f"    --hash={h}" + (" \\\n" if i < len(hashes) - 1 else "\n"))
        if pin.requested_by:
            out.append(f"    # via {', '.join(pin.requested_by)}\n")
    return "".join(out)


def parse_lock(text: str) -> dict[str, str]:
    """name -> version of a requirements.lock (for --check diffs)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            out[canonicalize_name(match.group(1))] = match.group(2)
    return out
