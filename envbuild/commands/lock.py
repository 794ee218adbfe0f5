"""envbuild lock MODEL"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.errors import ExitCode, InputError
from envbuild.findings import Finding, Location, Severity
from envbuild.model import read_model
from envbuild.options import (
    canonical_command,
    env_override_option,
    find_links_option,
    platform_option,
    python_version_option,
)
from envbuild.output import dumps, envelope, write_atomic
from envbuild.resolve import LOCK_NAME, parse_lock, resolve, target_for
from envbuild.source import ModelSource, model_argument
from envbuild.spec import read_workspace_env


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


@main.command(epilog=EXIT_CODES_HELP)
@python_version_option
@platform_option("linux/amd64", "linux/amd64")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Write the lock here instead of MODEL/{LOCK_NAME}.",
)
@click.option("--dry-run", is_flag=True, help="Resolve and report; write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 when the existing lock is stale.")
@find_links_option
@click.option("--offline", is_flag=True, help="No network: only --find-links and uv's cache.")
@env_override_option
@click.option(
    "--serving/--no-serving",
    default=True,
    show_default=True,
    help="Lock the serving stack (mlflow-skinny at the model's version, pandas, numpy) too.",
)
@click.option(
    "--exclude-newer",
    metavar="DATE",
    help="Ignore files uploaded to the index after DATE (e.g. 2026-11-01T00:00:00Z): "
    "the same lock tomorrow.",
)
@common
@model_argument
def lock(
    model: ModelSource,
    python_version: str | None,
    target_platform: str,
    output: Path | None,
    dry_run: bool,
    check: bool,
    find_links: tuple[Path, ...],
    offline: bool,
    env_override: Path | None,
    serving: bool,
    exclude_newer: str | None,
    fmt: str,
    command: str,
) -> None:
    """Resolve MODEL's environment for the target Python and platform and write a fully
    pinned requirements.lock with --hash lines (pip install --require-hashes -r ...).

    A conflict is reported as findings naming the requirement lines (file:line) on each
    side and the chain of dependencies between them."""
    if dry_run and check:
        raise InputError(
            "--dry-run and --check cannot be combined",
            hint="--check already writes nothing",
            location=Location(field="--check"),
        )
    if output is None and not (dry_run or check):
        model.require_local(
            "writing requirements.lock", hint="pass --output FILE (or --dry-run, --check)"
        )
    folder = read_model(model.path)
    findings: list[Finding] = list(folder.findings)
    override = read_workspace_env(env_override) if env_override else None
    spec = override.spec if override else None
    if python_version is None and spec is not None and spec.python is not None:
        python_version = spec.python.version
    target, target_findings = target_for(
        folder, python_version=python_version, platform=target_platform, env=spec
    )
    findings.extend(target_findings)
    # the header names the target and a canonical command, not the caller's spelling
    canonical = canonical_command(
        command,
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
    lock_ = resolution.lock
    if lock_ is not None and check:
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        problem = _stale(old, lock_.text, path)
        stale = problem is not None
        if problem:
            findings.append(problem)
    elif lock_ is not None and not dry_run:
        write_atomic(path, lock_.text)
        written = True
    code = exit_for(findings)
    if lock_ is None:
        code = int(ExitCode.FINDINGS)
    result: dict[str, Any] = {
        "model": str(folder.path),
        "source": model.provenance(),
        "target": target.to_json(),
        "lock_file": str(path),
        "written": written,
        "stale": stale,
        "lock": lock_.to_json() if lock_ else None,
    }
    if fmt == "json":
        click.echo(
            dumps(envelope(command, result=result, findings=findings, exit_code=code)), nl=False
        )
    else:
        if lock_ is not None and dry_run:
            click.echo(lock_.text, nl=False)
        elif lock_ is not None:
            verb = "wrote" if written else ("up to date" if stale is False else "stale")
            click.echo(f"{verb} {path} ({len(lock_.pins)} packages, {target.describe()})")
        emit_findings(findings)
    sys.exit(code)
