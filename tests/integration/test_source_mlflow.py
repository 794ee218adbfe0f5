"""Model URIs against a real MLflow tracking server.

One server per session (sqlite backend store, local artifact root, 127.0.0.1, a free port),
started from the installed mlflow. The sklearn-credit example is logged to a run,
registered twice as ``credit`` (versions 1 and 2) with alias ``champion`` on version 1;
``envbuild`` then runs as a subprocess, as a user would run it, on runs:/, models:/name/1,
models:/name@alias and models:/name/latest, and must say what it says on the local folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXAMPLES, run_envbuild

pytestmark = pytest.mark.mlflow

EXAMPLE = EXAMPLES / "sklearn-credit"
NAME = "credit"
SECRET = "hunter2-s3cret"

LOG_MODEL = """
import json, sys
from mlflow import MlflowClient

uri, folder, name = sys.argv[1:4]
client = MlflowClient(tracking_uri=uri)
run = client.create_run("0")
run_id = run.info.run_id
client.log_artifacts(run_id, folder, artifact_path="model")
client.set_terminated(run_id)
client.create_registered_model(name)
source = run.info.artifact_uri + "/model"
v1 = client.create_model_version(name, source=source, run_id=run_id, await_creation_for=0)
v2 = client.create_model_version(name, source=source, run_id=run_id, await_creation_for=0)
client.set_registered_model_alias(name, "champion", v1.version)
print(json.dumps({"run_id": run_id, "v1": v1.version, "v2": v2.version}))
"""

BLOCK_MLFLOW = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Block())
sys.argv = ["envbuild", *sys.argv[1:]]
from envbuild.cli import main
main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    uri: str
    run_id: str
    port: int


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    assert (EXAMPLE / "MLmodel").is_file(), "examples/sklearn-credit is missing"
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited {proc.returncode}:\n"
                    + (home / "server.log").read_text(errors="replace")[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        logged = subprocess.run(
            [sys.executable, "-c", LOG_MODEL, uri, str(EXAMPLE), NAME],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
            env=_env(),
        )
        info = json.loads(logged.stdout.strip().splitlines()[-1])
        assert (info["v1"], info["v2"]) == ("1", "2")
        yield Server(uri=uri, run_id=info["run_id"], port=port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLFLOW_") and k not in ("ENVBUILD_CACHE_DIR", "XDG_CACHE_HOME")
    }
    env["NO_COLOR"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # loopback only: no usage reports
    env.update(extra)
    return env


def show_json(location: str, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run_envbuild("show", location, "--format", "json", *extra, env=env or _env())
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    doc["_stderr"] = done.stderr
    return doc


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The envelope without what must differ: where the folder is and where it came from
    (a registry download also holds MLflow's registered_model_meta, listed among its files)."""
    doc = {k: v for k, v in doc.items() if k != "_stderr"}
    result = {k: v for k, v in doc["result"].items() if k not in ("path", "source")}
    files = {
        k: [e for e in v if not (isinstance(e, dict) and e.get("path") == "registered_model_meta")]
        if isinstance(v, list)
        else v
        for k, v in result.get("files", {}).items()
    }
    return {**doc, "result": {**result, "files": files}}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def local_show() -> dict[str, Any]:
    return show_json(str(EXAMPLE))


# --------------------------------------------------------------------------------------
# the same answer as on the local folder


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("runs:/{run_id}/model", {"kind": "runs", "artifact_path": "model"}),
        (f"models:/{NAME}/1", {"kind": "models", "registered_name": NAME, "version": "1"}),
        (
            f"models:/{NAME}@champion",
            {"kind": "models", "registered_name": NAME, "version": "1", "alias": "champion"},
        ),
        (f"models:/{NAME}/latest", {"kind": "models", "registered_name": NAME, "version": "2"}),
    ],
    ids=["runs", "version", "alias", "latest"],
)
def test_show_uri_same_as_local(
    mlflow_server: Server,
    local_show: dict[str, Any],
    tmp_path: Path,
    location: str,
    expected: dict[str, Any],
) -> None:
    location = location.format(run_id=mlflow_server.run_id)
    cache = tmp_path / "cache"
    doc = show_json(location, "--tracking-uri", mlflow_server.uri, "--cache-dir", str(cache))
    assert _comparable(doc) == _comparable(local_show)
    assert Path(doc["result"]["path"]).is_relative_to(cache)
    source = doc["result"]["source"]
    want = {
        "uri": location,
        "run_id": mlflow_server.run_id,
        "registered_name": None,
        "version": None,
        "alias": None,
        "stage": None,
        "model_id": None,
        "artifact_path": None,
        "tracking_uri": mlflow_server.uri,
        **expected,
    }
    assert source == want
    assert f"{location}: downloading into {cache}" in doc["_stderr"]


