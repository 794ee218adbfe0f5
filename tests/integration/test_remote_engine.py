"""`envbuild image` against an engine on another address, and the bill of materials it
puts in the image.

The same dockerd is exposed on a TCP port of 127.0.0.1 by a relay this test runs (every
byte envbuild sends passes through it and is kept), and envbuild is run with
DOCKER_HOST=tcp://127.0.0.1:PORT. What went over the wire proves the build context was
sent (the tar with the Dockerfile, the SBOM and the model), that the containers envbuild
created have nothing of the host bind-mounted and no port published, and that the smoke
test reached the container through ``docker exec``. The image then holds
/opt/envbuild/sbom.cdx.json, the same bytes ``--output`` writes beside the Dockerfile, and
its io.envbuild.sbom label names that path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import socketserver
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from envbuild._adapters import docker as _docker
from envbuild.render.sbom import SBOM_FILE, SBOM_LABEL, SBOM_PATH
from tests.helpers import run_envbuild
from tests.integration.test_image import truth_model

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]

TAG = "envbuild-h9-remote:1"


def engine_socket() -> str:
    """The unix socket of the engine the rest of the suite uses."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), f"this test relays a local engine, not {host}"
    return host.removeprefix("unix://")


class Relay(socketserver.ThreadingTCPServer):
    """127.0.0.1:PORT → the engine's unix socket, keeping what clients sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Pipe)
        self.target = target
        self.sent: list[bytearray] = []  # one per connection, client → engine
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def requests(self) -> list[tuple[str, str, bytes]]:
        """(method, path, body) of every request with a Content-Length body or none."""
        out = []
        with self.lock:
            streams = [bytes(s) for s in self.sent]
        for data in streams:
            for m in re.finditer(rb"(GET|POST|DELETE|HEAD|PUT) (/\S+) HTTP/1\.1\r\n", data):
                end = data.find(b"\r\n\r\n", m.end())
                head = data[m.end() : end].decode("latin-1").lower()
                length = re.search(r"content-length: (\d+)", head)
                body = data[end + 4 : end + 4 + int(length.group(1))] if length else b""
                out.append((m.group(1).decode(), m.group(2).decode(), body))
        return out

    def uploaded(self) -> bytes:
        with self.lock:
            return b"".join(bytes(s) for s in self.sent)


class _Pipe(socketserver.BaseRequestHandler):
    server: Relay

    def handle(self) -> None:
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect(self.server.target)
        record = bytearray()
        with self.server.lock:
            self.server.sent.append(record)

        def back() -> None:  # engine → client
            try:
                while chunk := engine.recv(65536):
                    self.request.sendall(chunk)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    self.request.shutdown(socket.SHUT_WR)

        reader = threading.Thread(target=back, daemon=True)
        reader.start()
        try:
            while chunk := self.request.recv(65536):
                with self.server.lock:
                    record.extend(chunk)
                engine.sendall(chunk)
            engine.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reader.join(timeout=600)
        engine.close()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("remote")
    model = truth_model(base / "pyfunc-custom", "pyfunc-custom")
    lock = base / "requirements.lock"
    done = run_envbuild("lock", str(model), "--output", str(lock))
    assert done.returncode == 0, done.stderr[-3000:]
    out = base / "context"
    done = run_envbuild("image", str(model), "--lock", str(lock), "-t", TAG, "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    relay = Relay(engine_socket())
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    env = {**os.environ, "DOCKER_HOST": relay.url}
    env.pop("DOCKER_CONTEXT", None)
    try:
        done = run_envbuild(
            "image", str(model), "--lock", str(lock), "-t", TAG, "--format", "json", env=env
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield {
            "result": json.loads(done.stdout)["result"],
            "relay": relay,
            "output": out,
            "stderr": done.stderr,
        }
    finally:
        relay.shutdown()
        relay.server_close()
        _docker.remove_image(_docker.client(), TAG)


def test_the_context_goes_over_the_wire(remote: dict[str, Any]) -> None:
    relay: Relay = remote["relay"]
    builds = [(m, p) for m, p, _ in relay.requests() if re.match(r"/v[\d.]+/build\b", p)]
    assert builds and builds[0][0] == "POST", relay.requests()[:5]
    sent = relay.uploaded()
    # the tar's member names and the Dockerfile's own text, as envbuild rendered them
    for name in (
        b"Dockerfile",
        SBOM_FILE.encode(),
        b"model/MLmodel",
        b".envbuild/requirements.lock",
    ):
        assert name in sent, name
    dockerfile = (remote["output"] / "Dockerfile").read_bytes()
    if remote["result"]["image"].get("builder") == "legacy" or b"/session" not in sent:
        assert dockerfile in sent  # the SDK's build: one tar in the request body
    else:
        # BuildKit syncs the context over the /session stream: the files' bytes cross the
        # wire (its Dockerfile differs from the --output one in the cache-mount lines only)
        assert dockerfile.splitlines()[0] in sent
        assert (remote["output"] / "model" / "MLmodel").read_bytes() in sent
    assert remote["result"]["image"]["proven"] is True


def test_nothing_is_mounted_or_published_and_the_smoke_test_execs(remote: dict[str, Any]) -> None:
    relay: Relay = remote["relay"]
    requests = relay.requests()
    created = [
        json.loads(body)
        for method, path, body in requests
        if method == "POST" and re.match(r"/v[\d.]+/containers/create\b", path)
    ]
    assert created, [p for _, p, _ in requests]
    for config in created:
        host = config.get("HostConfig") or {}
        assert not host.get("Binds") and not host.get("Mounts"), host
        assert not host.get("PortBindings") and not config.get("Volumes"), config
        assert host.get("NetworkMode") == "none"
    execs = [p for m, p, _ in requests if m == "POST" and re.search(r"/containers/\w+/exec$", p)]
    starts = [p for m, p, _ in requests if m == "POST" and re.search(r"/exec/\w+/start$", p)]
    assert execs and len(starts) == len(execs)
    sandbox = remote["result"]["smoke"]["sandbox"]
    assert sandbox["mounts"] == [] and sandbox["published_ports"] == []
    assert remote["result"]["smoke"]["ok"] is True
    assert remote["result"]["smoke"]["compared"] is True  # the stored predictions came back


def test_the_image_holds_the_sbom_written_beside_output(remote: dict[str, Any]) -> None:
    c = _docker.client()
    beside = (remote["output"] / SBOM_FILE).read_bytes()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(beside.decode()) is None
    image = c.images.get(TAG)
    assert image.labels[SBOM_LABEL] == SBOM_PATH
    container = c.containers.create(TAG)  # never started: only its files are read
    try:
        stream, _ = container.get_archive(SBOM_PATH)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(Path(SBOM_PATH).name)
            assert member is not None
            inside = member.read()
    finally:
        container.remove(force=True)
    assert inside == beside
    doc = json.loads(inside)
    names = {c["name"] for c in doc["components"]}
    lock_text = (remote["output"] / ".envbuild" / "requirements.lock").read_text()
    pinned = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", lock_text, re.MULTILINE))
    assert pinned and pinned <= names
    base = next(c for c in doc["components"] if c["bom-ref"] == "envbuild:base-image")
    assert f"{base['name']}:{base['version']}" == image.labels["org.opencontainers.image.base.name"]
