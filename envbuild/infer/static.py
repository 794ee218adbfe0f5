"""Declared against needed without the training environment (``envbuild check`` runs in
CI): the modules the model's pickles, skops schemas and code reference, mapped to
distributions by the name tables, against what the environment files and the serving stack
declare (EB230), and declared requirements nothing needs (EB231)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from packaging.utils import canonicalize_name

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.flavors import SYSTEM_PACKAGES
from envbuild.flavors import needs as flavor_needs
from envbuild.infer.evidence import code_paths, main_ref_findings
from envbuild.infer.names import (
    FORMAT_LIBRARIES,
    IMPORT_NAMES,
    MLFLOW_DISTS,
    PROVIDES,
    PYFUNC_RUNTIME,
    distribution_for,
)
from envbuild.read import FLAVOR_LIBRARIES, ModelFolder
from envbuild.resolve import Lock, target_for
from envbuild.safety import grade
from envbuild.scan import PICKLE_KINDS, ModelScan, Ref, RefKind, scan_model
from envbuild.serving import serving_requirements

EB230 = Code(
    "EB230",
    Severity.WARNING,
    "the model's flavor, pickles or code need a distribution no requirement declares",
    also=(Severity.ERROR,),
)
EB231 = Code(
    "EB231",
    Severity.WARNING,
    "a declared requirement nothing in the model needs (not referenced, not required by what is)",
)
EB232 = Code(
    "EB232",
    Severity.ERROR,
    "the model's pickles reference a module that nothing declared provides and the folder "
    "does not ship (an author's module: ship it with code_paths)",
    also=(Severity.WARNING,),
)
EB233 = Code(
    "EB233",
    Severity.INFO,
    "a library the flavor loads needs a system package (a Java runtime for Spark and H2O); "
    "the image installs it with apt-get, a venv's host must have it",
)
CODES: dict[str, str] = table(EB230, EB231, EB232, EB233)


def _names(items: Iterable[str | None]) -> set[str]:
    out = set()
    for name in items:
        if name:
            key = canonicalize_name(name)
            out.add(PROVIDES.get(key, key))
    return out


def dependency_findings(
    folder: ModelFolder,
    lock: Lock | None = None,
    *,
    python_version: str | None = None,
    platform: str = "linux/amd64",
) -> list[Finding]:
    """Modules the model's pickles, skops schemas and code need that no requirement
    declares; __main__ references; unsafe pickle globals. Static: nothing is loaded."""
    code_dirs, code_files = code_paths(folder)
    scan = scan_model(folder.path, code_dirs=code_dirs, code_files=code_files)
    target, _ = target_for(folder, python_version=python_version, platform=platform)
    graded = grade(
        scan.findings,
        saved_python=folder.python_version,
        target_python=f"{target.python.major}.{target.python.minor}",
    )
    findings: list[Finding] = [*graded, *main_ref_findings(scan)]
    spec = folder.env.spec
    declared = _names(r.name for r in spec.requirements)
    declared |= _names(d.name for d in spec.conda)
    declared |= _names(r.name for r in serving_requirements(folder.mlmodel.mlflow_version))
    resolved = _names(p.name for p in lock.pins) if lock else set()
    missing: dict[str, list[Ref]] = {}
    for ref in scan.refs:
        if not _counts(ref, _STDLIB, scan.local_modules):
            continue
        dist = distribution_for(ref.module)
        if dist in declared:
            continue
        missing.setdefault(dist, []).append(ref)
    if lock is not None:
        findings.extend(_unneeded(folder, lock, _referenced(scan)))
    findings.extend(system_findings(folder))
    for flavor in folder.mlmodel.flavors:
        for need in flavor_needs(flavor.name, flavor.params):
            dist = canonicalize_name(need.distribution)
            if dist in declared or dist in missing:  # a pickle's reference says it better
                continue
            findings.append(
                EB230.at(
                    Location(file="MLmodel", field=f"flavors.{flavor.name}"),
                    f"{need.why}: the model needs {dist} to load, which no requirement "
                    "declares"
                    + (
                        " (it arrives only as a dependency of another package)"
                        if dist in resolved
                        else ""
                    ),
                    hint=f"add {dist} to requirements.txt / conda.yaml (envbuild infer writes "
                    "it with the trained version)",
                    severity=Severity.WARNING
                    if dist in resolved or lock is None
                    else Severity.ERROR,
                )
            )
    for dist, refs in sorted(missing.items()):
        first = refs[0]
        via_lock = dist in resolved
        if not via_lock and not known_distribution(first.module, folder):
            findings.append(_unshipped(first, refs, resolved=lock is not None))
            continue
        places = ", ".join(sorted({r.where for r in refs})[:3])
        findings.append(
            EB230.at(
                Location(file=first.file, line=first.line),
                f"the model needs {first.module!r} ({dist}) at {places}, which no "
                "requirement declares"
                + (" (it arrives only as a dependency of another package)" if via_lock else ""),
                hint=f"add {dist} to requirements.txt / conda.yaml (envbuild infer writes it "
                "with the trained version)",
                severity=Severity.WARNING if via_lock or lock is None else Severity.ERROR,
            )
        )
    return findings


# The libraries whose own file formats the pickle scan opens around pickles (joblib's
# numpy_pickle): a reference into them names a real, well-known distribution.
CONTAINER_LIBRARIES = ("joblib",)


def known_distribution(module: str, folder: ModelFolder) -> bool:
    """Whether the distribution named for ``module`` is known to provide it: the name
    tables (IMPORT_NAMES), the flavors' libraries, the serialization formats, MLflow and
    what its pyfunc loader imports. Any other name is
    only a guess from the module's name, and a guess is how dependency confusion starts:
    a same-named PyPI project may be unrelated (or planted)."""
    dist = distribution_for(module)
    parts = module.split(".")
    if parts[0] in IMPORT_NAMES or ".".join(parts[:2]) in IMPORT_NAMES:
        return True
    known = {canonicalize_name(lib) for _, lib in FLAVOR_LIBRARIES.values() if lib}
    known |= {canonicalize_name(f.library) for f in folder.mlmodel.flavors if f.library}
    known |= {canonicalize_name(n) for n in (*FORMAT_LIBRARIES.values(), *PYFUNC_RUNTIME)}
    known |= {canonicalize_name(n) for n in CONTAINER_LIBRARIES}
    return dist in known | set(MLFLOW_DISTS)


def _unshipped(first: Ref, refs: list[Ref], *, resolved: bool) -> Finding:
    """A module nothing declares, not under code/, and with no known distribution: most
    often the author's own module, importable where the model was trained but not shipped.
    Once the resolved set is known not to provide it, a pickle cannot load (an error);
    offline, or for code imports (which may be guarded), a warning."""
    top = first.module.split(".")[0]
    places = ", ".join(sorted({r.where for r in refs})[:3])
    pickled = any(r.kind in PICKLE_KINDS for r in refs)
    what = f"references {first.qualname!r}" if pickled else f"imports {first.module!r}"
    return EB232.at(
        Location(file=first.file, line=first.line),
        f"{first.file} {what} (at {places}): module {top!r} is not declared, not shipped "
        "under code/, and no known distribution provides it"
        + ("" if resolved else " (offline: the resolved dependencies were not looked at)")
        + "; envbuild does not guess a package name for it",
        hint=f"if {top} is your own code, ship it: re-save the model with "
        f"code_paths=['{top}.py'] (or its package folder), which MLflow copies under code/; "
        "if it is a published library, add the distribution that provides it (envbuild "
        "infer --python <the training environment> finds its name and version)",
        severity=None if pickled and resolved else Severity.WARNING,
    )


def needed_distributions(folder: ModelFolder) -> set[str]:
    """The distributions the model's files need (pickles, skops schemas, code imports) and
    its flavors' libraries, from the static scan; the resolver checks a lock served with
    mlflow-skinny against them."""
    code_dirs, code_files = code_paths(folder)
    scan = scan_model(folder.path, code_dirs=code_dirs, code_files=code_files)
    needed = _referenced(scan)
    needed |= {
        canonicalize_name(f.library)
        for f in folder.mlmodel.flavors
        if f.library and f.name != "python_function"
    }
    return {PROVIDES.get(n, n) for n in needed} - set(MLFLOW_DISTS)


def system_findings(folder: ModelFolder) -> list[Finding]:
    """The Debian packages the flavors' libraries need at run time (EB233)."""
    out = []
    for flavor in folder.mlmodel.flavors:
        for need in flavor_needs(flavor.name, flavor.params):
            packages = SYSTEM_PACKAGES.get(canonicalize_name(need.distribution), ())
            if not packages:
                continue
            names = ", ".join(packages)
            out.append(
                EB233.at(
                    Location(file="MLmodel", field=f"flavors.{flavor.name}"),
                    f"flavor {flavor.name} loads {need.distribution}, which needs the system "
                    f"package {names}: envbuild image installs it with apt-get",
                    hint=f"with --base-image, use an image that has {names} (or apt-get can "
                    "reach a Debian mirror); for envbuild venv, install it on the host",
                )
            )
    return out


