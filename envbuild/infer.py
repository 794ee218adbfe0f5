"""Inference: a model folder + the training environment + static scans -> the EnvSpec the
model needs, every requirement carrying why it is there, and findings for what could not
be done.

Evidence, strongest first:

* the flavors (``sklearn`` -> scikit-learn at its recorded ``sklearn_version``; the
  serialization format: skops, cloudpickle);
* the pyfunc loader module (``mlflow.sklearn`` -> MLflow itself) and what MLflow's pyfunc
  loader always imports (pandas, numpy);
* module references in the model's pickles (file and byte offset) and skops schema;
* imports in the code the model carries (file and line);
* with ``--trace`` (opt-in; it executes the model): the modules loading and predicting
  imported, marked as traced.

Modules map to distributions through the inspected environment (namespace packages to the
distribution providing the submodule actually used); standard-library modules and the
model's own ``code/`` modules drop out; pins are the installed versions.

MLflow: infer writes ``mlflow`` (the full distribution) when it is installed in the
training environment, else ``mlflow-skinny``. ``mlflow`` is what MLflow itself writes and
what ``mlflow models serve`` users expect, and ``mlflow==V`` requires ``mlflow-skinny==V``,
so it agrees with the builder's serving stack (``mlflow-skinny`` at the model's
``mlflow_version``, envbuild/serving.py) whenever V is that version, which is checked
(EB206). The price is a heavier environment (the tracking server's dependencies); an
environment with only ``mlflow-skinny`` gets ``mlflow-skinny``.

Pruning (unless ``prune=False``): a distribution another kept distribution requires
(directly or not) is dropped, except the flavor libraries, what the model's code imports,
and MLflow's own direct requirements (numpy, pandas, scikit-learn, ...: mlflow installs
them anyway, so pinning them costs nothing and fixes their versions, as MLflow's own
inference keeps them). Traced-only evidence is pruned without exceptions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement as PkgRequirement
from packaging.specifiers import InvalidSpecifier
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envbuild._adapters import sandbox as _sandbox
from envbuild._compat import StrEnum
from envbuild._redact import redact
from envbuild.errors import FailedError
from envbuild.findings import Finding, Location, Severity
from envbuild.installed import Distribution, InstalledEnv
from envbuild.read import EnvSpec, ModelFolder, PipOption, PythonPin, ReqKind, Requirement
from envbuild.scan import PICKLE_KINDS, ModelScan, Ref, RefKind, scan_model

log = logging.getLogger("envbuild")

CODES: dict[str, str] = {
    "EB200": "a pickle references __main__: only the program that saved it can load it",
    "EB201": "a module the model's pickles reference is not installed in the training "
    "environment: it cannot be pinned",
    "EB202": "a module the model's code imports is not installed in the training environment",
    "EB203": "a required distribution is installed editable or from a local path: not "
    "reproducible elsewhere",
    "EB204": "a required distribution was installed from a VCS or an archive URL; written "
    "as a direct reference",
    "EB205": "the training environment's pip/uv is configured with an index other than PyPI; "
    "packages installed from it may be missing from PyPI",
    "EB206": "the version that produced the model (MLmodel, _sklearn_version, numpy._core) "
    "differs from the installed one",
    "EB207": "an installed version carries a local label no index serves; the public "
    "version was written",
    "EB208": "a module is provided by several installed distributions; one was chosen",
    "EB209": "a flavor's library is not installed; the version MLmodel records was written",
    "EB213": "the inspected Python differs from the one that saved the model",
    "EB214": "--trace could not load or predict; only what was imported before the failure "
    "was merged",
    "EB220": "--check: a required package is missing from the environment files",
    "EB221": "--check: the environment files list a package the model does not need",
    "EB222": "--check: a pinned version differs from the installed (inferred) one",
    "EB223": "--check: the Python version differs from the inspected interpreter's",
    "EB224": "--check: an index option a requirement needs (e.g. for torch +cpu) is missing",
}

PYPI_HOSTS = ("pypi.org", "pypi.python.org", "files.pythonhosted.org")

# PyTorch's local labels that name a wheel variant served by its own index.
TORCH_FAMILY = frozenset(
    {"torch", "torchvision", "torchaudio", "torchtext", "torchdata", "torchrec", "fbgemm-gpu"}
)
_TORCH_LOCAL = re.compile(r"^(cpu|cu\d+|rocm\d+(\.\d+)*|xpu)$")
TORCH_INDEX = "https://download.pytorch.org/whl/{label}"

MLFLOW_DISTS = ("mlflow", "mlflow-skinny")
# What mlflow.pyfunc imports at load time whatever the flavor (not declared by
# mlflow-skinny): the same pair envbuild/serving.py adds.
PYFUNC_RUNTIME = ("pandas", "numpy")

# serialization formats MLmodel records -> the distribution that reads them
FORMAT_LIBRARIES = {"skops": "skops", "cloudpickle": "cloudpickle"}


class EvidenceKind(StrEnum):
    FLAVOR = "flavor"
    FORMAT = "format"
    LOADER = "loader"
    RUNTIME = "runtime"
    PICKLE = "pickle"
    SKOPS = "skops"
    CODE = "code"
    TRACED = "traced"


_STATIC_PROTECTED = frozenset({EvidenceKind.FLAVOR, EvidenceKind.CODE, EvidenceKind.LOADER})


@dataclass(frozen=True, kw_only=True)
class Evidence:
    kind: EvidenceKind
    text: str
    module: str | None = None
    file: str | None = None
    member: str | None = None
    line: int | None = None
    offset: int | None = None
    optional: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "text": self.text,
            "module": self.module,
            "file": self.file,
            "member": self.member,
            "line": self.line,
            "offset": self.offset,
            "optional": self.optional,
        }


@dataclass(frozen=True, kw_only=True)
class Needed:
    """A distribution the model needs, with every piece of evidence for it."""

    name: str
    evidence: tuple[Evidence, ...]
    installed: Distribution | None
    requirement: Requirement | None = None
    implied_by: tuple[str, ...] = ()  # kept distributions that require it

    def reasons(self, limit: int = 3) -> tuple[str, ...]:
        """Short reason lines: one per evidence kind, with up to ``limit`` examples."""
        out: list[str] = []
        by_kind: dict[EvidenceKind, list[Evidence]] = {}
        for e in self.evidence:
            by_kind.setdefault(e.kind, []).append(e)
        for kind in EvidenceKind:
            items = by_kind.get(kind, [])
            if not items:
                continue
            shown = [e.text for e in items[:limit]]
            more = len(items) - len(shown)
            out.append("; ".join(shown) + (f" (+{more} more)" if more else ""))
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requirement": self.requirement.raw if self.requirement else None,
            "installed_version": self.installed.version if self.installed else None,
            "direct_url": self.installed.direct_url.to_json()
            if self.installed and self.installed.direct_url
            else None,
            "implied_by": list(self.implied_by),
            "reasons": list(self.reasons()),
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True, kw_only=True)
class TraceResult:
    modules: tuple[str, ...]
    error: str | None = None
    predicted: bool = False
    sandbox: str | None = None  # what the trace ran under: "bwrap" | "process"


@dataclass(frozen=True, kw_only=True)
class Inference:
    spec: EnvSpec
    kept: tuple[Needed, ...]
    pruned: tuple[Needed, ...]
    findings: tuple[Finding, ...]
    scan: ModelScan
    env: InstalledEnv
    prune: bool = True
    traced: TraceResult | None = None

    def find(self, name: str) -> Needed | None:
        key = canonicalize_name(name)
        return next((n for n in (*self.kept, *self.pruned) if n.name == key), None)

    def explain(self, name: str) -> dict[str, Any]:
        """Why ``name`` is (or is not) in the requirements."""
        key = canonicalize_name(name)
        needed = self.find(key)
        if needed is None:
            dist = self.env.get(key)
            return {
                "name": key,
                "status": "not required",
                "requirement": None,
                "why": [
                    "no flavor, loader, pickle, skops schema or code import of the model "
                    "refers to a module it provides"
                    + (" (it is installed)" if dist else " (it is not installed either)")
                ],
                "evidence": [],
            }
        kept = needed in self.kept
        why = list(needed.reasons(limit=100))
        if not kept:
            why.append("pruned: required by " + ", ".join(needed.implied_by))
        return {
            "name": key,
            "status": "required" if kept else "pruned",
            "requirement": needed.requirement.raw if needed.requirement else None,
            "why": why,
            "evidence": [e.to_json() for e in needed.evidence],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.spec.python.version if self.spec.python else None,
            "interpreter": self.env.executable,
            "requirements": [n.to_json() for n in self.kept],
            "pruned": [n.to_json() for n in self.pruned],
            "options": [o.to_json() for o in self.spec.options],
            "build_dependencies": [r.raw for r in self.spec.build_dependencies],
            "prune": self.prune,
            "scanned": [f.to_json() for f in self.scan.files],
            "traced": {
                "modules": list(self.traced.modules),
                "error": self.traced.error,
                "predicted": self.traced.predicted,
                "sandbox": self.traced.sandbox,
            }
            if self.traced
            else None,
        }


# --------------------------------------------------------------------------------------


@dataclass
class _Collector:
    env: InstalledEnv
    local: frozenset[str]
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    missing: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    ambiguous: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def add(self, dist: str, ev: Evidence) -> None:
        self.evidence.setdefault(canonicalize_name(dist), []).append(ev)

    def choose(self, module: str) -> Distribution | None:
        providers = self.env.providers(module)
        if len(providers) <= 1:
            return providers[0] if providers else None
        names = {p.name for p in providers}
        # An umbrella distribution that requires all the others (mlflow over mlflow-skinny
        # and mlflow-tracing, which ship the same files) is the one the user installed.
        umbrellas = [p for p in providers if names - {p.name} <= self.env.closure(p.name)]
        if len(umbrellas) == 1:
            return umbrellas[0]
        chosen = sorted(providers, key=lambda p: p.name)[0]
        top = ".".join(module.split(".")[:2])
        self.ambiguous.setdefault(top, (chosen.name, tuple(sorted(names))))
        return chosen

    def module(self, module: str, ev: Evidence, *, missing_code: str | None) -> None:
        if not module or self.env.is_stdlib(module):
            return
        top = module.split(".")[0]
        if top in self.local:
            return
        dist = self.choose(module)
        if dist is None:
            if missing_code is not None:
                self.missing.setdefault((missing_code, top), []).append(ev.text)
            return
        self.add(dist.name, ev)


def _flavor_evidence(c: _Collector, folder: ModelFolder) -> dict[str, str]:
    """Flavors and formats; returns {distribution: version MLmodel records}."""
    recorded: dict[str, str] = {}
    pyfunc = folder.mlmodel.pyfunc
    for flavor in folder.mlmodel.flavors:
        if flavor.library:
            dist = canonicalize_name(flavor.library)
            text = f"flavor {flavor.name}" + (
                f" ({flavor.version_field} {flavor.version})" if flavor.version else ""
            )
            c.add(dist, Evidence(kind=EvidenceKind.FLAVOR, text=text, file="MLmodel"))
            if flavor.version:
                recorded[dist] = flavor.version
        fmt = flavor.params.get("serialization_format")
        if isinstance(fmt, str) and fmt in FORMAT_LIBRARIES:
            c.add(
                FORMAT_LIBRARIES[fmt],
                Evidence(
                    kind=EvidenceKind.FORMAT,
                    text=f"flavor {flavor.name} serialization_format {fmt}",
                    file="MLmodel",
                ),
            )
    if pyfunc is not None:
        cp_version = _param(folder, "cloudpickle_version")
        if pyfunc.python_model and cp_version:
            c.add(
                "cloudpickle",
                Evidence(
                    kind=EvidenceKind.FORMAT,
                    text=f"python_model {pyfunc.python_model} pickled with cloudpickle "
                    f"{cp_version}",
                    file="MLmodel",
                ),
            )
            recorded.setdefault("cloudpickle", cp_version)
        loaders = [pyfunc.loader_module] if pyfunc.loader_module else []
        pickle_module = _param(folder, "pickle_module_name")
        if pickle_module:
            loaders.append(pickle_module)
        for mod in loaders:
            assert mod is not None
            c.module(
                mod,
                Evidence(
                    kind=EvidenceKind.LOADER,
                    text=f"loader {mod} (MLmodel python_function)",
                    module=mod,
                    file="MLmodel",
                ),
                missing_code="EB201",
            )
        if pyfunc.loader_module and pyfunc.loader_module.startswith("mlflow."):
            for runtime in PYFUNC_RUNTIME:
                if c.env.get(runtime) is not None:
                    c.add(
                        runtime,
                        Evidence(
                            kind=EvidenceKind.RUNTIME,
                            text=f"mlflow.pyfunc (the loader) imports {runtime}",
                            module=runtime,
                        ),
                    )
    return recorded


def _param(folder: ModelFolder, key: str) -> str | None:
    flavor = folder.mlmodel.flavor("python_function")
    value = flavor.params.get(key) if flavor else None
    return str(value) if value is not None else None


def code_paths(folder: ModelFolder) -> tuple[list[str], list[str]]:
    dirs: list[str] = []
    files: list[str] = []
    pyfunc = folder.mlmodel.pyfunc
    if pyfunc is not None:
        if pyfunc.code:
            dirs.append(pyfunc.code)
        if pyfunc.model_code_path:
            files.append(pyfunc.model_code_path)
        if pyfunc.python_model and pyfunc.python_model.endswith(".py"):
            files.append(pyfunc.python_model)
    for flavor in folder.mlmodel.flavors:
        code = flavor.params.get("code")
        if isinstance(code, str) and code and code not in dirs:
            dirs.append(code)
    if not dirs and (folder.path / "code").is_dir():
        dirs.append("code")
    return dirs, files


def _ref_evidence(ref: Ref) -> Evidence:
    if ref.kind in (RefKind.IMPORT, RefKind.DYNAMIC_IMPORT):
        what = "import" if ref.kind is RefKind.IMPORT else "dynamic import"
        kind = EvidenceKind.CODE
        text = f"{what} {ref.module} at {ref.where}" + (" (optional)" if ref.optional else "")
    elif ref.kind is RefKind.SKOPS:
        kind = EvidenceKind.SKOPS
        text = f"skops type {ref.qualname} at {ref.where}"
    elif ref.kind is RefKind.SUBIMPORT:
        kind = EvidenceKind.PICKLE
        text = f"cloudpickle subimport('{ref.module}') at {ref.where}"
    else:
        kind = EvidenceKind.PICKLE
        text = f"pickle {ref.kind.value} {ref.qualname} at {ref.where}"
    return Evidence(
        kind=kind,
        text=text,
        module=ref.module,
        file=ref.file,
        member=ref.member,
        line=ref.line,
        offset=ref.offset,
        optional=ref.optional,
    )


def main_ref_findings(scan: ModelScan) -> list[Finding]:
    by_file: dict[str, list[Ref]] = {}
    for ref in scan.refs:
        if ref.module == "__main__" and ref.kind in PICKLE_KINDS:
            by_file.setdefault(ref.file + (f"[{ref.member}]" if ref.member else ""), []).append(ref)
    out = []
    for where, refs in sorted(by_file.items()):
        names = ", ".join(sorted({f"__main__.{r.name}" for r in refs if r.name}))
        out.append(
            Finding(
                code="EB200",
                severity=Severity.ERROR,
                message=f"{where} references {names} (first at byte {refs[0].offset}): only "
                "the program that saved it can load it",
                hint="define those classes and functions in a module, ship it with "
                "code_paths=[...] and re-save the model",
                location=Location(file=refs[0].file, field=refs[0].member),
            )
        )
    return out


def _version_findings(
    c: _Collector, recorded: Mapping[str, str], scan: ModelScan, mlflow_version: str | None
) -> list[Finding]:
    out: list[Finding] = []

    def differs(dist: Distribution, version: str) -> bool:
        try:
            a, b = Version(dist.version), Version(version)
        except InvalidVersion:
            return dist.version != version
        # a recorded 2.3.0 and an installed 2.3.0+cpu are the same release
        return a != b and a.public != str(b) and b.public != str(a)

    for name, version in sorted(recorded.items()):
        dist = c.env.get(name)
        if dist is not None and differs(dist, version):
            out.append(
                Finding(
                    code="EB206",
                    severity=Severity.WARNING,
                    message=f"MLmodel records {name} {version}; the training environment has "
                    f"{dist.version}",
                    hint="run infer in the environment that saved the model (--python), or "
                    "re-save the model",
                    location=Location(file="MLmodel"),
                )
            )
    mlflow = next((c.env.get(n) for n in MLFLOW_DISTS if c.env.get(n)), None)
    if mlflow is not None and mlflow_version and differs(mlflow, mlflow_version):
        out.append(
            Finding(
                code="EB206",
                severity=Severity.WARNING,
                message=f"the model was saved by MLflow {mlflow_version}; the training "
                f"environment has {mlflow.name} {mlflow.version}",
                hint="the serving stack uses mlflow-skinny at the model's version; run infer "
                "where the model was saved, or re-save it",
                location=Location(file="MLmodel", field="mlflow_version"),
            )
        )
    seen: set[tuple[str, str]] = set()
    for hint in scan.hints:
        dist = c.env.get(hint.distribution)
        if dist is None or (hint.distribution, hint.version) in seen:
            continue
        seen.add((hint.distribution, hint.version))
        if differs(dist, hint.version):
            out.append(
                Finding(
                    code="EB206",
                    severity=Severity.WARNING,
                    message=f"{hint.where}: written by {hint.distribution} {hint.version} "
                    f"({hint.source}); the training environment has {dist.version}",
                    hint=f"pin {hint.distribution}=={hint.version} or re-save the model",
                    location=Location(file=hint.file, field=hint.member),
                )
            )
    numpy = c.env.get("numpy")
    core = next(
        (
            r
            for r in scan.refs
            if r.kind in PICKLE_KINDS and r.module.split(".")[:2] == ["numpy", "_core"]
        ),
        None,
    )
    if core is not None and numpy is not None:
        v = numpy.parsed_version
        if v is not None and v.major < 2:
            out.append(
                Finding(
                    code="EB206",
                    severity=Severity.ERROR,
                    message=f"{core.where} references {core.qualname}, written by numpy 2; "
                    f"the training environment has numpy {numpy.version}, which cannot load it",
                    hint="install numpy>=2 in the environment, or re-save the model with numpy 1",
                    location=Location(file=core.file, field=core.member),
                )
            )
    return out


def _missing_findings(c: _Collector) -> list[Finding]:
    out = []
    for (code, top), texts in sorted(c.missing.items()):
        optional = code == "EB202" and all("(optional)" in t for t in texts)
        what = "pickles reference" if code == "EB201" else "code imports"
        out.append(
            Finding(
                code=code,
                severity=Severity.ERROR
                if code == "EB201"
                else (Severity.INFO if optional else Severity.WARNING),
                message=f"module {top!r} is not installed in the training environment "
                f"(the model's {what} it: {texts[0]}"
                + (f", +{len(texts) - 1} more" if len(texts) > 1 else "")
                + ")",
                hint="install it where the model was trained, or point --python at that "
                "environment; infer cannot pin it",
                location=Location(file=texts[0].split(" at ")[-1].split("@")[0].split(":")[0])
                if " at " in texts[0]
                else Location(),
            )
        )
    for top, (chosen, names) in sorted(c.ambiguous.items()):
        out.append(
            Finding(
                code="EB208",
                severity=Severity.INFO,
                message=f"module {top} is provided by {', '.join(names)}; chose {chosen}",
                hint="uninstall the distributions you do not use, or --explain to see the "
                "references",
            )
        )
    return out


def _is_pypi(url: str) -> bool:
    return any(host in url for host in PYPI_HOSTS)


def _requirement_for(
    needed: Needed, recorded: Mapping[str, str], findings: list[Finding]
) -> tuple[Requirement | None, list[PipOption]]:
    dist = needed.installed
    options: list[PipOption] = []
    loc = Location(file="requirements.txt")
    if dist is None:
        version = recorded.get(needed.name)
        if not version:
            return None, options
        findings.append(
            Finding(
                code="EB209",
                severity=Severity.WARNING,
                message=f"{needed.name} is not installed in the training environment; wrote "
                f"the version MLmodel records ({version})",
                hint="run infer in the environment that saved the model (--python)",
                location=Location(file="MLmodel"),
            )
        )
        text = f"{needed.name}=={version}"
        return _req(text, needed, loc), options
    direct = dist.direct_url
    if direct is not None:
        url = direct.pep508_url()
        if url is not None:
            findings.append(
                Finding(
                    code="EB204",
                    severity=Severity.INFO,
                    message=f"{dist.name} {dist.version} was installed from {redact(url)}; "
                    "written as a direct reference",
                    hint="publish it to an index to pin it by version instead",
                )
            )
            text = f"{dist.name} @ {url}"
            kind = ReqKind.VCS if direct.kind == "vcs" else ReqKind.URL
            return (
                Requirement(
                    raw=text,
                    kind=kind,
                    requirement=PkgRequirement(text),
                    location=loc,
                    reasons=needed.reasons(),
                ),
                options,
            )
        how = (
            {
                "editable": "editable",
                "local": "from a local folder",
                "archive": "from a local file",
            }[direct.kind]
            if direct.kind != "vcs"
            else "from a local repository"
        )
        findings.append(
            Finding(
                code="EB203",
                severity=Severity.WARNING,
                message=f"{dist.name} {dist.version} is installed {how} ({redact(direct.url)}): "
                f"{dist.name}=={dist.version} may not exist on any index",
                hint="publish it to an index, or ship its code with the model "
                "(code_paths=[...]) and drop it from the requirements",
            )
        )
    parsed = dist.parsed_version
    if parsed is None:
        return _req(f"{dist.name}==={dist.version}", needed, loc), options
    text = f"{dist.name}=={parsed}"
    if parsed.local:
        if dist.name in TORCH_FAMILY and _TORCH_LOCAL.match(parsed.local):
            url = TORCH_INDEX.format(label=parsed.local)
            options.append(
                PipOption(
                    option="--extra-index-url",
                    value=url,
                    location=loc,
                )
            )
        else:
            findings.append(
                Finding(
                    code="EB207",
                    severity=Severity.WARNING,
                    message=f"{dist.name} {parsed} is a local build (+{parsed.local}); "
                    f"wrote {dist.name}=={parsed.public}",
                    hint="publish the build to an index and add that index to requirements.txt",
                )
            )
            text = f"{dist.name}=={parsed.public}"
    return _req(text, needed, loc), options


def _req(text: str, needed: Needed, loc: Location) -> Requirement:
    return Requirement(
        raw=text,
        kind=ReqKind.NAMED,
        requirement=PkgRequirement(text),
        location=loc,
        reasons=needed.reasons(),
    )


def _mlflow_first(name: str) -> tuple[int, str]:
    return (0 if name in MLFLOW_DISTS else 1, name)


def infer(
    folder: ModelFolder,
    env: InstalledEnv | Callable[[], InstalledEnv],
    *,
    prune: bool = True,
    trace: TraceResult | None = None,
) -> Inference:
    """Infer the environment ``folder`` needs from ``env`` (the training environment; or a
    function returning it, called after the scan so a running inspection overlaps it)."""
    code_dirs, code_files = code_paths(folder)
    scan = scan_model(folder.path, code_dirs=code_dirs, code_files=code_files)
    if not isinstance(env, InstalledEnv):
        env = env()
    c = _Collector(env=env, local=scan.local_modules)
    findings: list[Finding] = list(scan.findings)
    recorded = _flavor_evidence(c, folder)
    for ref in scan.refs:
        if ref.module == "__main__":
            continue
        code = "EB201" if ref.kind in PICKLE_KINDS or ref.kind is RefKind.SKOPS else "EB202"
        c.module(ref.module, _ref_evidence(ref), missing_code=code)
    if trace is not None:
        for module in trace.modules:
            c.module(
                module,
                Evidence(
                    kind=EvidenceKind.TRACED,
                    text=f"traced: {module} imported while loading and predicting",
                    module=module,
                ),
                missing_code=None,
            )
        if trace.error:
            findings.append(
                Finding(
                    code="EB214",
                    severity=Severity.WARNING,
                    message=f"--trace: {trace.error}",
                    hint="the traced imports may be incomplete; the static evidence stands",
                )
            )
    findings.extend(main_ref_findings(scan))
    findings.extend(_missing_findings(c))
    findings.extend(_version_findings(c, recorded, scan, folder.mlmodel.mlflow_version))

    needed = {
        name: Needed(name=name, evidence=tuple(ev), installed=env.get(name))
        for name, ev in c.evidence.items()
    }
    mlflow_dist = next((n for n in MLFLOW_DISTS if n in needed), None)
    mlflow_direct = (
        {canonicalize_name(r.name) for r in env.requirements_of(mlflow_dist)}
        if mlflow_dist
        else set()
    )
    kept: list[Needed] = []
    pruned: list[Needed] = []
    for name in sorted(needed, key=_mlflow_first):
        item = needed[name]
        implied = tuple(sorted(k for k in needed if k != name and name in env.closure(k)))
        item = replace(item, implied_by=implied)
        static = [e for e in item.evidence if e.kind is not EvidenceKind.TRACED]
        protected = bool(static) and (
            any(e.kind in _STATIC_PROTECTED and not e.optional for e in static)
            or name in mlflow_direct
            or name == mlflow_dist
        )
        if prune and implied and not protected:
            pruned.append(item)
        else:
            kept.append(item)

    # implied_by should name only kept distributions
    kept_names = {k.name for k in kept}
    pruned = [
        replace(p, implied_by=tuple(n for n in p.implied_by if n in kept_names) or p.implied_by)
        for p in pruned
    ]

    requirements: list[Requirement] = []
    options: list[PipOption] = []
    final: list[Needed] = []
    for item in kept:
        req, opts = _requirement_for(item, recorded, findings)
        for o in opts:
            if all((o.option, o.value) != (x.option, x.value) for x in options):
                options.append(o)
        if req is None:
            continue
        req = replace(req, location=Location(file="requirements.txt", line=len(requirements) + 1))
        requirements.append(req)
        final.append(replace(item, requirement=req))

    for setting in env.index:
        if setting.option in ("--index-url", "--extra-index-url") and not _is_pypi(setting.value):
            findings.append(
                Finding(
                    code="EB205",
                    severity=Severity.INFO,
                    message=f"the training environment's installer uses {setting.option} "
                    f"{redact(setting.value)} ({setting.source}); a package installed from it "
                    "may not be on PyPI",
                    hint="if one is, add that index line to requirements.txt (infer keeps it)",
                )
            )
    python = env.python_version
    saved = folder.mlmodel.pyfunc.python_version if folder.mlmodel.pyfunc else None
    if saved and python and saved.split(".")[:2] != python.split(".")[:2]:
        findings.append(
            Finding(
                code="EB213",
                severity=Severity.WARNING,
                message=f"the model was saved with Python {saved}; the inspected interpreter "
                f"is {python}",
                hint="run infer with --python pointing at the interpreter that trained the model",
                location=Location(file="MLmodel", field="flavors.python_function.python_version"),
            )
        )
    build = []
    for tool in ("pip", "setuptools", "wheel"):
        dist = env.get(tool)
        text = f"{tool}=={dist.version}" if dist and dist.parsed_version else tool
        build.append(
            Requirement(
                raw=text,
                kind=ReqKind.NAMED,
                requirement=PkgRequirement(text),
                location=Location(file="python_env.yaml", field="build_dependencies"),
            )
        )
    spec = EnvSpec(
        name="mlflow-env",
        python=PythonPin(version=python, location=Location(file="python_env.yaml", field="python"))
        if python
        else None,
        requirements=tuple(requirements),
        build_dependencies=tuple(build),
        channels=("conda-forge",),
        options=tuple(options),
        files=("conda.yaml", "python_env.yaml", "requirements.txt"),
    )
    return Inference(
        spec=spec,
        kept=tuple(final),
        pruned=tuple(pruned),
        findings=tuple(_dedupe(findings)),
        scan=scan,
        env=env,
        prune=prune,
        traced=trace,
    )


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for f in findings:
        key = (f.code, f.message, f.location.file)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --------------------------------------------------------------------------------------
# merging with the files already in the folder


def merge_existing(spec: EnvSpec, folder: ModelFolder) -> EnvSpec:
    """Keep what the user wrote that inference does not own: option lines (index URLs,
    find-links, trusted hosts) from requirements.txt and conda.yaml's pip section, and
    conda.yaml's channels and non-pip conda packages."""
    env = folder.env
    options = list(spec.options)
    existing: list[PipOption] = []
    if env.requirements is not None:
        existing.extend(env.requirements.options)
    if env.conda is not None:
        existing.extend(env.conda.pip.options)
    for o in existing:
        if o.option in ("-r", "-c", "-e"):
            continue
        if all((o.option, o.value) != (x.option, x.value) for x in options):
            options.append(o)
    channels = env.conda.channels if env.conda is not None and env.conda.channels else spec.channels
    conda = (
        tuple(d for d in env.conda.conda if d.name not in ("python", "pip"))
        if env.conda is not None
        else ()
    )
    name = env.conda.name if env.conda is not None and env.conda.name else spec.name
    return replace(spec, options=tuple(options), channels=tuple(channels), conda=conda, name=name)