def test_show_text_names_the_source(mlflow_server: Server, tmp_path: Path) -> None:
    done = run_envbuild(
        "show",
        f"models:/{NAME}@champion",
        "--tracking-uri",
        mlflow_server.uri,
        "--cache-dir",
        str(tmp_path),
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == (
        f"source     models:/{NAME}@champion "
        f"({NAME} version 1, alias champion, run {mlflow_server.run_id})"
    )


# --------------------------------------------------------------------------------------
# the cache


def _stat(entry: Path) -> list[tuple[str, int, int]]:
    return [
        (str(p.relative_to(entry)), p.stat().st_ino, p.stat().st_mtime_ns)
        for p in [entry, *files_under(entry)]
    ]


def test_second_call_does_not_download(mlflow_server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ("--tracking-uri", mlflow_server.uri, "--cache-dir", str(cache))
    first = show_json(f"models:/{NAME}/1", *args)
    assert "downloading into" in first["_stderr"]
    (entry,) = (cache / "models").iterdir()
    before = _stat(entry)
    assert (entry / "files" / NAME / "registered_model_meta").is_file()  # written by MLflow

    again = show_json(f"models:/{NAME}/1", *args)
    assert "downloading" not in again["_stderr"]
    assert f"models:/{NAME}/1: using the cached copy {entry}" in again["_stderr"]
    # the alias resolves to version 1: the same entry, no download either
    alias = show_json(f"models:/{NAME}@champion", *args)
    assert "resolved to version 1" in alias["_stderr"]
    assert "downloading" not in alias["_stderr"]
    assert _stat(entry) == before
    assert [p.name for p in cache.iterdir()] == ["models"]
    assert again["result"]["source"] == first["result"]["source"]

    # a pinned version, once cached, needs neither the server nor MLflow itself
    offline = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MLFLOW,
            "show",
            f"models:/{NAME}/1",
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["result"]["path"] == first["result"]["path"]
    assert _stat(entry) == before


def test_env_vars_and_default_cache(mlflow_server: Server, tmp_path: Path) -> None:
    env = _env(MLFLOW_TRACKING_URI=mlflow_server.uri, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    doc = show_json(f"runs:/{mlflow_server.run_id}/model", env=env)
    cache = tmp_path / "xdg" / "envbuild" / "models" / "runs"
    assert Path(doc["result"]["path"]).is_relative_to(cache)
    assert doc["result"]["source"]["tracking_uri"] == mlflow_server.uri
    env["ENVBUILD_CACHE_DIR"] = str(tmp_path / "explicit")
    doc = show_json(f"runs:/{mlflow_server.run_id}/model", env=env)
    assert Path(doc["result"]["path"]).is_relative_to(tmp_path / "explicit")


def test_credentials_stay_out_of_output_and_cache(mlflow_server: Server, tmp_path: Path) -> None:
    with_secret = mlflow_server.uri.replace("http://", f"http://bob:{SECRET}@")
    cache = tmp_path / "cache"
    done = run_envbuild(
        "show",
        f"models:/{NAME}/2",
        "--format",
        "json",
        "--tracking-uri",
        with_secret,
        "--cache-dir",
        str(cache),
        "-v",
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout and SECRET not in done.stderr
    source = json.loads(done.stdout)["result"]["source"]
    assert source["tracking_uri"] == mlflow_server.uri.replace("http://", "http://****@")
    for path in files_under(cache):
        assert SECRET not in str(path)
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


# --------------------------------------------------------------------------------------
# errors: one line (and its TIP), exit 2, nothing in the cache


def _show_json(location: str, tracking_uri: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_envbuild(
        "show",
        location,
        "--format",
        "json",
        "--tracking-uri",
        tracking_uri,
        "--cache-dir",
        str(cache),
        env=_env(),
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], code: str, uri: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"ERROR {code} {uri}: "), done.stderr
    assert lines[-2:] == [errors[0], lines[-1]] and lines[-1].startswith("  TIP "), done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert doc["error"]["code"] == code and doc["result"] is None


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("runs:/0123456789abcdef0123456789abcdef/model", "EB604"),
        ("models:/no-such-model/1", "EB605"),
        (f"models:/{NAME}/99", "EB606"),
        (f"models:/{NAME}@no-such-alias", "EB606"),
        (f"models:/{NAME}/Production", "EB606"),
    ],
    ids=["unknown-run", "unknown-model", "unknown-version", "unknown-alias", "empty-stage"],
)
def test_unknown(mlflow_server: Server, tmp_path: Path, location: str, code: str) -> None:
    cache = tmp_path / "cache"
    done = _show_json(location, mlflow_server.uri, cache)
    _assert_one_line_error(done, code, location)
    assert len(done.stderr.splitlines()) == 2, done.stderr
    assert files_under(cache) == []


def test_missing_artifact_path_leaves_nothing(mlflow_server: Server, tmp_path: Path) -> None:
    # The run exists, so the download starts: its temporary folder must go again.
    cache = tmp_path / "cache"
    location = f"runs:/{mlflow_server.run_id}/no-such-path"
    done = _show_json(location, mlflow_server.uri, cache)
    _assert_one_line_error(done, "EB607", location)
    assert files_under(cache) == []


def test_run_root_that_is_not_a_model(mlflow_server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    location = f"runs:/{mlflow_server.run_id}"
    done = _show_json(location, mlflow_server.uri, cache)
    _assert_one_line_error(done, "EB607", location)
    assert "add /model to the URI" in done.stderr
    assert files_under(cache) == []


def test_server_down(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    down = f"http://bob:{SECRET}@127.0.0.1:{free_port()}"
    done = run_envbuild(
        "show",
        f"models:/{NAME}/1",
        "--format",
        "json",
        "--tracking-uri",
        down,
        "--cache-dir",
        str(cache),
        env=_env(),
        timeout=120,  # a hang guard only: MLflow's own retry loop would take minutes
    )
    _assert_one_line_error(done, "EB603", f"models:/{NAME}/1")
    # envbuild's one probe answered, so MLflow's retry loop never started
    assert "cannot reach the tracking server" in done.stderr
    assert "connection refused" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 2
    assert files_under(cache) == []


def test_mlflow_extra_not_installed(mlflow_server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    location = f"runs:/{mlflow_server.run_id}/model"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MLFLOW,
            "show",
            location,
            "--format",
            "json",
            "--tracking-uri",
            mlflow_server.uri,
            "--cache-dir",
            str(cache),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    _assert_one_line_error(done, "EB601", location)
    assert "pip install 'envbuild[mlflow]'" in done.stderr
    assert len(done.stderr.splitlines()) == 2
    assert files_under(cache) == []
    # a local folder still works without MLflow
    local = subprocess.run(
        [sys.executable, "-c", BLOCK_MLFLOW, "show", str(EXAMPLE), "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert local.returncode == 0, local.stderr


# --------------------------------------------------------------------------------------
# check and image on URIs: the same as on the local folder, plus where it came from

URIS = ("runs:/{run_id}/model", f"models:/{NAME}/1", f"models:/{NAME}@champion")


@pytest.mark.network
def test_check_uris_same_as_local(mlflow_server: Server, tmp_path: Path) -> None:
    uris = [u.format(run_id=mlflow_server.run_id) for u in URIS]
    env = _env(MLFLOW_TRACKING_URI=mlflow_server.uri, ENVBUILD_CACHE_DIR=str(tmp_path))
    done = run_envbuild("check", str(EXAMPLE), *uris, "--format", "json", env=env)
    doc = json.loads(done.stdout)
    assert done.returncode == doc["exit_code"], done.stderr
    local, *remote = doc["result"]["models"]
    assert local["model"] == str(EXAMPLE) and local["source"]["kind"] == "local"
    for uri, report in zip(uris, remote, strict=True):
        assert report["model"] == uri
        for key in ("ok", "input_error", "findings", "skipped"):
            assert report[key] == local[key], (uri, key)
        assert report["source"]["uri"] == uri
        assert report["source"]["run_id"] == mlflow_server.run_id
    assert [r["source"]["version"] for r in remote] == [None, "1", "1"]
    assert remote[2]["source"]["alias"] == "champion"


def _dockerfile_core(text: str) -> list[str]:
    """The Dockerfile less what names the model and the command line."""
    skip = (
        "# Generated by",
        "# Model:",
        "io.envbuild.command=",
        "io.envbuild.source.",
        "org.opencontainers.image.title=",
        "org.opencontainers.image.description=",
    )
    return [
        ln for ln in text.splitlines() if not ln.strip().removeprefix("LABEL ").startswith(skip)
    ]


def _context(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.network
def test_image_no_build_uris_same_as_local(mlflow_server: Server, tmp_path: Path) -> None:
    env = _env(MLFLOW_TRACKING_URI=mlflow_server.uri, ENVBUILD_CACHE_DIR=str(tmp_path / "c"))

    def image(location: str, out: Path) -> dict[str, Any]:
        done = run_envbuild(
            "image", location, "--no-build", "--output", str(out), "--format", "json", env=env
        )
        assert done.returncode == 0, done.stderr
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc

    local = image(str(EXAMPLE), tmp_path / "local")
    assert local["result"]["source"]["kind"] == "local"
    local_docker = (tmp_path / "local" / "Dockerfile").read_text()
    assert "io.envbuild.source." not in local_docker
    for i, pattern in enumerate(URIS):
        uri = pattern.format(run_id=mlflow_server.run_id)
        out = tmp_path / f"uri{i}"
        doc = image(uri, out)
        docker = (out / "Dockerfile").read_text()
        assert _dockerfile_core(docker) == _dockerfile_core(local_docker), uri
        labels = dict(doc["result"]["plan"]["labels"])
        assert labels["io.envbuild.source.uri"] == uri
        assert labels["io.envbuild.source.run-id"] == mlflow_server.run_id
        assert f'io.envbuild.source.uri="{uri}"' in docker
        if uri.startswith("models:/"):
            assert labels["io.envbuild.source.registered-name"] == NAME
            assert labels["io.envbuild.source.version"] == "1"
        assert doc["result"]["source"]["uri"] == uri
        # the same context, plus the registry's own note for models:/ downloads
        extra = ["model/registered_model_meta"] if uri.startswith("models:/") else []
        assert _context(out) == sorted([*_context(tmp_path / "local"), *extra])