# names a reference to which needs no distribution (and pickle-protocol aliases of builtins)
_STDLIB = frozenset(sys.stdlib_module_names) | {"__main__", "__builtin__", "copy_reg"}


def _referenced(scan: ModelScan) -> set[str]:
    """The distributions the scanned pickles, schemas and code imports refer to."""
    return {
        distribution_for(r.module) for r in scan.refs if _counts(r, _STDLIB, scan.local_modules)
    }


def _counts(ref: Ref, stdlib: frozenset[str], local: frozenset[str]) -> bool:
    """A reference that needs a third-party distribution installed."""
    top = ref.module.split(".")[0]
    if ref.optional or not top or top in stdlib or top in local:
        return False
    return ref.kind in PICKLE_KINDS or ref.kind in (
        RefKind.SKOPS,
        RefKind.IMPORT,
        RefKind.DYNAMIC_IMPORT,
    )


def _unneeded(folder: ModelFolder, lock: Lock, referenced: set[str]) -> list[Finding]:
    """Declared requirements nothing in the model needs: not referenced by its files, not
    a flavor's library or serialization format, not the serving stack, and not required
    (through the resolved graph) by any of those. MLflow's own inference writes such lines
    (torch for skops-format scikit-learn models), and they can cost gigabytes."""
    roots = {canonicalize_name(n) for n in referenced} | set(MLFLOW_DISTS)
    roots |= {canonicalize_name(r.name) for r in serving_requirements(None) if r.name}
    for flavor in folder.mlmodel.flavors:
        if flavor.library:
            roots.add(canonicalize_name(flavor.library))
        roots |= {
            canonicalize_name(n.distribution) for n in flavor_needs(flavor.name, flavor.params)
        }
        fmt = flavor.params.get("serialization_format")
        if isinstance(fmt, str) and fmt in FORMAT_LIBRARIES:
            roots.add(FORMAT_LIBRARIES[fmt])
        if flavor.version_field == "cloudpickle_version":
            roots.add("cloudpickle")
    names = {p.name for p in lock.pins}
    children: dict[str, set[str]] = {}
    for pin in lock.pins:
        for parent in pin.requested_by:
            key = canonicalize_name(parent) if " " not in parent and ":" not in parent else ""
            if key in names:
                children.setdefault(key, set()).add(pin.name)
    seen: set[str] = set()
    stack = [r for r in roots if r in names]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(children.get(name, ()))
    out = []
    for req in folder.env.spec.requirements:
        # a distribution that provides a needed one's modules (tensorflow-cpu) is needed
        provides = PROVIDES.get(req.name or "")
        if provides is not None and (provides in roots or provides in seen):
            continue
        if req.name and req.name not in seen and req.name not in roots and req.name in names:
            out.append(
                EB231.at(
                    req.location,
                    f"{req.raw!r} is declared, but nothing in the model needs it: no "
                    "pickle, schema or import refers to it, and no needed package requires it",
                    hint=f"remove {req.name} from the environment files (envbuild infer writes "
                    "only what the model needs), or --ignore EB231 if it is loaded dynamically",
                )
            )
    return out
