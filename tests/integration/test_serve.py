"""The server for real: a uv venv with mlflow-skinny and the examples' measured dependencies,
the server copied in as the builder copies it (``serving.serve_files()`` under
``envbuild_serve``), started as a subprocess on a loopback port, and asked in every payload
format for the stored predictions; bad payloads get 4xx JSON, a model crash 500; /openapi.json
validates; 200 concurrent connections lose nothing; SIGTERM lets in-flight requests finish.

One venv per session, one server per example per module (the sklearn one with two worker
processes, so the pre-fork path is what the load test hits).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from uv import find_uv_bin

from envbuild import serving
from envbuild.render import server_files
from tests.helpers import EXAMPLES, ROOT

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())
MODELS = ("sklearn-credit", "pyfunc-custom")
LOAD_TEST = ROOT / "benchmarks" / "load_test.py"

pytestmark = [pytest.mark.venv, pytest.mark.network, pytest.mark.slow]


def truth(name: str) -> dict[str, str]:
    return dict(next(e["truth"] for e in MANIFEST["examples"] if e["name"] == name))


def copied_server() -> dict[str, bytes]:
    """The server as the builder copies it, ``{"envbuild_serve/<path>": bytes}``."""
    return {f.path.removeprefix(".envbuild/server/"): f.read() for f in server_files()}


def stage_server(dst: Path) -> Path:
    for rel, data in copied_server().items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
    return dst


@pytest.fixture(scope="session")
def serve_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A venv with what serving_requirements() adds plus the examples' measured needs."""
    root = tmp_path_factory.mktemp("serve-env")
    venv = root / "venv"
    uv = find_uv_bin()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    pins: dict[str, str] = {}
    for name in MODELS:
        for dist, version in truth(name).items():
            if dist in ("mlflow", "mlflow-tracing"):
                continue  # the serving stack brings MLflow, as mlflow-skinny
            assert pins.setdefault(dist, version) == version, f"{dist} differs between examples"
    mlflow_version = {truth(name)["mlflow"] for name in MODELS}.pop()
    reqs = [r.raw for r in serving.serving_requirements(mlflow_version)]
    reqs += [f"{dist}=={version}" for dist, version in sorted(pins.items())]
    done = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *reqs],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"python": venv / "bin" / "python", "path": stage_server(root / "server")}


class Running:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def spawn_server(
    env: dict[str, Path], model: Path, log: Path, **settings: str
) -> subprocess.Popen[bytes]:
    """The server process, its output in ``log``; ``settings`` override the defaults."""
    proc_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(env["path"]),
        "ENVBUILD_MODEL_DIR": str(model),
        "ENVBUILD_HOST": "127.0.0.1",
        "ENVBUILD_PORT": "0",  # the kernel picks; the log says which
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        **settings,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(env["python"]), "-m", serving.SERVE_PACKAGE],
            env=proc_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_server(env: dict[str, Path], model: Path, log: Path, **settings: str) -> Running:
    proc = spawn_server(env, model, log, **settings)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            running = Running(proc, int(match.group(1)), log)
            while time.monotonic() < deadline:
                try:
                    if get(running, "/ping")[0] == 200:
                        return running
                except OSError:
                    time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")


def assert_workers_gone(log: str) -> None:
    for pid in re.findall(r"worker (\d+) serving", log):
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the master"


