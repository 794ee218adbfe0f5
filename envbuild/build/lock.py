"""The lock, from the resolver: the one place the build stage drives the resolver, for
the commands that build from a model folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from envbuild.findings import Finding
from envbuild.read import ModelFolder, WorkspaceEnv
from envbuild.resolve.lock import Lock
from envbuild.resolve.stack import TorchChoice
from envbuild.serving import MlflowChoice


def host_platform() -> str:
    import platform

    return "linux/arm64" if platform.machine().lower() in ("aarch64", "arm64") else "linux/amd64"


def lock_for(
    folder: ModelFolder,
    *,
    python_version: str | None,
    platform: str,
    override: WorkspaceEnv | None = None,
    find_links: Sequence[Path] = (),
    command: str = "envbuild image",
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
) -> tuple[list[Finding], Lock | None]:
    """Resolve the model's environment (or the override's) for the target with the
    resolver and return its findings and the lock."""
    from envbuild import resolve as resolver

    target, target_findings = resolver.target_for(
        folder,
        python_version=python_version,
        platform=platform,
        env=override.spec if override is not None else None,
    )
    resolution = resolver.resolve(
        folder,
        target,
        override=override,
        find_links=find_links,
        command=command,
        mlflow=mlflow,
        torch=torch,
    )
    findings = [*target_findings, *resolution.findings]
    return findings, resolution.lock
