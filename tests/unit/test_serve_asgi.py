"""The uvicorn layer (asgi.py) against the builtin one, in-process: the same App (a stand-in
scorer, test_serve's), each layer on its own loopback port, the same requests to both; the
status, the body bytes and the headers that matter must be the same, and so must /metrics'
counts afterwards. The real model under both layers: tests/integration/test_serve.py."""

# ruff: noqa: F811  (the tests take test_serve's `running` fixture, imported below)
from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from envbuild.serve.asgi import Uvicorn, find_uvicorn
from envbuild.serve.config import load_config
from envbuild.serve.server import App, Server
from tests.unit.test_serve import StandIn, running  # noqa: F401
from tests.unit.test_serve_v2 import Identity

SETTINGS = {"ENVBUILD_ACCESS_LOG": "0", "ENVBUILD_MAX_BODY": "100", "ENVBUILD_TIMEOUT": "0.3"}
HEADERS = ("content-type", "content-length", "server", "allow", "connection")


@pytest.fixture
def uvicorn_running() -> Iterator[Any]:
    """Like test_serve's ``running``, with asgi.Uvicorn serving on the socket."""
    started: list[tuple[Uvicorn, threading.Thread]] = []

    def start(stand_in: StandIn, **env: str) -> Server:
        config = load_config({**SETTINGS, **env, "ENVBUILD_HTTP": "uvicorn"})
        app = App(stand_in, config)  # type: ignore[arg-type]
        server = Server(("127.0.0.1", 0), app, config.backlog)  # the bound socket
        layer = Uvicorn(app)
        thread = threading.Thread(target=layer.run, args=(server,), daemon=True)
        thread.start()
        started.append((layer, thread))
        deadline = time.monotonic() + 10
        while layer.server is None or not layer.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return server

    yield start
    for layer, thread in started:
        layer.server.should_exit = True
        thread.join(10)
        assert not thread.is_alive()


def ask(server: Server, method: str, path: str, body: Any = None, **headers: str) -> Any:
    c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        # a 413 may close the connection while the body is still being sent: read it anyway
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            c.request(method, path, body=body, headers=headers)  # an iterator goes chunked
        r = c.getresponse()
        got = {k.lower(): v for k, v in r.getheaders()}
        return r.status, {k: got.get(k) for k in HEADERS}, r.read()
    finally:
        c.close()


