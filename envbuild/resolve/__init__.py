"""Resolve a model's environment for the Python and platform it will run on.

One module per stage: the target (``target.py``), a static pass over the requirements
(``static.py``; packaging only, no network), what a workspace override drops or changes
(``override.py``), the resolution itself with uv as the engine (here, through
``envbuild/_adapters/uv.py``), the explanation of a failure as findings that point at the
requirement lines on each side (``explain.py``), and drift between the resolved versions
and those the model was trained with (``drift.py``), and which locked pins have no wheel
for the target so would build from source (``wheels.py``). A successful resolution is a
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
from envbuild.resolve.as_of import CODES as _as_of_codes
from envbuild.resolve.as_of import derived_as_of
from envbuild.resolve.build_deps import CODES as _build_deps_codes
from envbuild.resolve.build_deps import loosened, relaxed_findings
from envbuild.resolve.drift import CODES as _drift_codes
from envbuild.resolve.drift import drift_findings
from envbuild.resolve.explain import CODES as _explain_codes
from envbuild.resolve.explain import explain_failure
from envbuild.resolve.indexes import CODES as _index_codes
from envbuild.resolve.indexes import unknown_index_findings
from envbuild.resolve.lock import CODES as _lock_codes
from envbuild.resolve.lock import LOCK_NAME, Lock, Pin, parse_lock, render_lock, source_label
from envbuild.resolve.numpy_abi import CODES as _numpy_codes
from envbuild.resolve.numpy_abi import ConstraintPlan, numpy_plan
from envbuild.resolve.override import CODES as _override_codes
from envbuild.resolve.override import override_findings
from envbuild.resolve.sklearn_api import CODES as _sklearn_codes
from envbuild.resolve.sklearn_api import sklearn_plan
from envbuild.resolve.stack import CODES as _stack_codes
from envbuild.resolve.stack import (
    TORCH_CHOICES,
    TORCH_CPU_INDEX,
    TorchChoice,
    TorchPlan,
    cpu_index_links,
    cuda_torch_finding,
    kept_full,
    missing_without_full,
    preference_dropped,
    skinny_served,
    torch_plan,
)
from envbuild.resolve.static import CODES as _static_codes
from envbuild.resolve.static import (
    active_constraints,
    req_ref,
    specifiers_disjoint,
    static_findings,
)
from envbuild.resolve.target import CODES as _target_codes
from envbuild.resolve.target import Target, target_for
from envbuild.resolve.wheels import CODES as _wheel_codes
from envbuild.resolve.wheels import source_build_findings, source_builds
from envbuild.serving import (
    MLFLOW_CHOICES,
    MlflowChoice,
    ServingStack,
    model_mlflow_version,
    serving_stack,
)
from envbuild.versions import DEFAULT_PYTHON, PLATFORMS, Platform

__all__ = [
    "CODES",
    "DEFAULT_PYTHON",
    "LOCK_NAME",
    "MLFLOW_CHOICES",
    "PLATFORMS",
    "TORCH_CHOICES",
    "Lock",
    "MlflowChoice",
    "Pin",
    "Platform",
    "Resolution",
    "Target",
    "TorchChoice",
    "drift_findings",
    "explain_failure",
    "override_findings",
    "parse_failure",
    "parse_lock",
    "render_lock",
    "resolve",
    "source_build_findings",
    "source_builds",
    "specifiers_disjoint",
    "static_findings",
    "target_for",
]

log = logging.getLogger("envbuild")


# the resolver's codes, each declared in the module that emits it (codes.py reads this)
CODES: dict[str, str] = {
    **_target_codes,
    **_index_codes,
    **_lock_codes,
    **_static_codes,
    **_override_codes,
    **_drift_codes,
    **_explain_codes,
    **_wheel_codes,
    **_build_deps_codes,
    **_stack_codes,
    **_numpy_codes,
    **_sklearn_codes,
    **_as_of_codes,
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
    stack: ServingStack,
    prefer: bool,
    torch: TorchPlan,
    compat: ConstraintPlan,
    exclude_newer: str | None = None,
) -> Inputs:
    marker_env = target.marker_env()
    reqs: list[Requirement] = []
    # python_env.yaml's build_dependencies (pip, setuptools, wheel) are installed into the
    # environment as MLflow's virtualenv manager installs them: locked with the rest
    for req in (*spec.requirements, *spec.build_dependencies):
        if req.kind in (ReqKind.EDITABLE, ReqKind.VCS, ReqKind.PATH):
            continue
        if req.kind is ReqKind.URL and req.requirement is None:
            continue
        reqs.append(req)
    reqs = stack.lines(reqs, prefer=prefer)
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
    for s in stack.added:
        if s.name and s not in direct.get(s.name, []):
            also.setdefault(s.name, []).append(s)
    constraint_of: dict[str, list[Requirement]] = {}
    cons: list[str] = []
    for c in (*active_constraints(spec, marker_env), *torch.constraints, *compat.constraints):
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
        torch_backend=torch.backend,
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
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
) -> Resolution:
    """Static pass, then uv for the whole environment (plus the serving stack) on
    ``target``; a Lock, or findings that explain why not. ``env`` replaces the model's
    EnvSpec; ``override`` (a workspace environment) does too, and adds what it drops or
    changes against the model's own requirements (override_findings). ``mlflow`` and
    ``torch`` choose the serving MLflow distribution and torch's build (serving.py,
    resolve/stack.py)."""
    findings: list[Finding] = []
    if override is not None:
        findings.extend(override_findings(folder, override))
        env = env or override.spec
    spec = env or folder.env.spec
    if exclude_newer is None and env is None:
        exclude_newer, dated = derived_as_of(folder)
        findings.extend([dated] if dated else [])
    findings.extend(static_findings(folder, target, spec))
    if any(f.code == "EB302" for f in findings):
        # the conflict is already explained line by line; uv would only repeat it
        return Resolution(lock=None, findings=tuple(findings))
    plan = torch_plan(torch, spec.requirements, find_links, target)
    findings.extend(plan.findings)
    reqs = list(spec.requirements)
    compat = numpy_plan(reqs) + sklearn_plan(reqs)
    findings.extend(compat.findings)
    mlflow_version = model_mlflow_version(folder.mlmodel.mlflow_version, spec)

    def stack_for(choice: MlflowChoice) -> ServingStack:
        if not include_serving:
            return ServingStack()
        return serving_stack(
            mlflow_version, reqs, mlflow=choice, decided=tuple(spec.build_dependencies)
        )

    def attempt(
        stack: ServingStack, spec: EnvSpec = spec
    ) -> tuple[Inputs, _uv.CompileResult, str | None]:
        """The model's mlflow_version as a pin first, then (on a failure) without it."""
        dropped: str | None = None
        for prefer in (True, False) if stack.preferred is not None else (False,):
            inputs = _inputs(
                folder,
                target,
                spec,
                find_links=find_links,
                offline=offline,
                stack=stack,
                prefer=prefer,
                torch=plan,
                compat=compat,
                exclude_newer=exclude_newer,
            )
            log.info("resolving %d requirements for %s", len(inputs.lines), target.describe())
            result = _uv.compile_requirements(inputs.request)
            if result.ok or not prefer:
                return inputs, result, dropped
            dropped = _short_reason(result.stderr)
        raise AssertionError("unreachable")  # pragma: no cover

    stack = stack_for(mlflow)
    inputs, result, dropped = attempt(stack)
    # the build dependencies' pins may be what conflicts: MLflow lets the requirements win,
    # so those uv's failure blames are dropped or opened, a retry at a time
    loose = spec
    while not result.ok:
        opened = loosened(loose, result.stderr)
        if opened is None:
            break
        loose = opened
        inputs, result, dropped = attempt(stack, loose)
    if not result.ok:
        # the failure is the rest's: its nearest fixes are sought without the build tools
        rest = replace(loose, build_dependencies=())
        inputs, _, _ = attempt(stack, rest) if loose.build_dependencies else (inputs, None, None)
        findings.extend(explain_failure(result.stderr, inputs, target, rest, suggest=suggest))
        return Resolution(lock=None, findings=tuple(findings))
    log.info("resolved in %.2fs", result.seconds)
    compiled = _uv.parse_compiled(result.stdout)
    pins = _pins(compiled, inputs)
    scanned: list[set[str]] = []

    def needed() -> set[str]:
        """What the model's files need (the static scan), computed at most once."""
        if not scanned:
            from envbuild.infer.static import needed_distributions

            scanned.append(needed_distributions(folder))
        return scanned[0]

    if stack.swapped:
        missing = missing_without_full(needed(), pins)
        brought: set[str] = set()
        if missing:
            log.info("the model needs %s: resolving with full mlflow", ", ".join(sorted(missing)))
            full = stack_for("full")
            f_inputs, f_result, f_dropped = attempt(full, loose)
            if f_result.ok:
                f_compiled = _uv.parse_compiled(f_result.stdout)
                f_pins = _pins(f_compiled, f_inputs)
                brought = missing - missing_without_full(missing, f_pins)
                if brought:
                    findings.extend(kept_full(old, brought) for old, _ in stack.swapped)
                    stack, inputs, pins, dropped = full, f_inputs, f_pins, f_dropped
                    compiled = f_compiled
        if not brought:
            findings.extend(skinny_served(old, new) for old, new in stack.swapped)
    if dropped and stack.preferred is not None:
        name = stack.preferred.name
        locked = next((p for p in pins if p.name == name), None)
        findings.append(preference_dropped(stack.preferred, locked, dropped))
    findings.extend(
        unknown_index_findings(
            compiled, inputs.request, torch_index=TORCH_CPU_INDEX if plan.backend else None
        )
    )
    if torch == "default":
        suggestion = cuda_torch_finding(folder, pins, declared=reqs, needed=needed)
        if suggestion is not None:
            findings.append(suggestion)
    options = (
        *inputs.options,
        *(
            PipOption(option="--find-links", value=url, location=Location(field="--torch"))
            # only where uv's PyTorch CPU index gave them: a +cpu wheel from a local
            # --find-links folder needs no page of an index the build may not reach
            for url in (
                cpu_index_links(pins, (c.name or "" for c in plan.constraints))
                if plan.backend
                else ()
            )
        ),
    )
    text = render_lock(
        pins,
        target=target,
        options=options,
        command=command,
        sources=_sources(spec, stack if include_serving else None),
        exclude_newer=exclude_newer,
    )
    lock = Lock(target=target, pins=pins, text=text, options=options)
    findings.extend(relaxed_findings(spec, lock))
    lock = replace(lock, source_builds=source_builds(lock, offline=offline))
    located = {name: reqs[0].location for name, reqs in inputs.direct.items() if reqs}
    findings.extend(source_build_findings(lock, located))
    findings.extend(drift_findings(folder, lock, spec if env is not None else None))
    return Resolution(lock=lock, findings=tuple(findings))


def _short_reason(stderr: str) -> str:
    """uv's reason in one line: the first line after "No solution found"."""
    lines = [
        re.sub("^[\\s\u00d7\u2570\u2500\u25b6\u2502]+", "", line).strip()
        for line in _uv.error_text(stderr).splitlines()
    ]
    lines = [re.sub(r"^(error|cause|hint):\s*", "", line) for line in lines]
    lines = [line for line in lines if line and not line.startswith("No solution found")]
    text = lines[0] if lines else "uv found no solution"
    return text if len(text) <= 240 else text[:237] + "..."


def _sources(spec: EnvSpec, stack: ServingStack | None) -> str:
    files = ", ".join(spec.files) if spec.files else "(no environment files)"
    if stack is not None:
        return f"{files}; serving stack: {stack.describe()}"
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
                name=name,
                version=version,
                hashes=tuple(sorted(c.hashes)),
                requested_by=tuple(seen),
                index=source_label(c.index) if c.index else None,
            )
        )
    return tuple(sorted(pins, key=lambda p: p.name))
