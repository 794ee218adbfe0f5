"""``envbuild lock``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.api._common import ModelLocation, _source
from envbuild.errors import ExitCode, InputError
from envbuild.findings import Finding, Location, exit_code_for
from envbuild.output import canonical_command, write_atomic
from envbuild.read import ModelFolder, read_model, read_workspace_env
from envbuild.resolve import (
    LOCK_NAME,
    Lock,
    MlflowChoice,
    Target,
    TorchChoice,
    parse_lock,
    resolve,
    target_for,
)
from envbuild.resolve.lock import EB340
from envbuild.sources import ModelSource


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
    return EB340.at(
        Location(file=str(path)),
        f"{path.name} is stale: {what}",
        hint="run envbuild lock again (without --check) and commit the result",
    )


def lock(
    model: ModelLocation,
    *,
    env_from: str = "auto",
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
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> LockResult:
    """Resolve ``model``'s environment for the target Python and platform (uv) and write
    ``requirements.lock`` (or ``output``); ``check`` compares with the existing lock
    instead (EB340 when stale), ``dry_run`` writes nothing. ``mlflow`` chooses the serving
    MLflow distribution, ``torch="cpu"`` torch's CPU build."""
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
    folder = read_model(source.path, env_from=env_from)
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
        ("--mlflow", mlflow if mlflow != "skinny" else None),
        ("--torch", torch if torch != "default" else None),
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
        mlflow=mlflow,
        torch=torch,
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
