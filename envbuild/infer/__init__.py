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

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import canonicalize_name

from envbuild._redact import redact
from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.infer import drift, evidence, static, trace
from envbuild.infer.drift import check_drift
from envbuild.infer.evidence import (
    Collector,
    Evidence,
    EvidenceKind,
    Needed,
    code_paths,
    flavor_evidence,
    main_ref_findings,
    missing_findings,
    prune_needed,
    ref_evidence,
    version_findings,
)
from envbuild.infer.trace import EB214, TraceResult, run_trace
from envbuild.installed import InstalledEnv
from envbuild.read import EnvSpec, ModelFolder, PipOption, PythonPin, ReqKind, Requirement
from envbuild.scan import PICKLE_KINDS, ModelScan, RefKind, scan_model

__all__ = [
    "CODES",
    "Evidence",
    "EvidenceKind",
    "Inference",
    "Needed",
    "TraceResult",
    "check_drift",
    "code_paths",
    "infer",
    "main_ref_findings",
    "merge_existing",
    "run_trace",
]

EB203 = Code(
    "EB203",
    Severity.WARNING,
    "a required distribution is installed editable or from a local path: not "
    "reproducible elsewhere",
)
EB204 = Code(
    "EB204",
    Severity.INFO,
    "a required distribution was installed from a VCS or an archive URL; written "
    "as a direct reference",
)
EB205 = Code(
    "EB205",
    Severity.INFO,
    "the training environment's pip/uv is configured with an index other than PyPI; "
    "packages installed from it may be missing from PyPI",
)
EB207 = Code(
    "EB207",
    Severity.WARNING,
    "an installed version carries a local label no index serves; the public version was written",
)
EB209 = Code(
    "EB209",
    Severity.WARNING,
    "a library the flavor needs is not installed; the version MLmodel records (or an "
    "unpinned line) was written",
)
EB213 = Code(
    "EB213", Severity.WARNING, "the inspected Python differs from the one that saved the model"
)
_CODES: dict[str, str] = table(EB203, EB204, EB205, EB207, EB209, EB213)
# codes.py gathers the package's codes from here

CODES: dict[str, str] = {
    **table(),
    **_CODES,
    **evidence.CODES,
    **trace.CODES,
    **drift.CODES,
    **static.CODES,
}

PYPI_HOSTS = ("pypi.org", "pypi.python.org", "files.pythonhosted.org")

# PyTorch's local labels that name a wheel variant served by its own index.
TORCH_FAMILY = frozenset(
    {"torch", "torchvision", "torchaudio", "torchtext", "torchdata", "torchrec", "fbgemm-gpu"}
)
_TORCH_LOCAL = re.compile(r"^(cpu|cu\d+|rocm\d+(\.\d+)*|xpu)$")
TORCH_INDEX = "https://download.pytorch.org/whl/{label}"


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
        why = needed.reasons(limit=1)[0] if needed.evidence else "the model"
        if version:
            wrote = f"wrote the version MLmodel records ({version})"
            text = f"{needed.name}=={version}"
        else:
            wrote = f"MLmodel records no version of it: wrote {needed.name} unpinned"
            text = needed.name
        findings.append(
            EB209.at(
                Location(file="MLmodel"),
                f"{needed.name} ({why}) is not installed in the training environment; {wrote}",
                hint="run infer in the environment that saved the model (--python)",
            )
        )
        return _req(text, needed, loc), options
    direct = dist.direct_url
    if direct is not None:
        url = direct.pep508_url()
        if url is not None:
            findings.append(
                EB204.at(
                    Location(),
                    f"{dist.name} {dist.version} was installed from {redact(url)}; "
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
            EB203.at(
                Location(),
                f"{dist.name} {dist.version} is installed {how} ({redact(direct.url)}): "
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
                EB207.at(
                    Location(),
                    f"{dist.name} {parsed} is a local build (+{parsed.local}); "
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
    c = Collector(env=env, local=scan.local_modules)
    findings: list[Finding] = list(scan.findings)
    recorded = flavor_evidence(c, folder)
    for ref in scan.refs:
        if ref.module == "__main__":
            continue
        code = "EB201" if ref.kind in PICKLE_KINDS or ref.kind is RefKind.SKOPS else "EB202"
        c.module(ref.module, ref_evidence(ref), missing_code=code)
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
                EB214.at(
                    Location(),
                    f"--trace: {trace.error}",
                    hint="the traced imports may be incomplete; the static evidence stands",
                )
            )
    findings.extend(main_ref_findings(scan))
    findings.extend(missing_findings(c))
    findings.extend(version_findings(c, recorded, scan, folder.mlmodel.mlflow_version))

    needed = {
        name: Needed(name=name, evidence=tuple(ev), installed=env.get(name))
        for name, ev in c.evidence.items()
    }
    kept, pruned = prune_needed(needed, env, prune=prune)

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
                EB205.at(
                    Location(),
                    f"the training environment's installer uses {setting.option} "
                    f"{redact(setting.value)} ({setting.source}); a package installed from it "
                    "may not be on PyPI",
                    hint="if one is, add that index line to requirements.txt (infer keeps it)",
                )
            )
    python = env.python_version
    saved = folder.mlmodel.pyfunc.python_version if folder.mlmodel.pyfunc else None
    if saved and python and saved.split(".")[:2] != python.split(".")[:2]:
        findings.append(
            EB213.at(
                Location(file="MLmodel", field="flavors.python_function.python_version"),
                f"the model was saved with Python {saved}; the inspected interpreter is {python}",
                hint="run infer with --python pointing at the interpreter that trained the model",
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
