"""The environment a model declares, as one value: EnvSpec and its parts. Every
requirement remembers the file, field and line it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import canonicalize_name

from envbuild._compat import StrEnum
from envbuild._redact import redact
from envbuild.findings import Location


class EnvFrom(StrEnum):
    """Which of a model's environment files envbuild follows (``--env-from``)."""

    AUTO = "auto"  # MLflow's virtualenv path, unless conda.yaml alone agrees with MLmodel
    CONDA = "conda"  # conda.yaml: what Azure ML and MLflow's conda env manager build from
    REQUIREMENTS = "requirements"  # python_env.yaml + requirements.txt: MLflow's virtualenv


class ReqKind(StrEnum):
    NAMED = "named"  # name[extras] specifier ; marker   (or name @ url)
    URL = "url"  # a bare archive URL
    PATH = "path"  # a local file or folder
    VCS = "vcs"  # git+https://...
    EDITABLE = "editable"  # -e ...


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One requirement line with where it came from and, for inferred ones, why."""

    raw: str
    kind: ReqKind
    requirement: PkgRequirement | None
    location: Location
    reasons: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        return canonicalize_name(self.requirement.name) if self.requirement else None

    @property
    def pinned_version(self) -> str | None:
        """The version of an ``==`` pin (a single exact specifier), else None."""
        if self.requirement is None:
            return None
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requirement": self.raw,
            "kind": self.kind.value,
            "specifier": str(self.requirement.specifier) if self.requirement else None,
            "marker": str(self.requirement.marker)
            if self.requirement and self.requirement.marker
            else None,
            "file": self.location.file,
            "field": self.location.field,
            "line": self.location.line,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, kw_only=True)
class PipOption:
    """An option line: --index-url, --extra-index-url, --find-links, --trusted-host, ..."""

    option: str
    value: str | None
    location: Location

    def to_json(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "value": redact(self.value) if self.value else None,
            "file": self.location.file,
            "line": self.location.line,
        }


@dataclass(frozen=True, kw_only=True)
class CondaDep:
    """A conda match spec such as ``python=3.8.5``, ``numpy>=1.20,<2`` or
    ``conda-forge::pandas``."""

    raw: str
    name: str
    channel: str | None
    version: str | None  # the version part as written, conda syntax
    build: str | None
    location: Location

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.raw,
            "channel": self.channel,
            "version": self.version,
            "file": self.location.file,
            "line": self.location.line,
        }


@dataclass(frozen=True, kw_only=True)
class PythonPin:
    version: str  # as written: "3.8.12", "3.8", "3.10.*"
    location: Location


@dataclass(frozen=True, kw_only=True)
class EnvSpec:
    """The environment of a model: target Python, pip requirements, conda packages."""

    python: PythonPin | None = None
    python_pins: tuple[PythonPin, ...] = ()  # every place that names a Python, to compare
    requirements: tuple[Requirement, ...] = ()
    constraints: tuple[Requirement, ...] = ()
    build_dependencies: tuple[Requirement, ...] = ()
    conda: tuple[CondaDep, ...] = ()
    channels: tuple[str, ...] = ()
    options: tuple[PipOption, ...] = ()
    files: tuple[str, ...] = ()
    name: str | None = None

    def named(self) -> dict[str, list[Requirement]]:
        out: dict[str, list[Requirement]] = {}
        for req in self.requirements:
            if req.name:
                out.setdefault(req.name, []).append(req)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "python": self.python.version if self.python else None,
            "python_source": _loc_json(self.python.location) if self.python else None,
            "python_pins": [
                {"version": p.version, **_loc_json(p.location)} for p in self.python_pins
            ],
            "requirements": [r.to_json() for r in self.requirements],
            "constraints": [r.to_json() for r in self.constraints],
            "build_dependencies": [r.to_json() for r in self.build_dependencies],
            "conda": [c.to_json() for c in self.conda],
            "channels": list(self.channels),
            "options": [o.to_json() for o in self.options],
            "files": list(self.files),
        }


def _loc_json(loc: Location) -> dict[str, Any]:
    return {"file": loc.file, "field": loc.field, "line": loc.line}
