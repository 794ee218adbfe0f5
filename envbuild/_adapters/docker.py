"""The docker SDK behind a few functions, so its quirks stay here.

The SDK's build endpoint is the classic builder (no BuildKit session, so no secrets or
cache mounts); a BuildKit build goes through a Docker CLI (``_adapters/buildkit.py``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from envbuild._redact import redact
from envbuild.errors import FailedError, InputError, ToolError
from envbuild.findings import Code, Location, Severity, table

log = logging.getLogger("envbuild")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

EB801 = Code("EB801", Severity.ERROR, "the image build failed (the engine's last lines are shown)")
EB802 = Code(
    "EB802", Severity.ERROR, "the smoke test failed: no health, a crash, or predictions that differ"
)
EB901 = Code(
    "EB901", Severity.ERROR, "no Docker engine answers at DOCKER_HOST (or the default socket)"
)
EB807 = Code(
    "EB807",
    Severity.ERROR,
    "pushing the image to its registry failed (the registry's answer is shown)",
)
CODES: dict[str, str] = table(EB801, EB802, EB807, EB901)


class DockerClient(Protocol):
    """The part of ``docker.DockerClient`` this adapter uses; nothing outside it touches
    the SDK."""

    @property
    def api(self) -> Any: ...
    @property
    def containers(self) -> Any: ...
    @property
    def images(self) -> Any: ...
    def ping(self) -> bool: ...


def client() -> DockerClient:
    """A connected docker client, or ToolError (exit 3) naming where it looked."""
    import docker
    from docker.errors import DockerException

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        c: DockerClient = docker.from_env(timeout=600)
        c.ping()
    except DockerException as exc:
        raise ToolError(
            f"no Docker engine answers at {where} ({type(exc).__name__})",
            hint="start Docker (or set DOCKER_HOST); use --output DIR to write the build "
            "context without building",
            code="EB901",
        ) from None
    return c


def build(
    c: DockerClient,
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


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    id: str
    size: int
    layers: tuple[str, ...]  # RootFS layer digests, base first
    labels: Mapping[str, str]


def inspect(c: DockerClient, image_id: str) -> ImageInfo:
    attrs = c.api.inspect_image(image_id)
    return ImageInfo(
        id=str(attrs["Id"]),
        size=int(attrs.get("Size") or 0),
        layers=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
    )


def history(c: DockerClient, image_id: str) -> list[dict[str, Any]]:
    return list(c.api.history(image_id))


@dataclass(frozen=True, kw_only=True)
class Running:
    container: Any
    port: int


def run(c: DockerClient, image: str, *, port: int, env: Mapping[str, str] | None = None) -> Running:
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


def exit_code(r: Running) -> int | None:
    """The main process's exit code as of the last ``status`` call."""
    code = (r.container.attrs.get("State") or {}).get("ExitCode")
    return int(code) if code is not None else None


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


def remove_image(c: DockerClient, image: str) -> None:
    from docker.errors import DockerException

    try:
        c.images.remove(image, force=True, noprune=False)
    except DockerException as exc:
        log.debug("removing image: %s", exc)


def discard_untagged(c: DockerClient, image_id: str, *, down_to: str = "") -> bool:
    """Remove ``image_id`` only while no name points at it: a build whose layers all came
    from the cache has the id of an image someone tagged before, and that one stays.
    Never forced, so a container still using it keeps it too.

    The classic builder's cache is the chain of parent images. With ``down_to`` (text in
    a step's CreatedBy) the untagged parents go as well, up to and including that step:
    what the failed model added leaves the engine, the layers below it stay as the next
    build's cache. BuildKit images have no parent chain (its cache lives elsewhere)."""
    from docker.errors import DockerException

    try:
        if c.api.inspect_image(image_id).get("RepoTags"):
            return False
        current = image_id
        while current:
            attrs = c.api.inspect_image(current)
            if attrs.get("RepoTags") and current != image_id:
                break
            step = str((c.api.history(current) or [{}])[0].get("CreatedBy") or "")
            # refused (kept) while another image builds on it: that image needs it
            c.api.remove_image(current, force=False, noprune=True)
            if not down_to or down_to in step:
                break
            current = str(attrs.get("Parent") or "")
    except DockerException as exc:
        log.debug("removing image %s: %s", image_id, exc)
        return _gone(c, image_id)
    return True


