"""Evidence for the distributions a model needs: the flavors, the pyfunc loader, the
module references of the scans, mapped to distributions through the inspected environment;
the findings about what could not be mapped or disagrees with the versions MLmodel records;
pruning what another kept distribution already requires."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envbuild._compat import StrEnum
from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.flavors import needs as flavor_needs
from envbuild.infer.names import FORMAT_LIBRARIES, MLFLOW_DISTS, PYFUNC_RUNTIME
from envbuild.installed import Distribution, InstalledEnv
from envbuild.read import ModelFolder, Requirement
from envbuild.scan import PICKLE_KINDS, ModelScan, Ref, RefKind

EB200 = Code(
    "EB200",
    Severity.ERROR,
    "a pickle references __main__: only the program that saved it can load it",
)
EB201 = Code(
    "EB201",
    Severity.ERROR,
    "a module the model's pickles reference is not installed in the training "
    "environment: it cannot be pinned",
)
EB202 = Code(
    "EB202",
    Severity.WARNING,
    "a module the model's code imports is not installed in the training environment",
    also=(Severity.INFO,),
)
EB206 = Code(
    "EB206",
    Severity.ERROR,
    "the version that produced the model (MLmodel, _sklearn_version, numpy._core) "
    "differs from the installed one",
    also=(Severity.WARNING,),
)
EB208 = Code(
    "EB208",
    Severity.INFO,
    "a module is provided by several installed distributions; one was chosen",
)
CODES: dict[str, str] = table(EB200, EB201, EB202, EB206, EB208)


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


@dataclass
class Collector:
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


def flavor_evidence(c: Collector, folder: ModelFolder) -> dict[str, str]:
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
        for need in flavor_needs(flavor.name, flavor.params):
            if need.distribution != flavor.library:
                c.add(
                    need.distribution,
                    Evidence(kind=EvidenceKind.FLAVOR, text=need.why, file="MLmodel"),
                )
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


def ref_evidence(ref: Ref) -> Evidence:
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
            EB200.at(
                Location(file=refs[0].file, field=refs[0].member),
                f"{where} references {names} (first at byte {refs[0].offset}): only "
                "the program that saved it can load it",
                hint="define those classes and functions in a module, ship it with "
                "code_paths=[...] and re-save the model",
            )
        )
    return out


def version_findings(
    c: Collector, recorded: Mapping[str, str], scan: ModelScan, mlflow_version: str | None
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
                EB206.at(
                    Location(file="MLmodel"),
                    f"MLmodel records {name} {version}; the training environment has "
                    f"{dist.version}",
                    hint="run infer in the environment that saved the model (--python), or "
                    "re-save the model",
                    severity=Severity.WARNING,
                )
            )
    mlflow = next((c.env.get(n) for n in MLFLOW_DISTS if c.env.get(n)), None)
    if mlflow is not None and mlflow_version and differs(mlflow, mlflow_version):
        out.append(
            EB206.at(
                Location(file="MLmodel", field="mlflow_version"),
                f"the model was saved by MLflow {mlflow_version}; the training "
                f"environment has {mlflow.name} {mlflow.version}",
                hint="the serving stack uses mlflow-skinny at the model's version; run infer "
                "where the model was saved, or re-save it",
                severity=Severity.WARNING,
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
                EB206.at(
                    Location(file=hint.file, field=hint.member),
                    f"{hint.where}: written by {hint.distribution} {hint.version} "
                    f"({hint.source}); the training environment has {dist.version}",
                    hint=f"pin {hint.distribution}=={hint.version} or re-save the model",
                    severity=Severity.WARNING,
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
                EB206.at(
                    Location(file=core.file, field=core.member),
                    f"{core.where} references {core.qualname}, written by numpy 2; "
                    f"the training environment has numpy {numpy.version}, which cannot load it",
                    hint="install numpy>=2 in the environment, or re-save the model with numpy 1",
                )
            )
    return out


def missing_findings(c: Collector) -> list[Finding]:
    out = []
    for (code, top), texts in sorted(c.missing.items()):
        optional = code == "EB202" and all("(optional)" in t for t in texts)
        what = "pickles reference" if code == "EB201" else "code imports"
        out.append(
            (EB201 if code == "EB201" else EB202).at(
                Location(file=texts[0].split(" at ")[-1].split("@")[0].split(":")[0])
                if " at " in texts[0]
                else Location(),
                f"module {top!r} is not installed in the training environment nor shipped "
                f"under code/ (the model's {what} it: {texts[0]}"
                + (f", +{len(texts) - 1} more" if len(texts) > 1 else "")
                + "); infer cannot pin it and does not guess a package name for it",
                hint=f"if {top} is your own code, re-save the model with "
                f"code_paths=['{top}.py'] (or its package folder) so MLflow ships it under "
                "code/; if it is a published library, install it where the model was trained "
                "or point --python at that environment",
                severity=Severity.INFO if optional else None,
            )
        )
    for top, (chosen, names) in sorted(c.ambiguous.items()):
        out.append(
            EB208.at(
                Location(),
                f"module {top} is provided by {', '.join(names)}; chose {chosen}",
                hint="uninstall the distributions you do not use, or --explain to see the "
                "references",
            )
        )
    return out


def _mlflow_first(name: str) -> tuple[int, str]:
    return (0 if name in MLFLOW_DISTS else 1, name)


def prune_needed(
    needed: Mapping[str, Needed], env: InstalledEnv, *, prune: bool = True
) -> tuple[list[Needed], list[Needed]]:
    """(kept, pruned): each distribution with the others that require it; those required
    by another are pruned unless a flavor, the loader or the model's code names them or
    they are MLflow or its direct requirements (traced-only evidence protects nothing)."""
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
    return kept, pruned
