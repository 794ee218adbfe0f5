"""The stages ``envbuild check`` runs on a model it could read. Each calls another
module's public API and returns (findings, notes on what it skipped)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from packaging.utils import canonicalize_name

from envbuild.check.report import CheckOptions, Stage
from envbuild.contents import select
from envbuild.findings import Finding, Location, Severity
from envbuild.infer import code_paths, main_ref_findings
from envbuild.read import ModelFolder, read_workspace_env
from envbuild.resolve import Lock, override_findings, resolve, static_findings, target_for
from envbuild.safety import grade
from envbuild.scan import PICKLE_KINDS, Ref, RefKind, scan_model
from envbuild.serving import serving_requirements

# Import names whose distribution is named differently. Without the training environment
# (check runs in CI) this table, then the module name itself, maps a module to what must
# be installed for it; namespace packages map by their first two components.
IMPORT_NAMES = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "Crypto": "pycryptodome",
    "jwt": "pyjwt",
    "dotenv": "python-dotenv",
    "umap": "umap-learn",
    "sentence_transformers": "sentence-transformers",
    "category_encoders": "category-encoders",
    "sklearn_pandas": "sklearn-pandas",
    "google.protobuf": "protobuf",
    "fitz": "pymupdf",
    "docx": "python-docx",
    "magic": "python-magic",
    "serial": "pyserial",
    "usb": "pyusb",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "tensorflow_hub": "tensorflow-hub",
    "mlflow": "mlflow-skinny",
    "torchvision": "torchvision",
}
NAMESPACES = ("google", "azure", "jaraco", "zope", "backports")
# distributions that provide another's modules (an import of mlflow is satisfied by either)
PROVIDES = {
    "mlflow": "mlflow-skinny",
    "opencv-python-headless": "opencv-python",
    "tensorflow-cpu": "tensorflow",
}


def distribution_for(module: str) -> str:
    parts = module.split(".")
    for n in (2, 1):
        key = ".".join(parts[:n])
        if key in IMPORT_NAMES:
            return IMPORT_NAMES[key]
    if parts[0] in NAMESPACES and len(parts) > 1:
        return canonicalize_name(f"{parts[0]}-{parts[1]}")
    return canonicalize_name(parts[0])


def _names(items: Iterable[str | None]) -> set[str]:
    out = set()
    for name in items:
        if name:
            key = canonicalize_name(name)
            out.add(PROVIDES.get(key, key))
    return out


def dependencies(
    folder: ModelFolder, options: CheckOptions, lock: Lock | None = None
) -> tuple[list[Finding], list[str]]:
    """Modules the model's pickles, skops schemas and code need that no requirement
    declares; __main__ references; unsafe pickle globals. Static: nothing is loaded."""
    code_dirs, code_files = code_paths(folder)
    scan = scan_model(folder.path, code_dirs=code_dirs, code_files=code_files)
    target, _ = target_for(folder, python_version=options.python_version, platform=options.platform)
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
    stdlib = set(sys.stdlib_module_names) | {"__main__", "__builtin__", "copy_reg"}
    missing: dict[str, list[Ref]] = {}
    for ref in scan.refs:
        if not _counts(ref, stdlib, scan.local_modules):
            continue
        dist = distribution_for(ref.module)
        if dist in declared:
            continue
        missing.setdefault(dist, []).append(ref)
    if lock is not None:
        needed = {
            distribution_for(r.module) for r in scan.refs if _counts(r, stdlib, scan.local_modules)
        }
        findings.extend(_unneeded(folder, lock, needed))
    for dist, refs in sorted(missing.items()):
        first = refs[0]
        via_lock = dist in resolved
        places = ", ".join(sorted({r.where for r in refs})[:3])
        findings.append(
            Finding(
                code="EB230",
                severity=Severity.WARNING if via_lock or lock is None else Severity.ERROR,
                message=f"the model needs {first.module!r} ({dist}) at {places}, which no "
                "requirement declares"
                + (" (it arrives only as a dependency of another package)" if via_lock else ""),
                hint=f"add {dist} to requirements.txt / conda.yaml (envbuild infer writes it "
                "with the trained version)",
                location=Location(file=first.file, line=first.line),
            )
        )
    return findings, []


def _counts(ref: Ref, stdlib: set[str], local: frozenset[str]) -> bool:
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
    roots = {canonicalize_name(n) for n in referenced} | {"mlflow", "mlflow-skinny"}
    roots |= {canonicalize_name(r.name) for r in serving_requirements(None) if r.name}
    for flavor in folder.mlmodel.flavors:
        if flavor.library:
            roots.add(canonicalize_name(flavor.library))
        fmt = flavor.params.get("serialization_format")
        if isinstance(fmt, str) and fmt in ("skops", "cloudpickle"):
            roots.add(fmt)
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
        if req.name and req.name not in seen and req.name not in roots and req.name in names:
            out.append(
                Finding(
                    code="EB231",
                    severity=Severity.WARNING,
                    message=f"{req.raw!r} is declared, but nothing in the model needs it: no "
                    "pickle, schema or import refers to it, and no needed package requires it",
                    hint=f"remove {req.name} from the environment files (envbuild infer writes "
                    "only what the model needs), or --ignore EB231 if it is loaded dynamically",
                    location=req.location,
                )
            )
    return out


def resolution(
    folder: ModelFolder, options: CheckOptions
) -> tuple[list[Finding], list[str], Lock | None]:
    """Environment files agreeing on the Python, the static pass, the workspace override,
    and (unless --offline without a wheelhouse) a real resolution with drift."""
    override = read_workspace_env(options.env_override) if options.env_override else None
    env = override.spec if override else None
    target, found = target_for(
        folder, python_version=options.python_version, platform=options.platform, env=env
    )
    findings: list[Finding] = list(found)
    if options.offline and not options.find_links:
        findings.extend(static_findings(folder, target, env))
        if override is not None:
            findings.extend(override_findings(folder, override))
        return (
            findings,
            [
                "resolution against the package index, drift and the unneeded-requirement check (--offline)"
            ],
            None,
        )
    result = resolve(
        folder,
        target,
        override=override,
        find_links=options.find_links,
        offline=options.offline,
        command="envbuild check",
    )
    findings.extend(result.findings)
    return findings, [], result.lock


def environment(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
    """Resolution first, so the dependency check knows what the resolved set provides."""
    found, notes, lock = resolution(folder, options)
    more, _ = dependencies(folder, options, lock)
    return [*found, *more], notes


def contents(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
    """What an image would carry: secret-looking files (EB504), Git LFS pointers (EB107),
    files nothing in the MLmodel uses (EB410)."""
    selection = select(folder, exclude=options.exclude, allow_files=options.allow_files)
    return selection.findings(), []


STAGES: tuple[Stage, ...] = (contents, environment)