def _gone(c: DockerClient, image_id: str) -> bool:
    from docker.errors import DockerException

    try:
        c.api.inspect_image(image_id)
    except DockerException:
        return True
    return False


# docker's reference grammar (distribution/reference) for NAME[:TAG], without a digest
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DNS = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_DNS}(?:\.{_DNS})*(?::[0-9]+)?/)?"
_REFERENCE = re.compile(
    rf"{_HOST}{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?", re.ASCII
)


def check_tag(name: str) -> str:
    """``name`` when the engine will accept it as NAME[:TAG], checked before any build
    step so a typo does not surface after minutes of building."""
    if len(name) > 255 or not _REFERENCE.fullmatch(name):
        raise InputError(
            f"-t {name!r} is not an image name (NAME[:TAG], lowercase name)",
            hint="write e.g. -t registry.example.com/team/model:1",
            location=Location(field="-t"),
            code="EB100",
        )
    return name


def _split(name: str) -> tuple[str, str]:
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(name)
    return repository, tag or "latest"


def add_tag(c: DockerClient, image_id: str, name: str) -> None:
    from docker.errors import DockerException

    repository, tag_ = _split(name)
    try:
        c.api.tag(image_id, repository, tag_, force=True)
    except DockerException as exc:
        raise FailedError(
            f"tagging {image_id[:19]} as {name} failed: {exc}", code="EB800"
        ) from None


def failed_name(name: str | None, image_id: str) -> str:
    """Where --keep-failed keeps an image whose proof failed: the requested name with
    ``-failed`` after its tag, so nothing that pulls or pushes NAME:TAG picks it up."""
    if name is None:
        return f"envbuild-failed:{image_id.removeprefix('sha256:')[:12]}"
    repository, tag_ = _split(name)
    return f"{repository}:{tag_[:121]}-failed"


# --------------------------------------------------------------------------------------
# the sandboxed container


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """How a container that runs a model not yet proven is confined: no network at all
    (nothing published: it is reached through ``docker exec``), a read-only root with a
    size-limited tmpfs for /tmp (HOME), no capabilities, no privilege gain through setuid
    files, limits on processes and memory, and a non-root user in group 0 as OpenShift
    assigns it. /tmp allows exec, as a pod's emptyDir does: libraries that extract a native
    part there and map it (snappy-java under pyspark, numba's cache) would otherwise fail
    the proof and nothing else (Docker's tmpfs default is noexec). Nothing of the host is
    mounted, so it runs the same on a remote engine."""

    user: str
    memory: int
    pids: int = 256
    tmp_size: str = "512m"

    def run_kwargs(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={self.tmp_size},mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": self.pids,
            "mem_limit": self.memory,
            "memswap_limit": self.memory,  # no swap beyond the limit
        }


def run_sandboxed(
    c: DockerClient, image: str, sandbox: Sandbox, *, labels: Mapping[str, str] | None = None
) -> Running:
    """Start ``image`` detached under ``sandbox``; ``port`` is 0: nothing is published."""
    from docker.errors import DockerException

    container = None
    try:
        container = c.containers.create(
            image, auto_remove=False, labels=dict(labels or {}), **sandbox.run_kwargs()
        )
        container.start()
    except DockerException as exc:
        if container is not None:  # created, not started: it would pin the image
            remove(Running(container=container, port=0))
        raise FailedError(
            f"the smoke container could not start: {getattr(exc, 'explanation', None) or exc}",
            code="EB802",
        ) from None
    return Running(container=container, port=0)


