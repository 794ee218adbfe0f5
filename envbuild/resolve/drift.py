"""Drift: the resolved versions against those the model was trained with (EB32x)."""

from __future__ import annotations

import re

from packaging.version import Version

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import EnvSpec, ModelFolder
from envbuild.resolve.lock import Lock
from envbuild.resolve.target import version_of

EB320 = Code(
    "EB320",
    Severity.WARNING,
    "drift: the resolved version differs from the one the model was trained with",
)
EB321 = Code(
    "EB321",
    Severity.WARNING,
    "drift: the resolved version differs from the model's requirements pin",
)
CODES: dict[str, str] = table(EB320, EB321)


def _public(v: Version) -> Version:
    return Version(v.public)


def _mlmodel_line(folder: ModelFolder, flavor: str | None, field: str) -> int | None:
    """Line of ``field`` (under ``flavors.<flavor>`` when given) in MLmodel."""
    try:
        lines = (folder.path / "MLmodel").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    start = 0
    if flavor is not None:
        for i, line in enumerate(lines):
            if re.match(rf"^\s+{re.escape(flavor)}:\s*$", line):
                start = i
                break
        else:
            return None
    for i in range(start, len(lines)):
        if re.match(rf"^\s*{re.escape(field)}:", lines[i]):
            return i + 1
    return None


def drift_findings(
    folder: ModelFolder, lock: Lock, override: EnvSpec | None = None
) -> tuple[Finding, ...]:
    """Resolved versions against those the model was trained with: each flavor's version
    field, MLmodel's mlflow_version, and (under an override) the model's own pins."""
    out: list[Finding] = []
    for flavor in folder.mlmodel.flavors:
        if not flavor.library or not flavor.version or not flavor.version_field:
            continue
        trained = version_of(flavor.version)
        pin = lock.pin(flavor.library)
        if trained is None or pin is None or _public(pin.version) == _public(trained):
            continue
        major = pin.version.major != trained.major
        out.append(
            EB320.at(
                Location(
                    file="MLmodel",
                    field=f"flavors.{flavor.name}.{flavor.version_field}",
                    line=_mlmodel_line(folder, flavor.name, flavor.version_field),
                ),
                f"the {flavor.name} model was written by {flavor.library} {trained} "
                f"but would be served by {pin.version}"
                + (" (a different major version)" if major else ""),
                hint=f"pin {flavor.library}=={trained} in the model's requirements",
            )
        )
    mlflow_v = version_of(folder.mlmodel.mlflow_version)
    served = lock.pin("mlflow") or lock.pin("mlflow-skinny")
    if mlflow_v is not None and served is not None and _public(served.version) != mlflow_v:
        out.append(
            EB320.at(
                Location(
                    file="MLmodel",
                    field="mlflow_version",
                    line=_mlmodel_line(folder, None, "mlflow_version"),
                ),
                f"the model was saved by mlflow {mlflow_v} but would be served by "
                f"{served.name} {served.version}",
                hint=f"pin mlflow=={mlflow_v}",
            )
        )
    if override is not None:
        for req in folder.env.spec.requirements:
            want = version_of(req.pinned_version)
            pin = lock.pin(req.name) if req.name else None
            if want is None or pin is None or _public(pin.version) == _public(want):
                continue
            out.append(
                EB321.at(
                    req.location,
                    f"the model requires {req.raw!r}; the override resolves "
                    f"{pin.name} {pin.version}",
                    hint=f"pin {req.raw} in the override",
                )
            )
    return tuple(out)