JSON = {"Content-Type": "application/json"}
V2_OK = json.dumps(
    {"inputs": [{"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}
).encode()
REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/ping", None, {}),
    ("GET", "/health?probe=1", None, {}),
    ("HEAD", "/ping", None, {}),
    ("GET", "/version", None, {}),
    ("GET", "/openapi.json", None, {}),
    ("GET", "/nope", None, {}),
    ("GET", "/invocations", None, {}),
    ("POST", "/invocations", b'{"a": 1}', JSON),
    ("POST", "/invocations", b"{", JSON),  # malformed JSON: 400
    ("POST", "/invocations", b"{}", {"Content-Type": "application/xml"}),  # 415
    ("POST", "/invocations", b"{}", {}),  # no Content-Type: 415
    ("POST", "/invocations", b'{"a": "' + b"x" * 100 + b'"}', JSON),  # 413 by Content-Length
    ("POST", "/invocations", iter([b'{"a": "', b"x" * 100, b'"}']), JSON),  # 413, chunked
    ("POST", "/invocations", iter([b'{"a"', b": 1}"]), JSON),  # chunked, under the limit
    ("POST", "/invocations", b"sleep:1", JSON),  # 504 after ENVBUILD_TIMEOUT
    ("POST", "/ping", b"", JSON),  # 405: use GET
    ("POST", "/nope", b"", JSON),
    ("PUT", "/ping", None, {}),
    ("DELETE", "/invocations", None, {}),
    ("GET", "/v2", None, {}),
    ("GET", "/v2/health/ready", None, {}),
    ("GET", "/v2/models/model", None, {}),
    ("GET", "/v2/models/model/ready", None, {}),
    ("GET", "/v2/models/other", None, {}),
    ("GET", "/v2/models/mod%65l/versions/9/ready", None, {}),
    ("GET", "/v2/models/model/infer", None, {}),
    ("POST", "/v2/models/model/infer", V2_OK, JSON),
    ("POST", "/v2/models/model/infer", b'{"inputs": 3}', JSON),
    ("POST", "/v2/models/other/infer", V2_OK, JSON),
]


def counts(server: Server) -> dict[tuple[Any, ...], float]:
    """/metrics's request counts (latencies differ between any two runs)."""
    text = ask(server, "GET", "/metrics")[2].decode()
    out: dict[tuple[Any, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("envbuild_requests_total", "envbuild_request_duration_seconds_count"):
                key = (s.name, *sorted(s.labels.items()))
                out[key] = s.value
    return out


def test_both_layers_answer_the_same(running: Any, uvicorn_running: Any) -> None:
    builtin, uvicorn = running(Identity(), **SETTINGS), uvicorn_running(Identity())
    statuses = set()
    for method, path, body, headers in REQUESTS:
        chunks = list(body) if body is not None and not isinstance(body, bytes) else None
        mine = ask(builtin, method, path, iter(chunks) if chunks else body, **headers)
        theirs = ask(uvicorn, method, path, iter(chunks) if chunks else body, **headers)
        assert theirs == mine, (method, path)
        statuses.add(mine[0])
    assert statuses == {200, 400, 404, 405, 413, 415, 504}
    assert counts(uvicorn) == counts(builtin)
    assert (
        counts(builtin)[
            ("envbuild_requests_total", ("route", "/v2/models/{name}/infer"), ("status", "200"))
        ]
        == 1
    )


def test_uvicorn_serves_keepalive_and_pipelined_requests(uvicorn_running: Any) -> None:
    server = uvicorn_running(StandIn())
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as s:
        s.sendall(
            b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 8\r\n\r\n"
            b'{"a": 1}'
            b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert b'{"echo": "{\\"a\\": 1}"}' in reply and reply.endswith(b"9.9.9")


def test_a_missing_uvicorn_is_one_line_and_exit_3(tmp_path: Any) -> None:
    """ENVBUILD_HTTP=uvicorn where uvicorn is not installed (mlflow-skinny before 3.x): one
    ERROR line, before the model loads (there is none here), exit 3 as for a port in use."""
    hide = "import sys; sys.modules['uvicorn'] = None; import runpy; runpy.run_module('envbuild.serve', run_name='__main__')"  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", hide],
        env={"ENVBUILD_HTTP": "uvicorn", "ENVBUILD_MODEL_DIR": str(tmp_path / "none"),
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "ERROR envbuild.serve: ENVBUILD_HTTP=uvicorn, but uvicorn is not installed in this "
        "environment (mlflow-skinny 3.x installs it, older MLflow does not): install uvicorn "
        "or set ENVBUILD_HTTP=builtin"
    ), done.stderr
    assert find_uvicorn() is None  # here it is installed


def test_http_setting_is_checked() -> None:
    assert load_config({}).http == "builtin"
    assert load_config({"ENVBUILD_HTTP": "Uvicorn"}).http == "uvicorn"
    with pytest.raises(ValueError, match="ENVBUILD_HTTP='gunicorn' is not builtin or uvicorn"):
        load_config({"ENVBUILD_HTTP": "gunicorn"})


def in_flight(server: Server, route: str) -> float:
    text = ask(server, "GET", "/metrics")[2].decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "envbuild_requests_in_flight" and s.labels.get("route") == route:
                return float(s.value)
    raise AssertionError(f"no in-flight gauge for {route}")


@pytest.mark.parametrize("layer", ["builtin", "uvicorn"])
def test_a_client_that_leaves_mid_body_leaves_the_in_flight_gauge(
    layer: str,
    running: Any,
    uvicorn_running: Any,
) -> None:
    """A POST whose client closes before its whole Content-Length arrived gets no answer:
    it must not stay in /metrics's in-flight gauge, nor count as an answered request."""
    start = running if layer == "builtin" else uvicorn_running
    server = start(Identity(), **{**SETTINGS, "ENVBUILD_MAX_BODY": "100000"})
    before = counts(server)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as s:
            s.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 5000\r\n\r\n{"a": '
            )
    deadline = time.monotonic() + 10
    while (gauge := in_flight(server, "/invocations")) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gauge == 0
    assert ask(server, "POST", "/invocations", b'{"a": 1}', **JSON)[0] == 200
    assert in_flight(server, "/invocations") == 0
    after = counts(server)
    key = ("envbuild_requests_total", ("route", "/invocations"), ("status", "200"))
    assert after.get(key, 0) - before.get(key, 0) == 1
    assert not any(k[1] == ("route", "/invocations") and k[2][1] != "200"
                   for k in after if k[0] == "envbuild_requests_total")  # fmt: skip
