"""envbuild venv MODEL --path DIR"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import click

from envbuild import __version__
from envbuild.build import (
    VenvResult,
    find_python,
    host_platform,
    install_venv,
    lock_for,
    model_fingerprint,
    read_stamp,
    smoke_venv,
    stamp_matches,
    write_stamp,
)
from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.errors import ExitCode
from envbuild.findings import Finding
from envbuild.options import find_links_option, model_argument, trust_model_option
from envbuild.output import dumps, envelope
from envbuild.read import ModelFolder, read_model
from envbuild.render import server_files, server_sha256
from envbuild.resolve import DEFAULT_PYTHON
from envbuild.safety import require_safe
from envbuild.sources import ModelSource


def _inputs_digest(folder: ModelFolder, python: Path, xy: str, find_links: tuple[Path, ...]) -> str:
    """What the lock depends on: the model's environment files, the interpreter and
    envbuild itself. Unchanged inputs let a re-run skip the resolver and the install."""
    h = hashlib.sha256(f"{__version__}\0{python.resolve()}\0{xy}\0{host_platform()}\n".encode())
    for link in find_links:
        h.update(f"{link.resolve()}\n".encode())
    for name in sorted({*folder.env.spec.files, "MLmodel"}):
        path = folder.path / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(server_sha256(server_files()).encode())
    return h.hexdigest()


@main.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--path",
    "path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the virtualenv.",
)
@click.option(
    "--python",
    "python",
    help="Interpreter path or X.Y (default: the model's Python, found on PATH or in pyenv).",
)
@find_links_option
@click.option(
    "--smoke/--no-smoke",
    default=True,
    show_default=True,
    help="Predict on the input example in the venv and compare with stored predictions.",
)
@trust_model_option
@common
@model_argument
def venv(
    model: ModelSource,
    path: Path,
    python: str | None,
    find_links: tuple[Path, ...],
    smoke: bool,
    trust_model: bool,
    fmt: str,
    command: str,
) -> None:
    """Create a virtualenv at --path with MODEL's locked environment (uv), the serving
    stack and envbuild's server, then prove it with a prediction in that venv. Re-running
    on an unchanged model only checks a stamp file."""
    start = time.monotonic()
    folder = read_model(model.path)
    source = model.provenance()
    findings: list[Finding] = list(folder.findings)
    model_xy = ".".join((folder.python_version or DEFAULT_PYTHON).split(".")[:2])
    exe, xy = find_python(python, model_xy)
    # Before the venv is created: a venv exists to load the model, and its proof does.
    verdict = require_safe(folder, command="envbuild venv", target_python=xy, trusted=trust_model)
    trusted = verdict.trusted_finding()
    if trusted is not None:
        findings.append(trusted)
    inputs = _inputs_digest(folder, exe, xy, find_links)
    fingerprint = model_fingerprint(folder.path)
    want = {"inputs": inputs, "model": fingerprint, "smoke": smoke}
    if stamp_matches(path, want):
        stamp = read_stamp(path) or {}
        result = VenvResult(
            path=path,
            python=xy,
            lock_sha256=str(stamp.get("lock_sha256")),
            reused=True,
            seconds=time.monotonic() - start,
            smoke=None,
        )
        _finish(fmt, command, findings, result, exit_for(findings), source)
        return
    stamp = read_stamp(path) or {}
    if stamp.get("inputs") == inputs and (path / "bin" / "python").exists():
        lock_sha = str(stamp.get("lock_sha256"))  # same environment: only the model changed
    else:
        resolved, lock = lock_for(
            folder,
            python_version=xy,
            platform=host_platform(),
            find_links=find_links,
            command=command,
        )
        findings.extend(resolved)
        if lock is None:
            _finish(fmt, command, findings, None, int(ExitCode.FINDINGS), source)
            return
        install_venv(lock, path, python=exe)
        lock_sha = lock.sha256
    smoked = smoke_venv(path, folder) if smoke else None
    write_stamp(path, {**want, "lock_sha256": lock_sha, "python": xy})
    result = VenvResult(
        path=path,
        python=xy,
        lock_sha256=lock_sha,
        reused=False,
        seconds=time.monotonic() - start,
        smoke=smoked,
    )
    _finish(fmt, command, findings, result, exit_for(findings), source)


def _finish(
    fmt: str,
    command: str,
    findings: list[Finding],
    result: VenvResult | None,
    code: int,
    source: dict[str, Any] | None = None,
) -> None:
    doc: Any = {**result.to_json(), "source": source} if result else None
    if fmt == "json":
        click.echo(
            dumps(envelope(command, result=doc, findings=findings, exit_code=code)), nl=False
        )
    else:
        if result is not None:
            state = "unchanged (stamp matches)" if result.reused else "ready"
            click.echo(
                f"venv {result.path}: Python {result.python}, {state} in {result.seconds:.1f} s"
            )
            if result.smoke:
                kind = (result.smoke.sandbox or {}).get("kind")
                click.echo(
                    f"smoke ok ({result.smoke.proof}, {kind} sandbox): {result.smoke.message}"
                )
        emit_findings(findings)
    sys.exit(code)
