"""The pieces of the image proof that need no engine: image names, the failed name, the
sandbox's docker arguments, the canonical command, and the smoke client (run as the image
runs it, against a loopback server)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from envbuild._adapters import docker as _docker
from envbuild.errors import InputError
from envbuild.output import canonical_command
from envbuild.render import HEALTH_PATH

CLIENT = (Path(_docker.__file__).parents[1] / "_scripts" / "smoke_client.py").read_text()


@pytest.mark.parametrize(
    "name", ["m", "m:1", "team/m:1.0-rc_1", "localhost:5000/a/b:latest", "a.b-c__d:x"]
)
def test_image_names_the_engine_accepts(name: str) -> None:
    assert _docker.check_tag(name) == name


@pytest.mark.parametrize("name", ["M:1", "m:", "m 1", "m:1\n", "m@sha256:00", "m:-x", "-m"])
def test_image_names_refused_before_any_build(name: str) -> None:
    with pytest.raises(InputError) as err:
        _docker.check_tag(name)
    assert err.value.code == "EB100" and err.value.location.field == "-t"


def test_the_failed_name_says_so() -> None:
    assert _docker.failed_name("team/m:1", "sha256:abc") == "team/m:1-failed"
    assert _docker.failed_name("localhost:5000/m", "sha256:abc") == "localhost:5000/m:latest-failed"
    assert _docker.failed_name(None, "sha256:0123456789abcdef") == "envbuild-failed:0123456789ab"
    long = _docker.failed_name("m:" + "t" * 128, "sha256:abc")
    assert _docker.check_tag(long) == long and long.endswith("-failed")


def test_the_sandbox_as_docker_arguments() -> None:
    args = _docker.Sandbox(user="123456:0", memory=2 * 1024**3).run_kwargs()
    assert args == {
        "user": "123456:0",
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,nodev,size=512m,mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": 256,
        "mem_limit": 2 * 1024**3,
        "memswap_limit": 2 * 1024**3,
    }


def test_canonical_command_ignores_the_typed_order_and_masks_credentials() -> None:
    # lock's header, byte for byte as it was before the helper
    assert (
        canonical_command(
            "envbuild lock",
            "sklearn-credit",
            ("--python-version", "3.11.7"),
            ("--platform", "linux/amd64"),
            ("--env-override", None),
            ("--no-serving", False),
            ("--exclude-newer", "2026-11-01T00:00:00Z"),
        )
        == "envbuild lock sklearn-credit --python-version 3.11.7 --platform linux/amd64 "
        "--exclude-newer 2026-11-01T00:00:00Z"
    )
    line = canonical_command(
        "envbuild image",
        "my model",
        ("-t", ["a:1", "b:2"]),
        ("--wheelhouse", True),
        ("--find-links", []),
        ("--base-image", "https://user:secret@registry.example/python:3.11"),
    )
    assert line == (
        "envbuild image 'my model' -t a:1 -t b:2 --wheelhouse "
        "--base-image https://****@registry.example/python:3.11"
    )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(200 if self.path == "/ping" else 404, b"\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body == b"refuse":
            self._send(400, b'{"error_code": "BAD_REQUEST"}')
            return
        doc = {"predictions": [len(body), self.headers["Content-Type"]]}
        self._send(200, json.dumps(doc).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def run_client(port: int, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, HEALTH_PATH, *args],
        capture_output=True, text=True, check=True, timeout=60,
        env={"ENVBUILD_PORT": str(port), "http_proxy": "http://127.0.0.1:9"},
    )  # fmt: skip
    reply: dict[str, object] = json.loads(done.stdout)
    return reply


def test_the_smoke_client_posts_the_payload_from_argv_and_a_file(
    server: int, tmp_path: Path
) -> None:
    payload = b'{"inputs": [1, 2, 3]}' * 1000
    encoded = base64.b64encode(payload).decode()
    staged = tmp_path / "payload"
    staged.write_bytes(payload[:5000])
    rest = base64.b64encode(payload[5000:]).decode()
    for file, chunks in (("-", [encoded[:4000], encoded[4000:]]), (str(staged), [rest])):
        reply = run_client(server, "10", "application/json", file, *chunks)
        assert reply["healthy_after"] is not None and reply["error"] == ""
        assert reply["status"] == 200
        body = json.loads(base64.b64decode(str(reply["body"])))
        assert body == {"predictions": [len(payload), "application/json"]}


def test_the_smoke_client_reports_refusals_and_no_health(server: int) -> None:
    reply = run_client(server, "10", "text/csv", "-", base64.b64encode(b"refuse").decode())
    assert reply["status"] == 400
    assert b"BAD_REQUEST" in base64.b64decode(str(reply["body"]))
    reply = run_client(server, "10", "", "-")  # health only
    assert reply["healthy_after"] is not None and reply["status"] is None
    with socket_closed() as port:
        reply = run_client(port, "0.5", "application/json", "-", "e30=")
    assert reply["healthy_after"] is None and reply["status"] is None
