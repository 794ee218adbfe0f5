"""Resolve a model's environment for the Python and platform it will run on.

One module per stage: the target (``target.py``), a static pass over the requirements
(``static.py``; packaging only, no network), what a workspace override drops or changes
(``override.py``), the resolution itself with uv as the engine (here, through
``envbuild/_adapters/uv.py``), the explanation of a failure as findings that point at the
requirement lines on each side (``explain.py``), and drift between the resolved versions
and those the model was trained with (``drift.py``). A successful resolution is a
:class:`Lock` (``lock.py``): every package pinned with its hashes, rendered as a pip
requirements file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envbuild._adapters import uv as _uv
from envbuild._adapters.uv import parse_failure
from envbuild.findings import Finding, Location, Severity
from envbuild.read import EnvSpec, ModelFolder, PipOption, ReqKind, Requirement, WorkspaceEnv
from envbuild.resolve.drift import CODES as _drift_codes
from envbuild.resolve.drift import drift_findings
from envbuild.resolve.explain import CODES as _explain_codes
from envbuild.resolve.explain import explain_failure
from envbuild.resolve.lock import CODES as _lock_codes
from envbuild.resolve.lock import LOCK_NAME, Lock, Pin, parse_lock, render_lock
from envbuild.resolve.override import CODES as _override_codes
from envbuild.resolve.override import override_findings
from envbuild.resolve.static import CODES as _static_codes
from envbuild.resolve.static import (
    active_constraints,
    req_ref,
    specifiers_disjoint,
    static_findings,
)
from envbuild.resolve.target import CODES as _target_codes
from envbuild.resolve.target import Target, target_for
from envbuild.serving import serving_requirements
from envbuild.versions import DEFAULT_PYTHON, PLATFORMS, Platform

__all__ = [
    "CODES",
    "DEFAULT_PYTHON",
    "LOCK_NAME",
    "PLATFORMS",
    "Lock",
    "Pin",
    "Platform",
    "Resolution",
    "Target",
    "drift_findings",
    "explain_failure",
    "override_findings",
    "parse_failure",
    "parse_lock",
    "render_lock",
    "resolve",
    "specifiers_disjoint",
    "static_findings",
    "target_for",
]

log = logging.getLogger("envbuild")


# the resolver's codes, each declared in the module that emits it (codes.py reads this)
CODES: dict[str, str] = {
    **_target_codes,
    **_lock_codes,
    **_static_codes,
    **_override_codes,
    **_drift_codes,
    **_explain_codes,
}


@dataclass(frozen=True, kw_only=True)
class Resolution:
    lock: Lock | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return self.lock is not None and not any(
            f.severity is Severity.ERROR for f in self.findings
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lock": self.lock.to_json() if self.lock else None,
            "findings": [f.to_json() for f in self.findings],
        }


# --------------------------------------------------------------------------------------
# resolution


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What goes to uv, and where each line came from."""

    lines: tuple[str, ...]
    constraints: tuple[str, ...]
    direct: dict[str, list[Requirement]]  # canonical name -> requirement lines sent to uv
    also: dict[str, list[Requirement]]  # serving lines left out because the model names them
    constraint_of: dict[str, list[Requirement]]
    options: tuple[PipOption, ...]
    request: _uv.CompileRequest


def _inputs(
    folder: ModelFolder,
    target: Target,
    spec: EnvSpec,
    *,
    find_links: Sequence[Path],
    offline: bool,
    include_serving: bool,
    exclude_newer: str | None = None,
) -> Inputs:
    marker_env = target.marker_env()
    reqs: list[Requirement] = []
    for req in spec.requirements:
        if req.kind in (ReqKind.EDITABLE, ReqKind.VCS, ReqKind.PATH):
            continue
        if req.kind is ReqKind.URL and req.requirement is None:
            continue
        reqs.append(req)
    model_names = {r.name for r in reqs if r.name}
    if include_serving:
        for s in serving_requirements(folder.mlmodel.mlflow_version):
            pkg = s.requirement
            # an unpinned serving package the model already names adds nothing to uv
            if pkg is not None and not pkg.specifier and s.name in model_names:
                continue
            reqs.append(s)
    direct: dict[str, list[Requirement]] = {}
    lines: list[str] = []
    for req in reqs:
        if req.name:
            direct.setdefault(req.name, []).append(req)
        if req.kind is ReqKind.NAMED and req.requirement is not None:
            lines.append(str(req.requirement))
        else:
            lines.append(req.raw)
    also: dict[str, list[Requirement]] = {}
    if include_serving:
        for s in serving_requirements(folder.mlmodel.mlflow_version):
            if s.name and s not in direct.get(s.name, []):
                also.setdefault(s.name, []).append(s)
    constraint_of: dict[str, list[Requirement]] = {}
    cons: list[str] = []
    for c in active_constraints(spec, marker_env):
        if c.name and c.requirement is not None:
            constraint_of.setdefault(c.name, []).append(c)
            cons.append(str(c.requirement))
    index_url: str | None = None
    extra: list[str] = []
    links: list[str] = []
    no_index = pre = False
    only_binary: list[str] = []
    no_binary: list[str] = []
    kept: list[PipOption] = []
    for opt in spec.options:
        value = _expand(opt.value) if opt.value else None
        if opt.option == "--index-url" and value:
            index_url = value
            kept.append(opt)
        elif opt.option == "--extra-index-url" and value:
            extra.append(value)
            kept.append(opt)
        elif opt.option == "--find-links" and value:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
                links.append(value)
                kept.append(opt)
            else:
                local = str((folder.path / value).resolve())
                links.append(local)
                kept.append(replace(opt, value=local))
        elif opt.option == "--no-index":
            no_index = True
            kept.append(opt)
        elif opt.option == "--pre":
            pre = True
        elif opt.option == "--only-binary" and value:
            only_binary.extend(v for v in value.split(",") if v)
        elif opt.option == "--no-binary" and value:
            no_binary.extend(v for v in value.split(",") if v)
        elif opt.option == "--trusted-host":
            kept.append(opt)
    for link in find_links:
        path = str(Path(link).resolve())
        links.append(path)
        kept.append(PipOption(option="--find-links", value=path, location=Location()))
    if offline and links:
        no_index = True  # a wheelhouse: only its files, never the cache of an index
    request = _uv.CompileRequest(
        requirements=tuple(lines),
        constraints=tuple(cons),
        python_version=str(target.python),
        platform=target.uv_platform,
        index_url=index_url,
        extra_index_urls=tuple(extra),
        find_links=tuple(links),
        no_index=no_index,
        offline=offline,
        pre=pre,
        only_binary=tuple(only_binary),
        no_binary=tuple(no_binary),
        exclude_newer=exclude_newer,
    )
    return Inputs(
        lines=tuple(lines),
        constraints=tuple(cons),
        direct=direct,
        also=also,
        constraint_of=constraint_of,
        options=tuple(kept),
        request=request,
    )


