"""The stages ``envbuild check`` runs on a model it could read. Each calls another
module's public API and returns (findings, notes on what it skipped)."""

from __future__ import annotations

from envbuild.check import CheckOptions, Stage
from envbuild.findings import Finding
from envbuild.model import ModelFolder
from envbuild.resolve import override_findings, resolve, static_findings, target_for
from envbuild.spec import read_workspace_env


def resolution(folder: ModelFolder, options: CheckOptions) -> tuple[list[Finding], list[str]]:
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
        return findings, ["resolution against the package index (--offline)"]
    result = resolve(
        folder,
        target,
        override=override,
        find_links=options.find_links,
        offline=options.offline,
        command="envbuild check",
    )
    findings.extend(result.findings)
    return findings, []


STAGES: tuple[Stage, ...] = (resolution,)
