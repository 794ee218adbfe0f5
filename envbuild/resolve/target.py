"""The target a model is resolved for: a Python version and a platform, taken from the
command line or from the model's own files (python_env.yaml, conda.yaml, MLmodel)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from packaging.markers import default_environment
from packaging.version import InvalidVersion, Version

from envbuild._adapters import uv as _uv
from envbuild.errors import InputError
from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import EnvSpec, ModelFolder
from envbuild.versions import (
    DEFAULT_PYTHON,
    PLATFORMS,
    Platform,
    python_of,
    same_python,
)

EB300 = Code(
    "EB300",
    Severity.WARNING,
    "the Python versions in MLmodel, conda.yaml and python_env.yaml disagree",
)
EB307 = Code(
    "EB307", Severity.WARNING, "no Python version recorded: the default target Python is assumed"
)
CODES: dict[str, str] = table(EB300, EB307)


@dataclass(frozen=True, kw_only=True)
class Target:
    python: Version  # X.Y or X.Y.Z; need not be installed
    platform: Platform = "linux/amd64"

    @property
    def uv_platform(self) -> str:
        return _uv.UV_PLATFORMS[self.platform]

    @property
    def machine(self) -> str:
        return "x86_64" if self.platform == "linux/amd64" else "aarch64"

    def describe(self) -> str:
        return f"Python {self.python} on {self.platform}"

    def marker_env(self) -> dict[str, str]:
        """The PEP 508 marker environment of the target (CPython on manylinux)."""
        env = cast(dict[str, str], dict(default_environment()))
        rel = self.python.release
        full = ".".join(str(p) for p in (*rel, 0, 0)[:3])
        env.update(
            {
                "python_version": f"{rel[0]}.{rel[1] if len(rel) > 1 else 0}",
                "python_full_version": full,
                "implementation_name": "cpython",
                "implementation_version": full,
                "platform_python_implementation": "CPython",
                "os_name": "posix",
                "sys_platform": "linux",
                "platform_system": "Linux",
                "platform_machine": self.machine,
                "platform_release": "",
                "platform_version": "",
            }
        )
        return env

    def to_json(self) -> dict[str, Any]:
        return {
            "python": str(self.python),
            "platform": self.platform,
            "uv_platform": self.uv_platform,
        }


def target_for(
    folder: ModelFolder,
    *,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    env: EnvSpec | None = None,
) -> tuple[Target, tuple[Finding, ...]]:
    """The target to resolve for: ``python_version`` when given, else the model's Python
    (python_env.yaml, conda.yaml, MLmodel in that order; ``env`` replaces the model's
    EnvSpec); and findings when the model's files disagree about the Python."""
    if platform not in PLATFORMS:
        raise InputError(
            f"unknown platform {platform!r}",
            hint="use linux/amd64 or linux/arm64",
            location=Location(field="--platform"),
            code="EB100",
        )
    spec = env or folder.env.spec
    findings: list[Finding] = []
    pins = [(p, python_of(p.version)) for p in folder.env.spec.python_pins]
    known = [(p, v) for p, v in pins if v is not None]
    if known:
        first_pin, first = known[0]
        others = [(p, v) for p, v in known[1:] if not same_python(first, v)]
        if others:
            listed = ", ".join(f"{v} ({p.location})" for p, v in known)
            findings.append(
                EB300.at(
                    others[0][0].location,
                    f"the model's files name different Pythons: {listed}",
                    hint=f"envbuild targets {first} ({first_pin.location}); make the files "
                    "agree, or pass --python-version",
                )
            )
    if python_version is not None:
        parsed = python_of(python_version)
        if parsed is None or not re.fullmatch(r"\d+\.\d+(\.\d+)?", python_version.strip()):
            raise InputError(
                f"--python-version {python_version!r} is not X.Y or X.Y.Z",
                hint="for example --python-version 3.11",
                location=Location(field="--python-version"),
                code="EB100",
            )
        python = parsed
    elif spec.python is not None and python_of(spec.python.version) is not None:
        python = cast(Version, python_of(spec.python.version))
    else:
        python = Version(DEFAULT_PYTHON)
        findings.append(
            EB307.at(
                Location(file="MLmodel", field="flavors.python_function.python_version"),
                f"no Python version recorded; targeting Python {DEFAULT_PYTHON}",
                hint="pass --python-version, or record python in python_env.yaml",
            )
        )
    return Target(python=python, platform=platform), tuple(findings)


def version_of(text: str | None) -> Version | None:
    """``text`` as a Version; None when there is none or it is not PEP 440."""
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None