def _expand(value: str) -> str:
    """pip expands ``${VAR}`` in requirement files; so do we before handing a URL to uv."""
    import os

    from envbuild.credentials import expand

    return expand(value, os.environ)


def resolve(
    folder: ModelFolder,
    target: Target,
    *,
    env: EnvSpec | None = None,
    find_links: Sequence[Path] = (),
    offline: bool = False,
    include_serving: bool = True,
    command: str = "envbuild lock",
    suggest: bool = True,
    override: WorkspaceEnv | None = None,
    exclude_newer: str | None = None,
) -> Resolution:
    """Static pass, then uv for the whole environment (plus the serving stack) on
    ``target``; a Lock, or findings that explain why not. ``env`` replaces the model's
    EnvSpec; ``override`` (a workspace environment) does too, and adds what it drops or
    changes against the model's own requirements (override_findings)."""
    findings: list[Finding] = []
    if override is not None:
        findings.extend(override_findings(folder, override))
        env = env or override.spec
    spec = env or folder.env.spec
    findings.extend(static_findings(folder, target, spec))
    if any(f.code == "EB302" for f in findings):
        # the conflict is already explained line by line; uv would only repeat it
        return Resolution(lock=None, findings=tuple(findings))
    inputs = _inputs(
        folder,
        target,
        spec,
        find_links=find_links,
        offline=offline,
        include_serving=include_serving,
        exclude_newer=exclude_newer,
    )
    log.info("resolving %d requirements for %s", len(inputs.lines), target.describe())
    result = _uv.compile_requirements(inputs.request)
    if not result.ok:
        findings.extend(explain_failure(result.stderr, inputs, target, spec, suggest=suggest))
        return Resolution(lock=None, findings=tuple(findings))
    log.info("resolved in %.2fs", result.seconds)
    compiled = _uv.parse_compiled(result.stdout)
    pins = _pins(compiled, inputs)
    text = render_lock(
        pins,
        target=target,
        options=inputs.options,
        command=command,
        sources=_sources(spec, include_serving, folder),
        exclude_newer=exclude_newer,
    )
    lock = Lock(target=target, pins=pins, text=text, options=inputs.options)
    findings.extend(drift_findings(folder, lock, spec if env is not None else None))
    return Resolution(lock=lock, findings=tuple(findings))


def _sources(spec: EnvSpec, include_serving: bool, folder: ModelFolder) -> str:
    files = ", ".join(spec.files) if spec.files else "(no environment files)"
    if include_serving:
        serving = ", ".join(s.raw for s in serving_requirements(folder.mlmodel.mlflow_version))
        return f"{files}; serving stack: {serving}"
    return files


def _pins(compiled: Iterable[_uv.CompiledPin], inputs: Inputs) -> tuple[Pin, ...]:
    pins = []
    for c in compiled:
        name = canonicalize_name(c.name)
        requested: list[str] = []
        parents: list[str] = []
        for via in c.via:
            if via.startswith("-r"):
                requested.extend(req_ref(r) for r in inputs.direct.get(name, []))
            elif via.startswith("-c"):
                requested.extend(req_ref(r) for r in inputs.constraint_of.get(name, []))
            else:
                parents.append(canonicalize_name(via))
        if name in inputs.direct and not any(v.startswith("-r") for v in c.via):
            requested.extend(req_ref(r) for r in inputs.direct[name])
        if requested:
            requested.extend(req_ref(r) for r in inputs.also.get(name, []))
        seen: list[str] = []
        for item in [*requested, *sorted(set(parents))]:
            if item not in seen:
                seen.append(item)
        try:
            version = Version(c.version)
        except InvalidVersion:
            continue
        pins.append(
            Pin(
                name=name, version=version, hashes=tuple(sorted(c.hashes)), requested_by=tuple(seen)
            )
        )
    return tuple(sorted(pins, key=lambda p: p.name))