# --------------------------------------------------------------------------------------
# --check


def _key(name: str) -> str:
    return "mlflow" if name in MLFLOW_DISTS else name


def check_drift(inference: Inference, folder: ModelFolder) -> list[Finding]:
    """Compare the inferred environment with the files in the folder: missing packages,
    extra ones, version drift, the Python version and needed index options."""
    env = folder.env
    sources: list[tuple[str, Sequence[Requirement], Sequence[PipOption]]] = []
    if env.requirements is not None:
        sources.append(
            (env.requirements.file, env.requirements.requirements, env.requirements.options)
        )
    if env.conda is not None:
        sources.append((env.conda.file, env.conda.pip.requirements, env.conda.pip.options))
    if env.python_env is not None and not (
        env.requirements is not None
        and any(
            r.location.file == env.requirements.file
            for r in env.python_env.dependencies.requirements
        )
    ):
        deps = env.python_env.dependencies
        if deps.requirements:
            sources.append((env.python_env.file, deps.requirements, deps.options))
    inferred = {_key(n.name): n for n in inference.kept}
    known = inferred | {_key(p.name): p for p in inference.pruned}
    out: list[Finding] = []
    if not sources:
        out.append(
            Finding(
                code="EB220",
                severity=Severity.ERROR,
                message="the model folder has no environment files (requirements.txt, "
                "conda.yaml, python_env.yaml)",
                hint="run `envbuild infer MODEL` to write them",
            )
        )
    for file, reqs, opts in sources:
        present: dict[str, Requirement] = {}
        for r in reqs:
            if r.name:
                present.setdefault(_key(r.name), r)
        for key, needed in inferred.items():
            if needed.requirement is None:
                continue
            have = present.get(key)
            if have is None:
                out.append(
                    Finding(
                        code="EB220",
                        severity=Severity.ERROR,
                        message=f"{file} does not list {needed.requirement.raw} "
                        f"({(needed.reasons() or ('needed',))[0]})",
                        hint="run `envbuild infer MODEL` to rewrite the environment files",
                        location=Location(file=file),
                    )
                )
                continue
            drift = _drift(have, needed.requirement)
            if drift:
                out.append(
                    Finding(
                        code="EB222",
                        severity=Severity.ERROR,
                        message=f"{have.raw} {drift}; the training environment has "
                        f"{needed.requirement.raw}",
                        hint="run `envbuild infer MODEL` to re-pin, or install that version "
                        "where the model is trained",
                        location=have.location,
                    )
                )
        for key, have in present.items():
            if key in known:
                continue
            out.append(
                Finding(
                    code="EB221",
                    severity=Severity.ERROR,
                    message=f"{have.raw} is listed but nothing in the model needs it",
                    hint="remove it (`envbuild infer MODEL` rewrites the files), or "
                    "`envbuild infer --explain NAME` to see what was scanned",
                    location=have.location,
                )
            )
        for o in inference.spec.options:
            if all((o.option, o.value) != (x.option, x.value) for x in opts):
                out.append(
                    Finding(
                        code="EB224",
                        severity=Severity.ERROR,
                        message=f"{file} lacks `{o.option} {o.value}`, which "
                        + ", ".join(
                            n.requirement.raw
                            for n in inference.kept
                            if n.requirement and "+" in n.requirement.raw
                        )
                        + " needs",
                        hint="add the line, or run `envbuild infer MODEL`",
                        location=Location(file=file),
                    )
                )
    python = inference.spec.python.version if inference.spec.python else None
    for pin in env.spec.python_pins:
        if python and not _python_matches(pin.version, python):
            out.append(
                Finding(
                    code="EB223",
                    severity=Severity.ERROR,
                    message=f"Python {pin.version} is pinned; the training interpreter is {python}",
                    hint="run `envbuild infer MODEL` to re-pin, or inspect the right "
                    "interpreter with --python",
                    location=pin.location,
                )
            )
    return out


