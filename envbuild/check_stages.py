"""The stages ``envbuild check`` runs on a model it could read. Each calls another
module's public API and returns (findings, notes on what it skipped)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from packaging.utils import canonicalize_name

from envbuild.check import CheckOptions, Stage
from envbuild.findings import Finding, Location, Severity
from envbuild.infer import _code_paths, _main_refs
from envbuild.model import ModelFolder
from envbuild.resolve import Lock, override_findings, resolve, static_findings, target_for
from envbuild.scan import PICKLE_KINDS, Ref, RefKind, scan_model
from envbuild.serving import serving_requirements
from envbuild.spec import read_workspace_env

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
    code_dirs, code_files = _code_paths(folder)
    scan = scan_model(folder.path, code_dirs=code_dirs, code_files=code_files)
    findings: list[Finding] = [*scan.findings, *_main_refs(scan)]
    spec = folder.env.spec
    declared = _names(r.name for r in spec.requirements)
    declared |= _names(d.name for d in spec.conda)
    declared |= _names(r.name for r in serving_requirements(folder.mlmodel.mlflow_version))
    resolved = _names(p.name for p in lock.pins) if lock else set()
    stdlib = set(sys.stdlib_module_names) | {"__main__", "__builtin__", "copy_reg"}
    missing: dict[str, list[Ref]] = {}
    for ref in scan.refs:
        top = ref.module.split(".")[0]
        if ref.optional or top in stdlib or top in scan.local_modules or not top:
            continue
        if ref.kind not in PICKLE_KINDS and ref.kind not in (
            RefKind.SKOPS,
            RefKind.IMPORT,
            RefKind.DYNAMIC_IMPORT,
        ):
            continue
        dist = distribution_for(ref.module)
        if dist in declared:
            continue
        missing.setdefault(dist, []).append(ref)
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
        return findings, ["resolution against the package index (--offline)"], None
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


STAGES: tuple[Stage, ...] = (environment,)
