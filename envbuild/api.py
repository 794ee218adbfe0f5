"""The library API: what each command does, callable from Python.

Every function takes a model folder or URI (``runs:/``, ``models:/``, an artifact URI) and
keyword options, and returns a frozen result whose ``to_json()`` is the ``result`` of the
command's JSON envelope, with its ``findings`` and ``exit_code``. Problems that stop a
command raise ``envbuild.errors.EnvbuildError`` (its ``exit_code`` says which kind). The
library never prints; progress goes to the ``envbuild`` logger.

    >>> from envbuild import api
    >>> shown = api.show("examples/sklearn-credit")
    >>> shown.folder.mlmodel.flavors[0].name
    'python_function'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.contents import Contents, select
from envbuild.errors import ExitCode, InputError
from envbuild.findings import Finding, Location, Severity, exit_code_for
from envbuild.infer import Inference
from envbuild.installed import InstalledEnv, start_inspect
from envbuild.output import canonical_command, header, write_atomic
from envbuild.read import ModelFolder, read_model, read_workspace_env
from envbuild.resolve import LOCK_NAME, Lock, Target, parse_lock, resolve, target_for
from envbuild.safety import Verdict, require_safe
from envbuild.sources import ModelSource, materialize

__all__ = [
    "InferResult",
    "LockResult",
    "ModelLocation",
    "ShowResult",
    "check",
    "infer",
    "lock",
    "show",
]

ModelLocation = str | os.PathLike[str] | ModelSource


def _source(
    model: ModelLocation,
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ModelSource:
    if isinstance(model, ModelSource):
        return model
    return materialize(
        os.fspath(model), tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )


# --------------------------------------------------------------------------------------
# show


@dataclass(frozen=True, kw_only=True)
class ShowResult:
    source: ModelSource
    folder: ModelFolder
    files: Contents

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self.folder.findings)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.folder.to_json(),
            "files": self.files.to_json(),
            "source": self.source.provenance(),
        }


def show(
    model: ModelLocation,
    *,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ShowResult:
    """What envbuild reads from ``model`` (nothing is loaded or run), and which of its
    files an image would carry."""
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path)
    return ShowResult(
        source=source,
        folder=folder,
        files=select(folder, exclude=exclude, allow_files=allow_files),
    )


# --------------------------------------------------------------------------------------
# lock


@dataclass(frozen=True, kw_only=True)
class LockResult:
    source: ModelSource
    folder: ModelFolder
    target: Target
    lock: Lock | None  # None when resolution failed (the findings say why)
    path: Path  # where the lock is (or would be) written
    written: bool
    stale: bool | None  # with check=True: whether the existing lock differs
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.FINDINGS) if self.lock is None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": str(self.folder.path),
            "source": self.source.provenance(),
            "target": self.target.to_json(),
            "lock_file": str(self.path),
            "written": self.written,
            "stale": self.stale,
            "lock": self.lock.to_json() if self.lock else None,
        }


def _stale(old: str | None, new: str, path: Path) -> Finding | None:
    if old == new:
        return None
    if old is None:
        what = "it does not exist"
    else:
        before, after = parse_lock(old), parse_lock(new)
        changes = [
            f"{n} {before.get(n, '-')} -> {after.get(n, '-')}"
            for n in sorted(set(before) | set(after))
            if before.get(n) != after.get(n)
        ]
        what = (
            "pins change: " + ", ".join(changes[:8]) + (" ..." if len(changes) > 8 else "")
            if changes
            else "the header, options or hashes differ"
        )
    return Finding(
        code="EB340",
        severity=Severity.ERROR,
        message=f"{path.name} is stale: {what}",
        hint="run envbuild lock again (without --check) and commit the result",
        location=Location(file=str(path)),
    )


def lock(
    model: ModelLocation,
    *,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    output: Path | None = None,
    dry_run: bool = False,
    check: bool = False,
    find_links: Sequence[Path] = (),
    offline: bool = False,
    env_override: Path | None = None,
    serving: bool = True,
    exclude_newer: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> LockResult:
    """Resolve ``model``'s environment for the target Python and platform (uv) and write
    ``requirements.lock`` (or ``output``); ``check`` compares with the existing lock
    instead (EB340 when stale), ``dry_run`` writes nothing."""
    if dry_run and check:
        raise InputError(
            "--dry-run and --check cannot be combined",
            hint="--check already writes nothing",
            location=Location(field="--check"),
        )
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    if output is None and not (dry_run or check):
        source.require_local(
            "writing requirements.lock", hint="pass --output FILE (or --dry-run, --check)"
        )
    folder = read_model(source.path)
    findings: list[Finding] = list(folder.findings)
    override = read_workspace_env(env_override) if env_override else None
    spec = override.spec if override else None
    if python_version is None and spec is not None and spec.python is not None:
        python_version = spec.python.version
    target, target_findings = target_for(
        folder, python_version=python_version, platform=platform, env=spec
    )
    findings.extend(target_findings)
    # the header names the target and a canonical command, not the caller's spelling
    canonical = canonical_command(
        "envbuild lock",
        folder.path.resolve().name,
        ("--python-version", str(target.python)),
        ("--platform", target.platform),
        ("--env-override", env_override.name if env_override else None),
        ("--no-serving", not serving),
        ("--exclude-newer", exclude_newer),
    )
    resolution = resolve(
        folder,
        target,
        override=override,
        find_links=find_links,
        offline=offline,
        include_serving=serving,
        command=canonical,
        exclude_newer=exclude_newer,
    )
    findings.extend(resolution.findings)
    path = output or folder.path / LOCK_NAME
    written = False
    stale: bool | None = None
    locked = resolution.lock
    if locked is not None and check:
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        problem = _stale(old, locked.text, path)
        stale = problem is not None
        if problem:
            findings.append(problem)
    elif locked is not None and not dry_run:
        write_atomic(path, locked.text)
        written = True
    return LockResult(
        source=source,
        folder=folder,
        target=target,
        lock=locked,
        path=path,
        written=written,
        stale=stale,
        findings=tuple(findings),
    )


# --------------------------------------------------------------------------------------
# infer


@dataclass(frozen=True, kw_only=True)
class InferResult:
    source: ModelSource
    folder: ModelFolder
    inference: Inference
    files: dict[str, str]  # file name -> rendered text (empty with explain/check)
    written: tuple[str, ...]
    dry_run: bool
    explain: dict[str, Any] | None
    drift: tuple[Finding, ...] | None  # with check=True: the differences
    safety: Verdict | None  # with trace=True
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return 0 if self.explain is not None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "model": str(self.folder.path),
            "source": self.source.provenance(),
            **self.inference.to_json(),
        }
        if self.explain is not None:
            doc["explain"] = self.explain
        elif self.drift is not None:
            doc["check"] = {"ok": not self.drift, "differences": [f.to_json() for f in self.drift]}
        else:
            doc["files"] = self.files
            doc["written"] = list(self.written)
        return doc


def _env_targets(folder: ModelFolder) -> dict[str, str]:
    """kind -> file name inside the folder, as the MLmodel names them."""
    pyfunc = folder.mlmodel.pyfunc
    conda = (pyfunc.env_conda if pyfunc else None) or "conda.yaml"
    venv = (pyfunc.env_virtualenv if pyfunc else None) or "python_env.yaml"
    return {"conda": conda, "virtualenv": venv, "requirements": "requirements.txt"}


def infer(
    model: ModelLocation,
    *,
    python: str | None = None,
    dry_run: bool = False,
    check: bool = False,
    force: bool = False,
    prune: bool = True,
    explain: str | None = None,
    trace: bool = False,
    trust_model: bool = False,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> InferResult:
    """Infer the environment ``model`` needs from the training environment (``python``,
    default this interpreter) and write its conda.yaml, python_env.yaml and
    requirements.txt; ``check`` compares instead, ``explain`` says why one package is
    (not) required, ``trace`` loads the model (refused when the scan calls it unsafe)."""
    from envbuild._paths import inside
    from envbuild.infer import check_drift, merge_existing, run_trace
    from envbuild.infer import infer as infer_env
    from envbuild.write import render_conda_yaml, render_python_env, render_requirements

    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    if not (check or dry_run or explain is not None):
        source.require_local(
            "writing the environment files", hint="use --check or --dry-run with a URI"
        )
    pending = start_inspect(python)  # runs while the model is read and scanned
    folder = read_model(source.path)
    traced = None
    verdict = None
    env: InstalledEnv | Callable[[], InstalledEnv] = pending
    if trace:
        # --trace loads the model: the static verdict comes first, on the inspected Python.
        env = pending()
        verdict = require_safe(
            folder,
            command="envbuild infer --trace",
            target_python=env.python_version,
            trusted=trust_model,
        )
        traced = run_trace(python or sys.executable, folder.path)
    inf = infer_env(folder, env, prune=prune, trace=traced)
    findings: list[Finding] = [*folder.findings, *inf.findings]
    trusted = verdict.trusted_finding() if verdict is not None else None
    if trusted is not None:
        findings.append(trusted)
    files: dict[str, str] = {}
    written: list[str] = []
    drift: tuple[Finding, ...] | None = None
    explained = inf.explain(explain) if explain is not None else None
    if explained is None and check:
        drift = tuple(check_drift(inf, folder))
        findings.extend(drift)
    elif explained is None:
        invocation = canonical_command(
            "envbuild infer",
            source.uri,
            ("--python", python),
            ("--no-prune", not prune),
            ("--trace", trace),
        )
        spec = inf.spec if force else merge_existing(inf.spec, folder)
        names = _env_targets(folder)
        head = header(invocation)
        files = {
            names["conda"]: render_conda_yaml(spec, head),
            names["virtualenv"]: render_python_env(
                spec, head, requirements_file="requirements.txt"
            ),
            names["requirements"]: render_requirements(spec, head),
        }
        if not dry_run:
            for name, text in files.items():
                write_atomic(inside(folder.path, name, location=Location(file=name)), text)
                written.append(name)
    return InferResult(
        source=source,
        folder=folder,
        inference=inf,
        files=files,
        written=tuple(written),
        dry_run=dry_run,
        explain=explained,
        drift=drift,
        safety=verdict,
        findings=tuple(findings),
    )


# --------------------------------------------------------------------------------------
# check


def check(
    models: Sequence[ModelLocation],
    *,
    ignore: Sequence[str] = (),
    strict: bool = False,
    offline: bool = False,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    env_override: Path | None = None,
    find_links: Sequence[Path] = (),
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    jobs: int = 0,
) -> Any:
    """The pre-deploy check of every model in ``models`` (in parallel): an
    ``envbuild.check.Report`` whose ``exit_code`` a pipeline can trust."""
    from envbuild.check import run_check
    from envbuild.check.settings import options_from
    from envbuild.check.stages import STAGES

    options = options_from(
        {},
        ignore=tuple(ignore),
        strict=strict,
        offline=offline,
        python_version=python_version,
        platform=platform,
        env_override=env_override,
        find_links=tuple(find_links),
        exclude=tuple(exclude),
        allow_files=tuple(allow_files),
        tracking_uri=tracking_uri,
    )
    locations = [m.uri if isinstance(m, ModelSource) else os.fspath(m) for m in models]
    return run_check(locations, options, STAGES, jobs=jobs)