def confinement(r: Running) -> dict[str, Any]:
    """The restrictions the engine applied, read back from the container's own
    HostConfig (not what was asked for)."""
    r.container.reload()
    host = r.container.attrs.get("HostConfig") or {}
    config = r.container.attrs.get("Config") or {}
    return {
        "kind": "container",
        "user": config.get("User") or "",
        "network": host.get("NetworkMode") or "",
        "read_only": bool(host.get("ReadonlyRootfs")),
        "tmpfs": dict(host.get("Tmpfs") or {}),
        "cap_drop": list(host.get("CapDrop") or []),
        "security_opt": list(host.get("SecurityOpt") or []),
        "pids_limit": host.get("PidsLimit"),
        "memory": host.get("Memory"),
        "published_ports": sorted(host.get("PortBindings") or {}),
        "mounts": [m.get("Destination") for m in r.container.attrs.get("Mounts") or []],
    }


@dataclass(frozen=True, kw_only=True)
class Exec:
    exit_code: int | None
    stdout: bytes
    stderr: bytes


def exec_in(r: Running, argv: Sequence[str]) -> Exec:
    """Run ``argv`` inside the running container (as its user, in its sandbox) and wait.
    A container that stops meanwhile ends the process: exit_code is then what the engine
    reports, or None when the container was not running at all."""
    from docker.errors import DockerException

    api = r.container.client.api
    try:
        exec_id = api.exec_create(r.container.id, list(argv), stdout=True, stderr=True)["Id"]
        out, err = api.exec_start(exec_id, demux=True)
        code = api.exec_inspect(exec_id).get("ExitCode")
    except DockerException as exc:
        log.debug("exec in %s: %s", r.container.id[:12], exc)
        return Exec(exit_code=None, stdout=b"", stderr=str(exc).encode())
    return Exec(exit_code=code, stdout=out or b"", stderr=err or b"")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def tags(c: DockerClient, image_id: str) -> Sequence[str]:
    return tuple(c.api.inspect_image(image_id).get("RepoTags") or ())


def image_id(c: DockerClient, name: str) -> str | None:
    """The id ``name`` points at, or None when there is no such image."""
    from docker.errors import DockerException

    try:
        return str(c.api.inspect_image(name)["Id"])
    except DockerException:
        return None


def only_here_for(c: DockerClient, name: str, platform: str) -> bool:
    """True when ``name`` is an image of ``platform`` the engine holds that no registry
    gave it (no RepoDigests: built or imported here), while the engine itself runs another
    platform."""
    from docker.errors import DockerException

    try:
        attrs = c.api.inspect_image(name)
        native = c.api.info().get("Architecture", "")
    except DockerException:
        return False
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(str(native), str(native))
    wanted = platform.split("/")[1] if "/" in platform else platform
    return attrs.get("Architecture") == wanted and wanted != arch and not attrs.get("RepoDigests")


def push(c: DockerClient, name: str, *, on_line: Callable[[str], None] = log.info) -> str:
    """Push ``name`` with the credentials the Docker client config holds for its registry
    (``~/.docker/config.json``, its credential store or helpers); return the digest the
    registry gave the manifest."""
    from docker.errors import DockerException

    repository, tag_ = _split(name)
    digest = ""
    try:
        for chunk in c.api.push(repository, tag=tag_, stream=True, decode=True):
            if "error" in chunk:
                raise FailedError(
                    f"pushing {name} failed: {redact(str(chunk['error']).strip())}",
                    hint="check that the registry is reachable from the engine and that "
                    "`docker login` was run for it",
                    code="EB807",
                )
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            elif chunk.get("status") and not chunk.get("progressDetail"):
                log.debug("push %s: %s %s", name, chunk.get("id", ""), chunk["status"])
    except DockerException as exc:
        raise FailedError(
            f"pushing {name} failed: {redact(str(getattr(exc, 'explanation', None) or exc))}",
            code="EB807",
        ) from None
    if not digest:
        raise FailedError(f"pushing {name} gave no digest", code="EB807")
    on_line(f"pushed {name}@{digest}")
    return digest
