"""python_env.yaml's ``build_dependencies`` (pip, setuptools, wheel as the training
environment had them) in the lock.

MLflow's virtualenv manager installs them first and the model's requirements after, with
two ``pip install`` runs, so where the two disagree the requirements win (a wheel pin that
needs a newer packaging than the model pins is installed, then its packaging replaced).
envbuild locks them together with the requirements; when their pins cannot be installed
with them, the lock takes the versions of these packages that can (EB322), which is what
MLflow's order amounts to without leaving a broken install behind.
"""

from __future__ import annotations

from dataclasses import replace

from packaging.requirements import Requirement as PkgRequirement

from envbuild._adapters import uv as _uv
from envbuild.findings import Code, Finding, Severity, table
from envbuild.read import EnvSpec, Requirement
from envbuild.resolve.lock import Lock

EB322 = Code(
    "EB322",
    Severity.WARNING,
    "a python_env.yaml build dependency cannot be installed as pinned with the model's "
    "requirements; another version, or none, is locked",
)
CODES: dict[str, str] = table(EB322)


def _bare(req: Requirement) -> Requirement:
    if req.requirement is None or not req.requirement.specifier:
        return req
    loose = PkgRequirement(str(req.requirement))
    loose.specifier = type(loose.specifier)()
    return replace(req, raw=str(loose), requirement=loose)


def loosened(spec: EnvSpec, stderr: str) -> EnvSpec | None:
    """``spec`` with what uv's failure (``stderr``) blames on the build dependencies
    undone: those the index does not have are dropped; else the versions of those it
    names are left open. None when it blames none of them."""
    facts = _uv.parse_failure(stderr)
    unavailable = {n for n, _ in (*facts.missing, *facts.no_wheels)}
    kept = tuple(r for r in spec.build_dependencies if r.name not in unavailable)
    if kept != spec.build_dependencies:
        return replace(spec, build_dependencies=kept)
    named = {n for n, _ in facts.required} | {n for n, _, _ in facts.python_needs}
    for edge in facts.edges:
        named.update((edge.src, edge.dst))
    loose = tuple(_bare(r) if r.name in named else r for r in kept)
    if loose == spec.build_dependencies:
        return None
    return replace(spec, build_dependencies=loose)


def relaxed_findings(spec: EnvSpec, lock: Lock) -> list[Finding]:
    """EB322 for each build dependency the lock leaves out or locks at a version its own
    pin excludes."""
    marker_env = lock.target.marker_env()
    out: list[Finding] = []
    for req in spec.build_dependencies:
        pkg = req.requirement
        if pkg is None or req.name is None:
            continue
        if pkg.marker is not None and not pkg.marker.evaluate(marker_env):
            continue
        pin = lock.pin(req.name)
        if pin is None:
            what = "is not available from the index or --find-links; it is not installed"
        elif not pkg.specifier.contains(pin.version, prereleases=True):
            what = (
                f"cannot be installed with the model's requirements; "
                f"{pin.name} {pin.version} is locked instead"
            )
        else:
            continue
        out.append(
            EB322.at(
                req.location,
                f"{req.raw!r} {what}",
                hint="MLflow installs build dependencies first and the requirements over "
                "them; pin a version that agrees with the requirements in python_env.yaml",
            )
        )
    return out
