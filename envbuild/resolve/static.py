"""The static pass: problems visible without an index (packaging only, no network).

Lines that cannot be locked, the same package twice with specifiers no version satisfies,
markers that exclude a requirement on the target, conda-only entries, unpinned lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import cast

from packaging.requirements import Requirement as PkgRequirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from envbuild._redact import redact
from envbuild.findings import Code, Finding, Severity, table
from envbuild.flavors import needs as flavor_needs
from envbuild.read import EnvSpec, ModelFolder, ReqKind, Requirement
from envbuild.resolve.target import Target
from envbuild.serving import SERVING_SOURCE

EB301 = Code(
    "EB301",
    Severity.ERROR,
    "a requirement line that cannot be locked with hashes (editable, VCS, local path)",
    also=(Severity.WARNING,),
)
EB302 = Code(
    "EB302",
    Severity.ERROR,
    "the same package is required twice with specifiers no version satisfies",
)
EB303 = Code("EB303", Severity.INFO, "the same package is required twice (compatible specifiers)")
EB304 = Code(
    "EB304", Severity.WARNING, "a requirement's environment marker excludes it on the target"
)
EB305 = Code(
    "EB305",
    Severity.WARNING,
    "a conda-only dependency, which the pip-only path ignores",
    also=(Severity.INFO,),
)
EB306 = Code("EB306", Severity.WARNING, "an unpinned requirement: builds will drift")
CODES: dict[str, str] = table(EB301, EB302, EB303, EB304, EB305, EB306)


def specifiers_disjoint(a: SpecifierSet, b: SpecifierSet) -> bool:
    """True only when no version can satisfy both ``a`` and ``b`` (packaging's version
    ranges); ``===`` (arbitrary string equality) is not reasoned about."""
    try:
        return a.is_disjoint(b)
    except ValueError:  # === on either side, or sets made with different prereleases
        return False


# conda packages that are native libraries or tools, not Python distributions
_CONDA_NATIVE = re.compile(
    r"^(cudatoolkit|cudnn|cuda(-.*)?|nccl|mkl(-.*)?|intel-openmp|openblas|libblas|liblapack"
    r"|blas|libgcc(-ng)?|libstdcxx(-ng)?|libgomp|_libgcc_mutex|_openmp_mutex|openssl"
    r"|ca-certificates|certifi|libffi|zlib|xz|bzip2|ncurses|readline|sqlite|tk|tzdata"
    r"|ld_impl_linux-64|libuuid|libzlib|libsqlite|libnsl|libxcrypt|gcc|gxx|cmake|make"
    r"|libjpeg-turbo|libpng|freetype|ffmpeg|graphviz|git|curl|setuptools|wheel)$"
)
# conda names whose PyPI distribution is called differently
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "tensorflow-base": "tensorflow",
    "pytorch-lightning": "lightning",
    "python-dateutil": "python-dateutil",
}


def req_ref(req: Requirement) -> str:
    return str(req.location) or SERVING_SOURCE


def static_findings(
    folder: ModelFolder, target: Target, env: EnvSpec | None = None
) -> tuple[Finding, ...]:
    """Problems visible without an index: lines that cannot be locked, the same package
    twice with disjoint specifiers, markers that exclude a requirement on the target,
    conda-only entries, unpinned requirements."""
    spec = env or folder.env.spec
    out: list[Finding] = []
    marker_env = target.marker_env()
    active: list[Requirement] = []
    for req in spec.requirements:
        if req.kind in (ReqKind.EDITABLE, ReqKind.VCS):
            out.append(
                EB301.at(
                    req.location,
                    f"{redact(req.raw)!r} cannot be locked with hashes "
                    f"({req.kind.value} requirement)",
                    hint="publish the package to an index or build a wheel into a wheelhouse "
                    "(--find-links DIR) and require it by name and version",
                )
            )
            continue
        if req.kind is ReqKind.PATH or (req.kind is ReqKind.URL and req.requirement is None):
            out.append(
                EB301.at(
                    req.location,
                    f"{redact(req.raw)!r} is a {req.kind.value} requirement; "
                    "it is left out of the lock",
                    hint="put the file in a wheelhouse and require it by name: "
                    "envbuild lock --find-links DIR",
                    severity=Severity.WARNING,
                )
            )
            continue
        pkg = req.requirement
        if pkg is None:
            continue
        if pkg.marker is not None:
            try:
                applies = pkg.marker.evaluate(marker_env)
            except Exception:  # an undefined marker variable: let the resolver decide
                applies = True
            if not applies:
                out.append(
                    EB304.at(
                        req.location,
                        f"{req.raw!r} is not installed on {target.describe()}: "
                        f"its marker '{pkg.marker}' is false there",
                        hint="drop the marker if the model needs the package on the target",
                    )
                )
                continue
        active.append(req)
        if req.kind is ReqKind.NAMED and req.pinned_version is None:
            out.append(
                EB306.at(
                    req.location,
                    f"{req.raw!r} is not pinned: builds will drift as new releases appear",
                    hint="pin the version the model was trained with (name==X.Y.Z), or "
                    "commit the lock (envbuild lock)",
                )
            )
    out.extend(_duplicates([*active, *active_constraints(spec, marker_env)]))
    flavor_dists: dict[str, str] = {
        canonicalize_name(n.distribution): n.why
        for f in folder.mlmodel.flavors
        for n in flavor_needs(f.name, f.params)
    }
    out.extend(_conda_only(spec, flavor_dists))
    return tuple(out)


def active_constraints(spec: EnvSpec, marker_env: dict[str, str]) -> list[Requirement]:
    out = []
    for c in spec.constraints:
        pkg = c.requirement
        if pkg is None:
            continue
        try:
            if pkg.marker is not None and not pkg.marker.evaluate(marker_env):
                continue
        except Exception:
            pass
        out.append(c)
    return out


def _duplicates(reqs: Sequence[Requirement]) -> list[Finding]:
    by_name: dict[str, list[Requirement]] = {}
    for req in reqs:
        if req.name and req.requirement is not None:
            by_name.setdefault(req.name, []).append(req)
    out: list[Finding] = []
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        reported = False
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                a = cast(PkgRequirement, first.requirement).specifier
                b = cast(PkgRequirement, second.requirement).specifier
                if specifiers_disjoint(a, b):
                    reported = True
                    out.append(
                        EB302.at(
                            second.location,
                            f"{first.raw!r} ({req_ref(first)}) and {second.raw!r} "
                            f"({req_ref(second)}) cannot both hold: no version of {name} "
                            "satisfies both",
                            hint=f"keep one requirement for {name}: the version the model was "
                            "trained with",
                        )
                    )
        if not reported:
            where = ", ".join(f"{r.raw!r} ({req_ref(r)})" for r in group)
            out.append(
                EB303.at(
                    group[-1].location,
                    f"{name} is required {len(group)} times: {where}",
                    hint="keep one line per package so the files cannot drift apart",
                )
            )
    return out


def _conda_only(spec: EnvSpec, flavor_dists: Mapping[str, str]) -> list[Finding]:
    """Conda entries the pip-only path leaves out; one a flavor loads is named as such
    (pyspark, the spark flavor's library, is on PyPI: not conda-only)."""
    pip_names = {r.name for r in spec.requirements if r.name}
    out = []
    for dep in spec.conda:
        pypi = canonicalize_name(CONDA_TO_PYPI.get(dep.name, dep.name))
        if pypi in pip_names:
            out.append(
                EB305.at(
                    dep.location,
                    f"conda dependency {dep.raw!r} is ignored by the pip-only path; "
                    f"{pypi} comes from the pip requirements instead",
                    hint="remove the conda entry, or keep both at the same version",
                    severity=Severity.INFO,
                )
            )
        elif _CONDA_NATIVE.match(dep.name):
            out.append(
                EB305.at(
                    dep.location,
                    f"conda dependency {dep.raw!r} is a native package; the pip-only "
                    "path does not install it",
                    hint="wheels bundle their native libraries; if the model needs this one, "
                    "use a base image that has it (--base-image)",
                )
            )
        elif pypi in flavor_dists:
            version = dep.version.lstrip("=") if dep.version else None
            pin = f"{pypi}=={version}" if version and re.fullmatch(r"[\w.]+", version) else pypi
            out.append(
                EB305.at(
                    dep.location,
                    f"conda dependency {dep.raw!r} is what the model loads "
                    f"({flavor_dists[pypi]}), and {pypi} is on PyPI: the pip-only path "
                    "installs only pip requirements, so it would not be installed",
                    hint=f"move it under pip: as '{pin}'",
                )
            )
        else:
            version = dep.version.lstrip("=") if dep.version else None
            pin = f"{pypi}=={version}" if version and re.fullmatch(r"[\w.]+", version) else pypi
            out.append(
                EB305.at(
                    dep.location,
                    f"conda dependency {dep.raw!r} is conda-only: the pip-only path "
                    f"leaves it out, so {pypi} will not be installed",
                    hint=f"add '{pin}' to the pip requirements if the model needs it",
                )
            )
    return out