def _python_matches(written: str, actual: str) -> bool:
    want = written.rstrip(".*").split(".")
    return actual.split(".")[: len(want)] == want


def _drift(have: Requirement, want: Requirement) -> str | None:
    if have.kind is not ReqKind.NAMED or want.kind is not ReqKind.NAMED:
        return None if have.raw == want.raw else "is a different source"
    want_v = want.pinned_version
    if want_v is None or have.requirement is None:
        return None
    have_v = have.pinned_version
    try:
        if have_v is not None:
            return None if Version(have_v) == Version(want_v) else "differs"
        if not have.requirement.specifier:
            return None  # unpinned: any version is allowed
        return (
            None
            if have.requirement.specifier.contains(want_v, prereleases=True)
            else ("does not allow it")
        )
    except (InvalidVersion, InvalidSpecifier):
        return None if have_v == want_v else "differs"


# --------------------------------------------------------------------------------------
# --trace (opt-in: executes the model)

_TRACE_SCRIPT = Path(__file__).parent / "_scripts" / "trace.py"
TRACE_MARKER = "ENVBUILD-TRACE:"


def run_trace(python: str, model: Path, *, timeout: float = 600) -> TraceResult:
    """Load the model with mlflow.pyfunc in a subprocess of ``python`` and predict on its
    input example; return the modules imported beyond ``import mlflow.pyfunc``. This runs
    the model's code: only on the user's request (``--trace``), and in the sandbox
    (envbuild/_adapters/sandbox.py), which reads the interpreter's prefixes and the model."""
    exe = Path(shutil.which(python) or python).absolute()
    model_dir = model.resolve()
    try:
        with _sandbox.Sandbox(
            readable=_sandbox.interpreter_roots(exe), readonly=[model_dir]
        ) as box:
            env = {
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": os.environ.get(
                    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true"
                ),
                "MLFLOW_TRACKING_URI": (box.tmp / "mlruns").as_uri(),
            }
            script = _TRACE_SCRIPT.read_text(encoding="utf-8")
            ran = box.run([str(exe), "-c", script, str(model_dir)], env=env, timeout=timeout)
    except OSError as exc:
        raise FailedError(f"--trace: cannot run {python}: {exc}", code="EB214") from None
    if ran.timed_out:
        raise FailedError(f"--trace: {python} did not finish within {timeout:.0f} s", code="EB214")
    doc = None
    for line in ran.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(TRACE_MARKER):
            doc = json.loads(line[len(TRACE_MARKER) :])
    if not isinstance(doc, dict):
        last = (ran.stderr_tail(1) or ["no output"])[-1]
        return TraceResult(
            modules=(), error=f"the trace did not finish: {last}", sandbox=ran.sandbox
        )
    return TraceResult(
        modules=tuple(sorted(str(m) for m in doc.get("modules") or ())),
        error=doc.get("error"),
        predicted=bool(doc.get("predicted")),
        sandbox=ran.sandbox,
    )