def get(server: Running, path: str) -> tuple[int, Message, bytes]:
    """The status, the headers (looked up in any case, as HTTP's names are: uvicorn sends
    them in lower case) and the body."""
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post(server: Running, body: bytes, ctype: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(
        server.url + "/invocations", data=body, headers={"Content-Type": ctype}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, json.loads(raw)


@pytest.fixture(scope="module")
def servers(
    serve_env: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    logs = tmp_path_factory.mktemp("serve-logs")
    started = {
        "sklearn-credit": start_server(
            serve_env,
            EXAMPLES / "sklearn-credit",
            logs / "sklearn-credit.log",
            ENVBUILD_WORKERS="2",
            ENVBUILD_ACCESS_LOG="0",
        ),
        "pyfunc-custom": start_server(
            serve_env, EXAMPLES / "pyfunc-custom", logs / "pyfunc-custom.log"
        ),
    }
    yield started
    for name, server in started.items():
        code = server.stop()
        assert code == 0, f"{name} exited {code}:\n{server.text()[-3000:]}"


# -- payloads ------------------------------------------------------------------------------


def example(name: str) -> tuple[dict[str, Any], dict[str, Any] | None, list[Any]]:
    payload = json.loads((EXAMPLES / name / "serving_input_example.json").read_text())
    expected = json.loads((EXAMPLES / name / "expected_predictions.json").read_text())
    assert expected["input"] == "serving_input_example.json"
    return payload["dataframe_split"], payload.get("params"), expected["predictions"]


def payloads(name: str) -> dict[str, tuple[str, bytes]]:
    split, params, _ = example(name)
    cols, rows = split["columns"], split["data"]
    records = [dict(zip(cols, row, strict=True)) for row in rows]
    extra = {"params": params} if params is not None else {}
    out = {
        "dataframe_split": {"dataframe_split": split, **extra},
        "dataframe_records": {"dataframe_records": records, **extra},
        "instances": {"instances": records, **extra},
        "inputs-columns": {
            "inputs": {c: [r[i] for r in rows] for i, c in enumerate(cols)},
            **extra,
        },
        "inputs-records": {"inputs": records, **extra},
    }
    result = {k: ("application/json", json.dumps(v).encode()) for k, v in out.items()}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows(rows)
    result["csv"] = ("text/csv", buf.getvalue().encode())
    result["csv-charset"] = ("text/csv; charset=utf-8", buf.getvalue().encode())
    return result


FORMATS = list(payloads("sklearn-credit"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_stored_predictions_in_every_format(
    servers: dict[str, Running], name: str, fmt: str
) -> None:
    ctype, body = payloads(name)[fmt]
    status, doc = post(servers[name], body, ctype)
    assert status == 200, doc
    assert doc == {"predictions": example(name)[2]}


def mlflow1_payloads(name: str) -> dict[str, tuple[str, bytes]]:
    """The example as MLflow 1.x clients sent it: bare pandas JSON, the orient named by the
    Content-Type or not (1.x had no params: the model's defaults apply)."""
    split, _, _ = example(name)
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    as_split, as_records = json.dumps(split).encode(), json.dumps(records).encode()
    return {
        "split": ("application/json", as_split),
        "records": ("application/json", as_records),
        "format=pandas-split": ("application/json; format=pandas-split", as_split),
        "format=pandas-records": ("application/json; format=pandas-records", as_records),
        "numpy-split": ("application/json-numpy-split", as_split),
    }


@pytest.mark.parametrize("fmt", list(mlflow1_payloads("sklearn-credit")))
def test_mlflow1_requests_get_mlflow1_answers(servers: dict[str, Running], fmt: str) -> None:
    """MLflow 3's parsers behind MLflow 1.x's request forms: the stored predictions, bare
    as MLflow 1.x's server wrote them (tests/integration/test_image.py does the same with
    MLflow 1.30.1 itself)."""
    ctype, body = mlflow1_payloads("sklearn-credit")[fmt]
    status, doc = post(servers["sklearn-credit"], body, ctype)
    assert status == 200, doc
    assert doc == example("sklearn-credit")[2]


def test_body_bytes_match_mlflow_serialisation(servers: dict[str, Running]) -> None:
    # MLflow's predictions_to_json: json.dump with default separators, DataFrame as records
    ctype, body = payloads("pyfunc-custom")["dataframe_split"]
    req = urllib.request.Request(
        servers["pyfunc-custom"].url + "/invocations", data=body, headers={"Content-Type": ctype}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        assert r.headers["Content-Type"] == "application/json"
    assert raw == json.dumps({"predictions": example("pyfunc-custom")[2]}).encode()


def test_params_reach_the_model(servers: dict[str, Running]) -> None:
    split, _, expected = example("pyfunc-custom")
    body = json.dumps({"dataframe_split": split, "params": {"threshold": 0.9}}).encode()
    status, doc = post(servers["pyfunc-custom"], body)
    assert status == 200
    labels = [p["label"] for p in doc["predictions"]]
    assert labels == ["default" if p["probability"] >= 0.9 else "no_default" for p in expected]
    assert labels != [p["label"] for p in expected]  # the param changed something


def test_predict_without_http(serve_env: dict[str, Path]) -> None:
    for name in MODELS:
        done = subprocess.run(
            [str(serve_env["python"]), "-m", "envbuild_serve", "predict", "--input",
             str(EXAMPLES / name / "serving_input_example.json")],
            env={"PYTHONPATH": str(serve_env["path"]), "ENVBUILD_MODEL_DIR": str(EXAMPLES / name),
                 "PATH": os.environ.get("PATH", "")},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout) == {"predictions": example(name)[2]}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_mlflow_environment_warnings_come_after_the_first_ping(
    serve_env: dict[str, Path], tmp_path: Path, workers: str
) -> None:
    """MLflow's load-time warnings (a pin the environment lacks, another Python) still
    reach the log, from the master (2 workers) or a thread (1), once the server answers."""
    model = tmp_path / "model"
    shutil.copytree(EXAMPLES / "pyfunc-custom", model)
    with (model / "requirements.txt").open("a", encoding="utf-8") as f:
        f.write("\nnot-installed-here==1.0\n")
    mlmodel = model / "MLmodel"
    mlmodel.write_text(
        mlmodel.read_text().replace("python_version: 3.11.7", "python_version: 3.8.12")
    )
    server = start_server(serve_env, model, tmp_path / "log", ENVBUILD_WORKERS=workers)
    try:
        assert post(server, payloads("pyfunc-custom")["csv"][1], "text/csv")[0] == 200
        deadline = time.monotonic() + 30
        while "differs from the version of Python" not in server.text():
            assert time.monotonic() < deadline, server.text()
            time.sleep(0.05)
        log = server.text()
        mismatch = log.index("Detected one or more mismatches")
        assert "not-installed-here (current: uninstalled, required: not-installed-here==1.0)" in log
        assert (
            "`Python 3.8.12`, differs from the version of Python that is currently running" in log
        )
        started = "2 workers started" if workers == "2" else "listening on"
        assert log.index(started) < mismatch
    finally:
        assert server.stop() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_ping_sent_during_the_load_waits_and_an_early_sigterm_stops_all(
    serve_env: dict[str, Path], tmp_path: Path
) -> None:
    """The socket is bound before the model loads: a connection made during the load is
    queued, not refused, and its /ping is answered by the first worker forked. A SIGTERM
    sent right then, while the master still forks the other three, stops every process
    (it once reached a worker before that worker reset the master's handler, and the
    worker served on until the master's SIGKILL, 31 s later)."""
    port, log = _free_port(), tmp_path / "log"
    proc = spawn_server(
        serve_env, EXAMPLES / "sklearn-credit", log, ENVBUILD_PORT=str(port), ENVBUILD_WORKERS="4"
    )
    server = Running(proc, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=120)
                break
            except OSError:
                time.sleep(0.01)
        with conn:
            assert "loaded with MLflow" not in log.read_text()  # connected during the load
            conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert text.rstrip().endswith("stopped"), text[-3000:]
        assert_workers_gone(text)
    finally:
        server.stop()


def test_a_port_in_use_fails_before_the_model_loads(
    serve_env: dict[str, Path], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port, log = int(taken.getsockname()[1]), tmp_path / "log"
        proc = spawn_server(serve_env, EXAMPLES / "sklearn-credit", log, ENVBUILD_PORT=str(port))
        assert proc.wait(30) == 3
    text = log.read_text()
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in text, text
    assert "loaded with MLflow" not in text and "Traceback" not in text


# -- errors --------------------------------------------------------------------------------


def _bad_cases() -> list[tuple[str, str, bytes, int, str]]:
    split, _, _ = example("sklearn-credit")
    records = [dict(zip(split["columns"], r, strict=True)) for r in split["data"]]
    no_age = [{k: v for k, v in r.items() if k != "age"} for r in records]
    old_age = [{**r, "age": "old"} for r in records]
    j = "application/json"
    return [
        ("malformed", j, b'{"dataframe_split": ', 400, "malformed JSON: Expecting value at line 1"),
        # a list is MLflow 1.x's records orient: these records are not the signature's
        ("list", j, b"[1, 2]", 400, "Model is missing inputs ['limit_bal'"),
        ("scalar", j, b"3", 400, "or pandas JSON (MLflow 1.x: a split object or a records list); got a JSON int"),
        ("unknown-key", j, json.dumps({"dataframe_splitt": split}).encode(), 400,
         "exactly one of the keys dataframe_split, dataframe_records, instances, inputs"),
        ("two-keys", j, json.dumps({"dataframe_split": split, "instances": records}).encode(),
         400, "got keys: dataframe_split, instances"),
        ("missing-column", j, json.dumps({"dataframe_records": no_age}).encode(), 400,
         "does not match the model signature: Model is missing inputs ['age']"),
        ("wrong-type", j, json.dumps({"dataframe_records": old_age}).encode(), 400,
         "Failed to convert column age to type 'int64'"),
        ("split-shape", j, json.dumps({"dataframe_split": {"columns": split["columns"],
         "data": [[1, 2]]}}).encode(), 400, "7 columns passed, passed data had 2 columns"),
        ("params-list", j, json.dumps({"dataframe_split": split, "params": [1]}).encode(), 400,
         "'params' must be a JSON object"),
        ("not-utf8", j, b"\xff\xfe{}", 400, "not UTF-8"),
        ("bad-csv", "text/csv", b'limit_bal,age\n1,2,3,4\n"open', 400,
         "could not read the CSV body"),
        ("csv-columns", "text/csv", b"a,b\n1,2\n", 400, "Model is missing inputs"),
        ("xml", "application/xml", b"<a/>", 415, "'application/xml' is not supported"),
        ("mlflow1-format", "application/json; format=pandas-index", json.dumps(split).encode(),
         415, "format='pandas-index' is not supported"),
        ("mlflow1-misfit", "application/json; format=pandas-records", json.dumps(split).encode(),
         400, "format=pandas-records needs a JSON list of records"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "ctype", "body", "status", "needle"),
    _bad_cases(),
    ids=[c[0] for c in _bad_cases()],
)
def test_bad_payloads_are_4xx_json(
    servers: dict[str, Running], case: str, ctype: str, body: bytes, status: int, needle: str
) -> None:
    got, doc = post(servers["sklearn-credit"], body, ctype)
    assert got == status, doc
    assert set(doc) == {"error_code", "message"} and doc["error_code"] == "BAD_REQUEST"
    assert needle in doc["message"], doc["message"]
    assert "390000" not in doc["message"]  # the payload is not echoed back


def test_bad_param_type_is_400(servers: dict[str, Running]) -> None:
    split, _, _ = example("pyfunc-custom")
    body = json.dumps({"dataframe_split": split, "params": {"threshold": "high"}}).encode()
    status, doc = post(servers["pyfunc-custom"], body)
    assert status == 400 and doc["error_code"] == "BAD_REQUEST"
    assert "threshold" in doc["message"]


def test_model_crash_is_500(servers: dict[str, Running]) -> None:
    # NaN is a valid double for the signature; the LogisticRegression inside refuses it.
    row = '{"limit_bal": 1, "age": 30, "education": "university", "pay_0": 1, "pay_2": 1, '
    body = ('{"dataframe_records": [' + row + '"bill_amt1": NaN, "pay_amt1": 1.0}]}').encode()
    status, doc = post(servers["sklearn-credit"], body)
    assert status == 500
    assert doc["error_code"] == "INTERNAL_ERROR"
    assert doc["message"].startswith("the model raised ValueError: Input X contains NaN")
    # and the server still answers
    assert (
        post(servers["sklearn-credit"], payloads("sklearn-credit")["csv"][1], "text/csv")[0] == 200
    )


# -- the other routes ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_ping_version_openapi(servers: dict[str, Running], name: str) -> None:
    server = servers[name]
    assert get(server, "/ping")[::2] == (200, b"\n")
    assert get(server, "/health")[::2] == (200, b"\n")
    assert get(server, "/version")[2] == truth(name)["mlflow"].encode()
    status, headers, raw = get(server, "/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(raw)
    validate_openapi(doc)
    uuid = re.search(r"model_uuid: (\w+)", (EXAMPLES / name / "MLmodel").read_text())
    assert uuid and doc["info"]["version"] == uuid.group(1)
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    schema = {**body["schema"], "components": doc["components"]}
    assert body["example"] == json.loads(
        (EXAMPLES / name / "serving_input_example.json").read_text()
    )
    for ctype, payload in payloads(name).values():
        if ctype == "application/json":
            jsonschema.validate(json.loads(payload), schema)
    status, headers, raw = get(server, "/nope")
    assert status == 404 and json.loads(raw)["error_code"] == "ENDPOINT_NOT_FOUND"


# -- load and lifecycle --------------------------------------------------------------------


def _load(server: Running, *extra: str) -> dict[str, Any]:
    name = "sklearn-credit"
    done = subprocess.run(
        [sys.executable, str(LOAD_TEST), server.url + "/invocations",
         "--payload", str(EXAMPLES / name / "serving_input_example.json"),
         "--expect", str(EXAMPLES / name / "expected_predictions.json"),
         "--concurrency", "200", "--max-seconds", "240", "--json", *extra],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout)
    print(json.dumps(report, indent=1))  # the numbers, with pytest -s
    assert done.returncode == 0, (report, server.text()[-2000:])
    return report


def test_200_concurrent_keepalive_connections_lose_nothing(servers: dict[str, Running]) -> None:
    report = _load(servers["sklearn-credit"], "--requests", "3000")
    assert report["ok"] == 3000 and report["errors"] == 0 and report["not_sent"] == 0
    assert report["statuses"] == {"200": 3000}


def test_200_concurrent_new_connections_lose_nothing(servers: dict[str, Running]) -> None:
    # a new TCP connection per request: the listen backlog takes the bursts
    report = _load(servers["sklearn-credit"], "--requests", "1000", "--no-keepalive")
    assert report["ok"] == 1000 and report["errors"] == 0


def in_flight(server: Running, route: str) -> None:
    """Return once /metrics (summed over the workers) shows a request on ``route`` in flight."""
    line = re.compile(rf'^envbuild_requests_in_flight{{route="{re.escape(route)}"}} (\d+)', re.M)
    deadline = time.monotonic() + 60
    while True:
        match = line.search(get(server, "/metrics")[2].decode())
        if match and int(match[1]) > 0:
            return
        assert time.monotonic() < deadline, server.text()[-2000:]


def test_workers_restart_and_sigterm_drains(serve_env: dict[str, Path], tmp_path: Path) -> None:
    name = "pyfunc-custom"
    server = start_server(serve_env, EXAMPLES / name, tmp_path / "log", ENVBUILD_WORKERS="2")
    try:

        def workers(count: int) -> list[int]:
            deadline = time.monotonic() + 30
            while len(found := re.findall(r"worker (\d+) serving", server.text())) < count:
                assert time.monotonic() < deadline, server.text()
                time.sleep(0.05)
            return [int(p) for p in found]

        os.kill(workers(2)[0], signal.SIGKILL)  # the master starts another
        assert len(workers(3)) == 3
        for _ in range(20):  # both workers answer
            assert post(server, payloads(name)["csv"][1], "text/csv")[0] == 200

        # a batch big enough to be in flight when SIGTERM arrives
        split, params, _ = example(name)
        rows = split["data"] * 40000
        big = json.dumps({"dataframe_split": {"columns": split["columns"], "data": rows},
                          "params": params}).encode()  # fmt: skip
        result: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: result.update(r=post(server, big)))
        sender.start()
        in_flight(server, "/invocations")  # its headers are read: it is in flight
        server.proc.send_signal(signal.SIGTERM)
        sender.join(60)
        status, doc = result["r"]
        assert status == 200 and len(doc["predictions"]) == len(rows)
        assert server.proc.wait(30) == 0
        log = server.text()
        assert "SIGTERM: stopping 2 worker(s)" in log and log.rstrip().endswith("stopped")
        big_done = re.search(r'"POST /invocations HTTP/1.1" 200 \d{7,} ', log)
        assert big_done and log.index("SIGTERM") < big_done.start(), "not in flight at SIGTERM"
        assert_workers_gone(log)
    finally:
        server.stop()


def test_sigterm_under_connection_bursts_stops_every_process(
    serve_env: dict[str, Path], tmp_path: Path
) -> None:
    """Workers race for each new connection on the shared socket; a stop right after bursts
    must end the master and every worker promptly (a worker that lost the race used to
    block in accept() until the next connection, deaf to the stop). Three rounds."""
    for round_ in range(3):
        server = start_server(
            serve_env, EXAMPLES / "sklearn-credit", tmp_path / f"log{round_}",
            ENVBUILD_WORKERS="2", ENVBUILD_ACCESS_LOG="0",
        )  # fmt: skip
        load = subprocess.Popen(
            [sys.executable, str(LOAD_TEST), server.url + "/invocations",
             "--payload", str(EXAMPLES / "sklearn-credit" / "serving_input_example.json"),
             "--concurrency", "100", "--requests", "100000", "--max-seconds", "60",
             "--no-keepalive", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1.5)
            load.kill()  # the bursts end; a worker stuck in accept() would wait for ever
            load.wait()
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            # well inside ENVBUILD_GRACE (30 s), after which the master kills stuck workers
            assert server.proc.wait(15) == 0, server.text()[-2000:]
            log = server.text()
            assert "killing it" not in log
            assert_workers_gone(log)
        finally:
            load.kill()
            load.wait()
            server.stop()


# -- the package under the oldest Python it supports -----------------------------------------


@pytest.mark.docker
def test_http_layer_runs_on_python_38() -> None:
    """Python 3.8 images: the package imports, its settings parse and the HTTP layer serves
    (a stand-in scorer; MLflow for 3.8 is the builder's integration test)."""
    script = """
import json, threading, urllib.request
from types import SimpleNamespace
from envbuild_serve.config import load_config
from envbuild_serve.protocol import Response
from envbuild_serve.server import App, Server
class S:
    mlflow_version = "x"; model_dir = None
    metadata = SimpleNamespace(model_uuid="u", saved_input_example_info=None)
    def signature_dict(self): return json.load(open("/tmp/s/sig.json"))
    def invoke(self, body, ctype): return Response(200, body)
cfg = load_config({"ENVBUILD_ACCESS_LOG": "0"})
app = App(S(), cfg); app.start_pool()
srv = Server(("127.0.0.1", 0), app, 64)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d" % srv.server_address[1]
req = urllib.request.Request(url + "/invocations", data=b'{"a": 1}',
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req).read().decode())
print(json.loads(urllib.request.urlopen(url + "/openapi.json").read())["openapi"])
srv.begin_stop(); print(srv.close(5))
"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = {**copied_server(), "sig.json": json.dumps(
            {"inputs": json.dumps([{"type": "long", "name": "a", "required": True}])}).encode(),
            "check.py": script.encode()}  # fmt: skip
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    done = subprocess.run(
        ["docker", "run", "--rm", "-i", "--network", "none", "python:3.8-slim", "sh", "-c",
         "mkdir -p /tmp/s && cd /tmp/s && tar x && python -V && PYTHONPATH=/tmp/s python check.py && "
         "ENVBUILD_WORKERS=zero PYTHONPATH=/tmp/s python -m envbuild_serve; echo rc=$?"],
        input=buf.getvalue(), capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "Python 3.8." in out
    assert '{"a": 1}\n3.0.3\nTrue\n' in out
    assert "ERROR ENVBUILD_WORKERS='zero' is not a number" in out and "rc=2" in out


# -- the uvicorn layer (ENVBUILD_HTTP=uvicorn) against the builtin one ----------------------


@pytest.fixture(scope="module")
def layers(
    serve_env: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    """sklearn-credit under each layer, two workers each, the same settings."""
    logs = tmp_path_factory.mktemp("layer-logs")
    started = {}
    for layer in ("builtin", "uvicorn"):
        started[layer] = start_server(
            serve_env, EXAMPLES / "sklearn-credit", logs / f"{layer}.log",
            ENVBUILD_HTTP=layer, ENVBUILD_WORKERS="2", ENVBUILD_MAX_BODY="65536",
            # MLflow lists "extra inputs" from a set: string hashing must not differ
            PYTHONHASHSEED="0",
        )  # fmt: skip
    yield started
    for layer, server in started.items():
        code = server.stop()
        assert code == 0, f"{layer} exited {code}:\n{server.text()[-3000:]}"
        text = server.text()
        assert text.rstrip().endswith("stopped"), text[-2000:]
        assert_workers_gone(text)


def raw(server: Running, method: str, path: str, body: bytes | None = None,
        ctype: str = "application/json") -> tuple[int, str | None, str | None, bytes]:  # fmt: skip
    req = urllib.request.Request(server.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers["Content-Type"], r.headers["Server"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.headers["Server"], e.read()


def _v2_request() -> bytes:
    split, _, _ = example("sklearn-credit")
    kinds = {int: "INT64", float: "FP64", str: "BYTES"}
    inputs = [
        {"name": c, "shape": [len(split["data"])],
         "datatype": kinds[type(split["data"][0][i])], "data": [r[i] for r in split["data"]]}
        for i, c in enumerate(split["columns"])
    ]  # fmt: skip
    return json.dumps({"inputs": inputs}).encode()


def test_uvicorn_layer_answers_what_the_builtin_one_does(layers: dict[str, Running]) -> None:
    """Every payload format, every bad payload of test_bad_payloads_are_4xx_json (bad JSON,
    wrong columns, ...), a body over ENVBUILD_MAX_BODY, a V2 infer, the other routes: the same
    status, Content-Type, Server header and body bytes from both layers; /metrics then
    counts the same requests."""
    cases: list[tuple[str, str, bytes | None, str]] = [
        ("POST", "/invocations", body, ctype) for ctype, body in payloads("sklearn-credit").values()
    ]
    cases += [("POST", "/invocations", body, ctype) for _, ctype, body, _, _ in _bad_cases()]
    cases += [
        ("POST", "/invocations", b'{"dataframe_split": "' + b"x" * 70000 + b'"}', "application/json"),
        ("POST", "/v2/models/model/infer", _v2_request(), "application/json"),
        ("POST", "/v2/models/model/infer", b'{"inputs": [{"name": "age"}]}', "application/json"),
        ("GET", "/ping", None, ""), ("GET", "/version", None, ""),
        ("GET", "/openapi.json", None, ""), ("GET", "/v2/models/model", None, ""),
        ("GET", "/nope", None, ""), ("GET", "/invocations", None, ""),
    ]  # fmt: skip
    statuses = []
    for method, path, body, ctype in cases:
        builtin = raw(layers["builtin"], method, path, body, ctype)
        uvicorn = raw(layers["uvicorn"], method, path, body, ctype)
        assert uvicorn == builtin, (path, body and body[:80])
        statuses.append(builtin[0])
    assert {200, 400, 404, 405, 413, 415} == set(statuses)
    for server in layers.values():
        v2 = json.loads(raw(server, "POST", "/v2/models/model/infer", _v2_request())[3])
        assert v2["outputs"][0]["data"] == example("sklearn-credit")[2]

    def requests_total(server: Running) -> dict[str, str]:
        text = get(server, "/metrics")[2].decode()
        return dict(re.findall(r"^(envbuild_requests_total\{.*\}) (\S+)$", text, re.M))

    counted = requests_total(layers["builtin"])
    assert requests_total(layers["uvicorn"]) == counted
    assert counted['envbuild_requests_total{route="/invocations",status="413"}'] == "1"
    assert "(http uvicorn " in layers["uvicorn"].text()
