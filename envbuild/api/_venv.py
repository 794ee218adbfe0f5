"""``envbuild venv``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.api._common import ModelLocation, _source
from envbuild.build import VenvResult, host_platform, lock_for
from envbuild.errors import ExitCode, FailedError
from envbuild.findings import Finding, Severity, exit_code_for
from envbuild.read import ModelFolder, read_model
from envbuild.resolve import (
    DEFAULT_PYTHON,
    MlflowChoice,
    TorchChoice,
)
from envbuild.safety import Verdict, require_safe
from envbuild.sources import ModelSource


@dataclass(frozen=True, kw_only=True)
class VenvBuildResult:
    source: ModelSource
    folder: ModelFolder
    safety: Verdict
    venv: VenvResult | None  # None when resolution failed (the findings say why)
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.FINDINGS) if self.venv is None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any] | None:
        if self.venv is None:
            return None
        return {**self.venv.to_json(), "source": self.source.provenance()}


def _inputs_digest(
    folder: ModelFolder, python: Path, xy: str, find_links: Sequence[Path], choices: str
) -> str:
    """What the lock depends on: the model's environment files, the interpreter and
    envbuild itself. Unchanged inputs let a re-run skip the resolver and the install."""
    import hashlib

    from envbuild import __version__
    from envbuild.render import server_files, server_sha256

    h = hashlib.sha256(
        f"{__version__}\0{python.resolve()}\0{xy}\0{host_platform()}\0{choices}\n".encode()
    )
    h.update(f"env-from {folder.env.followed}\n".encode())  # --env-from changes the lock
    for link in find_links:
        h.update(f"{link.resolve()}\n".encode())
    for name in sorted({*folder.env.spec.files, "MLmodel"}):
        path = folder.path / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(server_sha256(server_files()).encode())
    return h.hexdigest()


def venv(
    model: ModelLocation,
    *,
    env_from: str = "auto",
    path: Path,
    python: str | None = None,
    find_links: Sequence[Path] = (),
    smoke: bool = True,
    trust_model: bool = False,
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> VenvBuildResult:
    """Create a virtualenv at ``path`` with ``model``'s locked environment, the serving
    stack and envbuild's server, and prove it in a sandbox; an unchanged model only checks
    the stamp file. A model the static scan calls unsafe is refused first (EB510).
    ``mlflow`` and ``torch`` shape the resolution as in :func:`lock`."""
    from envbuild.build import (
        find_python,
        host_findings,
        install_venv,
        model_fingerprint,
        read_stamp,
        smoke_venv,
        stamp_matches,
        write_stamp,
    )

    start = time.monotonic()
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path, env_from=env_from)
    findings: list[Finding] = list(folder.findings)
    model_xy = ".".join((folder.python_version or DEFAULT_PYTHON).split(".")[:2])
    exe, xy = find_python(python, model_xy)
    # Before the venv is created: a venv exists to load the model, and its proof does.
    verdict = require_safe(folder, command="envbuild venv", target_python=xy, trusted=trust_model)
    findings.extend(verdict.notices)
    # A file the model needs that is a Git LFS pointer cannot load: refused before the
    # venv is made, as envbuild image refuses it (the corpus lfs-pointer model's venv
    # was built, then failed its load with EB802)
    from envbuild.contents import LFS_HINT, select

    for pointer in select(folder).findings():
        if pointer.code == "EB107" and pointer.severity is Severity.ERROR:
            raise FailedError(
                pointer.message, hint=LFS_HINT, location=pointer.location, code="EB107"
            ).after(findings)

    def done(result: VenvResult | None) -> VenvBuildResult:
        return VenvBuildResult(
            source=source, folder=folder, safety=verdict, venv=result, findings=tuple(findings)
        )

    inputs = _inputs_digest(folder, exe, xy, find_links, f"{mlflow}\0{torch}")
    want = {"inputs": inputs, "model": model_fingerprint(folder.path), "smoke": smoke}
    if stamp_matches(path, want):
        stamp = read_stamp(path) or {}
        return done(
            VenvResult(
                path=path,
                python=xy,
                lock_sha256=str(stamp.get("lock_sha256")),
                reused=True,
                seconds=time.monotonic() - start,
                smoke=None,
            )
        )
    stamp = read_stamp(path) or {}
    if stamp.get("inputs") == inputs and (path / "bin" / "python").exists():
        lock_sha = str(stamp.get("lock_sha256"))  # same environment: only the model changed
    else:
        resolved, locked = lock_for(
            folder,
            python_version=xy,
            platform=host_platform(),
            find_links=find_links,
            command="envbuild venv",
            mlflow=mlflow,
            torch=torch,
        )
        findings.extend(resolved)
        if locked is None:
            return done(None)
        findings.extend(host_findings(locked))  # before the smoke test that would show it
        install_venv(locked, path, python=exe)
        lock_sha = locked.sha256
    smoked = smoke_venv(path, folder) if smoke else None
    refused = smoked.refusal_finding() if smoked is not None else None
    if refused is not None:
        findings.append(refused)
    write_stamp(path, {**want, "lock_sha256": lock_sha, "python": xy})
    return done(
        VenvResult(
            path=path,
            python=xy,
            lock_sha256=lock_sha,
            reused=False,
            seconds=time.monotonic() - start,
            smoke=smoked,
        )
    )
