"""envbuild image MODEL -t NAME[:TAG]"""

from __future__ import annotations

import platform as _platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from envbuild import _docker
from envbuild._adapters.uv import uv_requirement
from envbuild.build import (
    build_image,
    download_wheelhouse,
    host_platform,
    human_size,
    lock_for,
    write_context,
)
from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.errors import EnvbuildError, ExitCode
from envbuild.findings import Finding
from envbuild.options import (
    allow_file_option,
    env_override_option,
    exclude_option,
    find_links_option,
    model_argument,
    platform_option,
    python_version_option,
    trust_model_option,
)
from envbuild.output import canonical_command, dumps, envelope
from envbuild.read import read_model, read_workspace_env
from envbuild.render import render
from envbuild.resolve import target_for
from envbuild.safety import require_safe
from envbuild.sources import ModelSource


def _host_uv(target_platform: str) -> Path | None:
    """The host's uv binary goes into the context when it runs on the target platform;
    otherwise the build installs uv with pip."""
    if target_platform != host_platform() or _platform.system() != "Linux":
        return None
    from uv import find_uv_bin

    return Path(find_uv_bin())


@main.command(epilog=EXIT_CODES_HELP)
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    help="Image name[:tag], applied once the smoke test passed; repeatable.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the build context (Dockerfile, lock, server, model) to DIR and stop.",
)
@click.option("--no-build", is_flag=True, help="Render only: print the Dockerfile.")
@click.option("--base-image", help="Base image instead of python:X.Y-slim.")
@python_version_option
@platform_option(None, "this machine's")
@env_override_option
@find_links_option
@click.option(
    "--wheelhouse",
    is_flag=True,
    help="Download every locked wheel here and install with --no-index (no network in the build).",
)
@click.option(
    "--network",
    "network_mode",
    help="Network for the build's RUN steps (e.g. none, to prove a --wheelhouse build "
    "needs no network).",
)
@click.option(
    "--smoke/--no-smoke",
    default=True,
    show_default=True,
    help="Run the image (sandboxed) and check a prediction on the input example, then tag it.",
)
@click.option(
    "--keep-failed",
    is_flag=True,
    help="Keep an image whose smoke test fails, as NAME:TAG-failed (default: remove it).",
)
@trust_model_option
@exclude_option
@allow_file_option
@common
@model_argument
def image(
    model: ModelSource,
    tags: tuple[str, ...],
    output: Path | None,
    no_build: bool,
    base_image: str | None,
    python_version: str | None,
    target_platform: str | None,
    env_override: Path | None,
    find_links: tuple[Path, ...],
    wheelhouse: bool,
    network_mode: str | None,
    smoke: bool,
    keep_failed: bool,
    trust_model: bool,
    exclude: tuple[str, ...],
    allow_files: tuple[str, ...],
    fmt: str,
    command: str,
) -> None:
    """Build a Docker image that serves MODEL (MLflow scoring protocol on port 8080), from
    its locked environment, prove it with a prediction on the input example in a sandboxed
    container (no network, read-only, any uid), and only then give it the -t names.

    Progress goes to stderr; stdout gets the image id and size (or the Dockerfile with
    --no-build)."""
    for name in tags:
        _docker.check_tag(name)
    building = output is None and not no_build
    client: Any = _docker.client() if building else None  # no engine: exit 3 before work
    folder = read_model(model.path)
    findings: list[Finding] = list(folder.findings)
    override = read_workspace_env(env_override) if env_override else None
    target_platform = target_platform or host_platform()
    # Before anything is resolved, rendered or built: an image exists to load the model.
    target, _ = target_for(
        folder,
        python_version=python_version,
        platform=target_platform,
        env=override.spec if override is not None else None,
    )
    verdict = require_safe(
        folder,
        command="envbuild image",
        target_python=f"{target.python.major}.{target.python.minor}",
        trusted=trust_model,
    )
    trusted = verdict.trusted_finding()
    if trusted is not None:
        findings.append(trusted)
    labels = model.labels()
    if trust_model:
        labels["io.envbuild.trust-model"] = "true"
    resolution_findings, lock = lock_for(
        folder,
        python_version=python_version,
        platform=target_platform,
        override=override,
        find_links=find_links,
    )
    findings.extend(resolution_findings)
    if lock is None:
        _finish(fmt, command, findings, None, int(ExitCode.FINDINGS))
        return
    canonical = canonical_command(
        command,
        model.path.resolve().name if model.kind in ("local", "file") else model.uri,
        ("-t", tags),
        ("--python-version", lock.python_version),
        ("--platform", lock.platform),
        ("--base-image", base_image),
        ("--env-override", env_override.name if env_override else None),
        ("--find-links", [p.name for p in find_links]),
        ("--wheelhouse", wheelhouse),
        ("--network", network_mode),
        ("--exclude", exclude),
        ("--allow-file", allow_files),
        ("--trust-model", trust_model),
    )
    with tempfile.TemporaryDirectory(prefix="envbuild-wheels-") as tmp:
        wheels = download_wheelhouse(lock, Path(tmp)) if wheelhouse else []
        plan = render(
            folder,
            lock,
            command=canonical,
            tag=tags[0] if tags else None,
            base_image=base_image,
            override=override,
            wheelhouse=wheels,
            buildkit=building and _docker.buildkit_available(),
            uv_binary=_host_uv(target_platform),
            uv_requirement=uv_requirement(),
            source=None,
            model_labels=labels,
            exclude=exclude,
            allow_files=allow_files,
        )
        findings.extend(plan.findings)
        result: dict[str, Any] = {
            "plan": plan.to_json(),
            "source": model.provenance(),
            "safety": verdict.to_json(),
        }
        if output is not None:
            write_context(plan, output)
            result["output"] = str(output)
            _finish(
                fmt,
                command,
                findings,
                result,
                exit_for(findings),
                text=f"wrote the build context to {output} ({len(plan.files)} files)\n",
            )
            return
        if no_build:
            result["dockerfile"] = plan.dockerfile
            _finish(fmt, command, findings, result, exit_for(findings), text=plan.dockerfile)
            return
        if not plan.buildable:
            emit_findings(plan.findings)
        try:
            built = build_image(
                plan,
                folder,
                tags=tags,
                smoke=smoke,
                keep_failed=keep_failed,
                client=client,
                network_mode=network_mode,
            )
        except EnvbuildError as exc:
            raise exc.after(findings) from None
    result["image"] = built.to_json()
    named = f" ({', '.join(tags)})" if tags else ""
    text = f"image {built.id}{named}  size {human_size(built.size)}\n"
    if built.smoke is not None:
        result["smoke"] = built.smoke.to_json()
        text += f"smoke ok ({built.smoke.proof}, sandboxed container): {built.smoke.message}\n"
    else:
        text += "not proven: built with --no-smoke\n"
    _finish(fmt, command, findings, result, exit_for(findings), text=text)


def _finish(
    fmt: str,
    command: str,
    findings: list[Finding],
    result: Any,
    code: int,
    *,
    text: str = "",
) -> None:
    if fmt == "json":
        click.echo(
            dumps(envelope(command, result=result, findings=findings, exit_code=code)), nl=False
        )
    else:
        if text:
            click.echo(text, nl=False)
    if fmt != "json":
        emit_findings(findings)
    sys.exit(code)
