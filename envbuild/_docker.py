"""The docker SDK behind a few functions, so its quirks stay here.

The SDK's build endpoint is the classic builder (no BuildKit session, so no secrets or
cache mounts); a BuildKit build goes through the ``docker buildx`` CLI when it exists.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import FailedError, ToolError

log = logging.getLogger("envbuild")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

CODES: dict[str, str] = {
    "EB801": "the image build failed (the engine's last lines are shown)",
    "EB802": "the smoke test failed: no health, a crash, or predictions that differ",
    "EB901": "no Docker engine answers at DOCKER_HOST (or the default socket)",
}


def client() -> Any:
    """A connected docker client, or ToolError (exit 3) naming where it looked."""
    import docker
    from docker.errors import DockerException

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        c = docker.from_env(timeout=600)
        c.ping()
    except DockerException as exc:
        raise ToolError(
            f"no Docker engine answers at {where} ({type(exc).__name__})",
            hint="start Docker (or set DOCKER_HOST); use --output DIR to write the build "
            "context without building",
            code="EB901",
        ) from None
    return c


def buildkit_available() -> bool:
    """BuildKit is usable only through the docker CLI with the buildx plugin (the SDK's
    build API is the classic builder)."""
    if os.environ.get("DOCKER_BUILDKIT") == "0" or shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(
            ["docker", "buildx", "version"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def build(
    c: Any,
    context_tar: bytes,
    *,
    tag: str | None,
    network_mode: str | None = None,
    on_line: Callable[[str], None] = log.info,
) -> str:
    """Build with the classic builder from an in-memory tar; return the image id."""
    from docker.errors import APIError

    image_id: str | None = None
    tail: list[str] = []
    pending = ""
    try:
        stream = c.api.build(
            fileobj=io.BytesIO(context_tar),
            custom_context=True,
            encoding=None,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            network_mode=network_mode,
        )
        for chunk in stream:
            if "stream" in chunk:
                # the classic builder wraps stderr in colour codes and splits lines
                pending += _ANSI.sub("", str(chunk["stream"]))
                *lines, pending = pending.split("\n")
                for line in lines:
                    if line.strip():
                        on_line(line.rstrip())
                        tail = [*tail[-19:], line.rstrip()]
            if "error" in chunk:
                detail = str(chunk.get("error", "")).strip()
                raise FailedError(
                    f"docker build failed: {detail.splitlines()[-1] if detail else 'error'}",
                    hint="the build log above shows the failing step; last lines:\n  "
                    + "\n  ".join(tail[-8:]),
                    code="EB801",
                )
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except APIError as exc:
        raise FailedError(f"docker build failed: {exc.explanation or exc}", code="EB801") from None
    if image_id is None:
        raise FailedError("docker build finished without an image id", code="EB801")
    return image_id


def build_cli(
    context_dir: Path,
    *,
    tag: str | None,
    secrets: Mapping[str, str],
    network_mode: str | None = None,
    on_line: Callable[[str], None] = log.info,
) -> str:
    """Build with BuildKit through ``docker buildx build --load``; secret values travel in
    the environment of the docker process, never on its command line."""
    iidfile = context_dir / ".envbuild" / "image-id"
    argv = ["docker", "buildx", "build", "--load", "--iidfile", str(iidfile)]
    env = dict(os.environ)
    for i, (sid, value) in enumerate(sorted(secrets.items())):
        var = f"ENVBUILD_SECRET_{i}"
        env[var] = value
        argv += ["--secret", f"id={sid},env={var}"]
    if tag:
        argv += ["-t", tag]
    if network_mode:
        argv += ["--network", network_mode]
    argv.append(str(context_dir))
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        on_line(line.rstrip())
        tail = [*tail[-19:], line.rstrip()]
    if proc.wait() != 0:
        raise FailedError(
            "docker buildx build failed",
            hint="last lines:\n  " + "\n  ".join(tail[-8:]),
            code="EB801",
        )
    return iidfile.read_text().strip()


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    id: str
    size: int
    layers: tuple[str, ...]  # RootFS layer digests, base first
    labels: Mapping[str, str]


def inspect(c: Any, image_id: str) -> ImageInfo:
    attrs = c.api.inspect_image(image_id)
    return ImageInfo(
        id=str(attrs["Id"]),
        size=int(attrs.get("Size") or 0),
        layers=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
    )


def history(c: Any, image_id: str) -> list[dict[str, Any]]:
    return list(c.api.history(image_id))


@dataclass(frozen=True, kw_only=True)
class Running:
    container: Any
    port: int


def run(c: Any, image: str, *, port: int, env: Mapping[str, str] | None = None) -> Running:
    """Start ``image`` detached with ``port`` published on a free loopback port."""
    container = c.containers.run(
        image,
        detach=True,
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        environment=dict(env or {}),
        auto_remove=False,
    )
    host_port = 0
    for _ in range(100):
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{port}/tcp"
        )
        if bindings:
            host_port = int(bindings[0]["HostPort"])
            break
        if container.status == "exited":
            break
        time.sleep(0.05)
    return Running(container=container, port=host_port)


def status(r: Running) -> str:
    r.container.reload()
    return str(r.container.status)


def logs_tail(r: Running, lines: int = 30) -> str:
    try:
        raw = r.container.logs(tail=lines)
    except Exception:  # the container may be gone; the tail is best effort
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def remove(r: Running) -> None:
    from docker.errors import DockerException

    try:
        r.container.remove(force=True)
    except DockerException as exc:  # already gone
        log.debug("removing container: %s", exc)


def remove_image(c: Any, image: str) -> None:
    from docker.errors import DockerException

    try:
        c.images.remove(image, force=True, noprune=False)
    except DockerException as exc:
        log.debug("removing image: %s", exc)


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def tags(c: Any, image_id: str) -> Sequence[str]:
    return tuple(c.api.inspect_image(image_id).get("RepoTags") or ())
