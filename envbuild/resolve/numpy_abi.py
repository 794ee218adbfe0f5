"""numpy 1's binary interface: a package whose compiled extensions were built against
numpy 1 fails to import under numpy 2 (``ValueError: numpy.dtype size changed, may
indicate binary incompatibility``), yet its metadata asks only ``numpy>=1.x``, so a fresh
resolution of an old pin takes numpy 2 and the model never loads. Found on a public
MLflow 2.1.1 model pinning scikit-learn==1.2.1: check said ok, the venv's load failed.

For such pins the resolution gets the constraint ``numpy<2`` (EB323), unless the model's
own numpy requirement pins a version or allows no numpy 1. The table holds, for the packages models
pin most that use numpy's C interface, the first release built against numpy 2 (each
project's release notes); ctypes-based libraries (xgboost, lightgbm) are not affected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement as PkgRequirement
from packaging.version import InvalidVersion, Version

from envbuild.findings import Code, Finding, Severity, table
from envbuild.read import ReqKind, Requirement

EB323 = Code(
    "EB323",
    Severity.INFO,
    "a pinned package was built against numpy 1 and cannot import under numpy 2: the "
    "resolution keeps numpy<2",
)
CODES: dict[str, str] = table(EB323)

# canonical name -> the first version whose wheels work with numpy 2
NUMPY2_FROM: dict[str, str] = {
    "scikit-learn": "1.4.2",
    "scipy": "1.13.0",
    "pandas": "2.2.2",
    "statsmodels": "0.14.2",
    "pyarrow": "16.0.0",
    "matplotlib": "3.8.4",
    "h5py": "3.11.0",
    "numba": "0.60.0",
    "shap": "0.46.0",
    "opencv-python": "4.10.0.84",
    "opencv-python-headless": "4.10.0.84",
}

NUMPY1 = "1.26.4"  # the last numpy 1: a numpy requirement without it excludes numpy 1


@dataclass(frozen=True, kw_only=True)
class ConstraintPlan:
    """Constraints a known incompatibility adds to the resolution, and the findings that
    say so (this module's numpy<2; sklearn_api.py's scikit-learn<1.6)."""

    constraints: tuple[Requirement, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __add__(self, other: ConstraintPlan) -> ConstraintPlan:
        return ConstraintPlan(
            constraints=self.constraints + other.constraints,
            findings=self.findings + other.findings,
        )


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def model_decides(reqs: Sequence[Requirement], name: str, older: str) -> bool:
    """True when the model's own requirement on ``name`` pins a version or allows no
    release as old as ``older``: a known-incompatibility bound then adds nothing."""
    return any(
        r.name == name
        and r.requirement is not None
        and (r.pinned_version or not r.requirement.specifier.contains(older))
        for r in reqs
    )


def pins_below(
    reqs: Sequence[Requirement], first_fixed: Mapping[str, str]
) -> list[tuple[Requirement, Version, str]]:
    """(requirement, pinned version, first fixed version) for each pin of a package of
    ``first_fixed`` below the release that fixed it, in the requirements' order."""
    out: list[tuple[Requirement, Version, str]] = []
    for r in reqs:
        first = first_fixed.get(r.name or "")
        at = _version(r.pinned_version)
        if first is not None and at is not None and at < Version(first):
            out.append((r, at, first))
    return out


def bound(spec: str, at: Requirement, because: str) -> Requirement:
    """The constraint ``spec`` (``numpy<2``), located at the requirement it is for."""
    return Requirement(
        raw=spec,
        kind=ReqKind.NAMED,
        requirement=PkgRequirement(spec),
        location=at.location,
        reasons=(because,),
    )


def numpy_plan(reqs: Sequence[Requirement]) -> ConstraintPlan:
    """``numpy<2`` when a requirement pins a package of NUMPY2_FROM below the version
    that supports numpy 2, unless the model pins numpy exactly or excludes numpy 1."""
    # the model's exact numpy pin decides; so does a range without numpy 1
    if model_decides(reqs, "numpy", NUMPY1):
        return ConstraintPlan()
    old = pins_below(reqs, NUMPY2_FROM)
    if not old:
        return ConstraintPlan()
    r, pinned, first = old[0]
    because = f"{r.name}=={pinned} was built against numpy 1 (numpy 2 from {r.name} {first})"
    constraint = bound("numpy<2", r, because)
    others = "".join(f", {o.name}=={v}" for o, v, _ in old[1:])
    finding = EB323.at(
        r.location,
        f"{because}{others}: it cannot import under numpy 2, so the lock keeps numpy<2",
        hint="pin the numpy the model was trained with (numpy==1.x) in the requirements, "
        f"or re-save the model with {r.name}>={first}",
    )
    return ConstraintPlan(constraints=(constraint,), findings=(finding,))
