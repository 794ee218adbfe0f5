"""The stages ``envbuild check`` runs on a model it could read. Each calls another
module's public API and returns (findings, notes on what it skipped)."""

from __future__ import annotations

from envbuild.check.report import CheckOptions, Stage
from envbuild.contents import select
from envbuild.credentials import index_findings
from envbuild.findings import Finding
from envbuild.infer.static import dependency_findings
from envbuild.read import ModelFolder, read_workspace_env
from envbuild.resolve import Lock, override_findings, resolve, static_findings, target_for


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
        mlflow=options.mlflow,
        torch=options.torch,
    )
    findings.extend(result.findings)
    return findings, [], result.lock


def environment(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
    """Resolution first, so the dependency check knows what the resolved set provides."""
    found, notes, lock = resolution(folder, options)
    more = dependency_findings(
        folder, lock, python_version=options.python_version, platform=options.platform
    )
    return [*found, *more], notes


def contents(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
    """What an image would carry: secret-looking files (EB504), Git LFS pointers (EB107),
    files nothing in the MLmodel uses (EB410)."""
    selection = select(folder, exclude=options.exclude, allow_files=options.allow_files)
    return selection.findings(), []


def indexes(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
    """Index lines the build could not log in to (EB413); the indexes are asked unless
    --offline."""
    import os

    spec = read_workspace_env(options.env_override).spec if options.env_override else None
    found = index_findings(
        (spec or folder.env.spec).options,
        os.environ,
        probe=not options.offline,
        secret_urls=options.secret_urls,
    )
    return found, []


STAGES: tuple[Stage, ...] = (contents, indexes, environment)
