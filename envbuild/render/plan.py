"""What rendering takes and gives: the lock view it reads, the plan it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild._compat import StrEnum
from envbuild.findings import Finding


class BuildKind(StrEnum):
    PIP = "pip"
    CONDA = "conda"
    CUDA = "cuda"


@dataclass(frozen=True, kw_only=True)
class ContextFile:
    """One file of the build context: its path inside the context (POSIX), its bytes or the
    host file to read them from, and whether it is executable."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    executable: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass(frozen=True, kw_only=True)
class Secret:
    """A BuildKit secret: ``id`` names it at build time, ``env`` is the variable uv reads,
    ``value`` never reaches the Dockerfile or the context."""

    id: str
    env: str
    value: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    kind: BuildKind
    dockerfile: str
    files: tuple[ContextFile, ...]  # sorted by path; the Dockerfile is one of them
    base_image: str
    python_version: str
    platform: str
    labels: tuple[tuple[str, str], ...]
    lock_sha256: str
    secrets: tuple[Secret, ...] = ()
    buildkit: bool = False
    buildable: bool = True  # False for the conda and CUDA paths on this engine
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "base_image": self.base_image,
            "python_version": self.python_version,
            "platform": self.platform,
            "labels": dict(self.labels),
            "lock_sha256": self.lock_sha256,
            "buildkit": self.buildkit,
            "secrets": [s.id for s in self.secrets],
            "files": [f.path for f in self.files],
        }
