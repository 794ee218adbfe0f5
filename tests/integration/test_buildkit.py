"""BuildKit for real: the builder is found by asking the engine; a model that needs a
package from a private index with a password (pypiserver with an htpasswd file on
127.0.0.1, holding a wheel this test makes) builds with the credentials as BuildKit secrets
and they are in no layer, no history line, no label and no report; a wrong password fails
with one line that names the index's answer and shows no password; the image is pushed under two tags to a local registry
(Debian's docker-registry, started here), deleted, pulled back and answers with the stored
predictions; the uv cache mount stays out of the image, the CycloneDX SBOM is in it; the same engine reached over
TCP (DOCKER_HOST=tcp://127.0.0.1:PORT, a relay to its socket) builds and proves the image
with nothing bind-mounted.

The build reaches the index on the host's 127.0.0.1 through `--network host`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envbuild._adapters import buildkit as _buildkit
from envbuild._adapters import docker as _docker
from envbuild.build import compare
from tests.helpers import run_envbuild
from tests.integration.test_image import Server, payloads, truth_model

USER = "alice"
PASSWORD = "s3cret-pw-7f3a"  # what must appear nowhere in the image or the report
WRONG = "wrong-pw-91c2"
PACKAGE, MODULE, VERSION = "envbuild-private-probe", "envbuild_private_probe", "1.0"
TAG = "envbuild-test-buildkit"

pytestmark = [pytest.mark.docker, pytest.mark.network]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, ok: tuple[int, ...] = (200,), seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def make_wheel(folder: Path) -> Path:
    """A pure-Python wheel of PACKAGE whose module holds VALUE = 42."""
    dist = f"{MODULE}-{VERSION}"
    files = {
        f"{MODULE}/__init__.py": b"VALUE = 42\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n".encode()
        ),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: envbuild-test\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@dataclass(frozen=True)
class Index:
    port: int

    def url(self, password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{password}@" if password else ""
        return f"http://{auth}127.0.0.1:{self.port}/simple/"


@pytest.fixture(scope="module")
def private_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("index")
    packages = root / "packages"
    packages.mkdir()
    make_wheel(packages)
    # Apache's {SHA} scheme, which pypiserver checks through passlib
    sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    (root / "htpasswd").write_text(f"{USER}:{{SHA}}{sha}\n")
    port = free_port()
    # pypiserver's app under gunicorn's threaded worker: uv asks for every package of the
    # lock at once, and `pypiserver run` falls back to wsgiref (one request at a time, a
    # listen backlog of 5), where those ~50 requests took 13-32 s per resolve instead of 0.1
    app = (
        f"pypiserver:app(roots=[{str(packages)!r}], password_file={str(root / 'htpasswd')!r},"
        " authenticate=['download', 'list'], disable_fallback=True)"
    )
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1",
            "--threads", "16", "--backlog", "2048", "--control-socket", str(root / "ctl"),
            app,
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/simple/", ok=(401,))
        yield Index(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (the engine treats loopback registries as
    insecure, so plain HTTP is accepted)."""
    exe = shutil.which("docker-registry")
    assert exe, "docker-registry is not installed (.ci/run installs it)"
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [exe, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def private_model(dst: Path, index_line: str) -> Path:
    """examples/pyfunc-custom (its measured requirements) that also needs PACKAGE, which
    only the private index has."""
    model = truth_model(dst, "pyfunc-custom")
    req = model / "requirements.txt"
    req.write_text(f"{index_line}\n{req.read_text()}{PACKAGE}=={VERSION}\n")
    return model


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, private_index: Index, registry: str
) -> Iterator[tuple[Path, dict[str, Any], str, list[str]]]:
    model = private_model(
        tmp_path_factory.mktemp("private") / "pyfunc-custom",
        f"--extra-index-url {private_index.url()}",
    )
    names = [f"{registry}/{TAG}/pyfunc:1", f"{registry}/{TAG}/pyfunc:latest"]
    tags = [arg for name in names for arg in ("-t", name)]
    done = run_envbuild(
        "image", str(model), *tags, "--push", "--network", "host", "--format", "json"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    yield model, doc, done.stdout + done.stderr, names
    c = _docker.client()
    for name in names:
        _docker.remove_image(c, name)
    _docker.remove_image(c, doc["result"]["image"]["id"])


def test_the_engine_is_asked_and_a_cli_without_buildkit_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a docker first on PATH that cannot build (as the newer client without buildx)
    fake = tmp_path / "docker"
    fake.write_text(
        "#!/bin/sh\necho 'ERROR: BuildKit is enabled but the buildx component is missing' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    _buildkit.find.cache_clear()
    try:
        found = _buildkit.find()
        assert isinstance(found, _buildkit.BuildKitCli), found
        assert found.argv[0] != str(fake)
        monkeypatch.setenv("DOCKER_BUILDKIT", "0")
        _buildkit.find.cache_clear()
        assert _buildkit.find() == "DOCKER_BUILDKIT=0 is set"
        assert _buildkit.choose(_buildkit.Builder.AUTO) is None
        with pytest.raises(Exception) as exc:
            _buildkit.choose(_buildkit.Builder.BUILDKIT)
        assert getattr(exc.value, "code", "") == "EB903"
    finally:
        _buildkit.find.cache_clear()


@pytest.mark.slow
def test_a_private_index_build_keeps_its_password_out_of_the_image(
    built: tuple[Path, dict[str, Any], str, list[str]],
) -> None:
    _, doc, output, _ = built
    result = doc["result"]
    assert doc["ok"] and result["image"]["builder"] == "buildkit"
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    assert result["plan"]["secrets"] == ["envbuild_index_0"]
    image = result["image"]["id"]
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/opt/envbuild/venv/bin/python", image,
         "-c", f"import {MODULE}; print({MODULE}.VALUE)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.stdout.strip() == "42", probe.stderr
    assert PASSWORD not in output  # stdout (the JSON report) and stderr (the build log)
    history = subprocess.run(
        ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
    ).stdout
    assert "secret" in history and PASSWORD not in history
    labels = json.dumps(_docker.inspect(_docker.client(), image).labels)
    assert PASSWORD not in labels and USER + ":" not in labels
    seen, total, tail = False, 0, b""
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        while chunk := save.stdout.read(1 << 20):  # layers are plain tars: bytes as stored
            total += len(chunk)
            seen = seen or PASSWORD.encode() in tail + chunk
            tail = chunk[-64:]
    assert save.returncode == 0 and total > 10_000_000
    assert not seen, "the index password is in a layer of the saved image"
    # the uv cache was a mount: only its empty mount point is in the image
    look = subprocess.run(
        ["docker", "run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c",
         "find /root/.cache ! -type d | wc -l"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert look.stdout.strip() == "0"
    # the SBOM rides beside the lock, named by a label
    assert _docker.inspect(_docker.client(), image).labels["io.envbuild.sbom"] == (
        "/opt/envbuild/sbom.cdx.json"
    )
    cat = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", image, "/opt/envbuild/sbom.cdx.json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    sbom = json.loads(cat.stdout)
    names = {c["name"] for c in sbom["components"]}
    assert PACKAGE in names and "mlflow-skinny" in names and PASSWORD not in cat.stdout


@pytest.mark.slow
def test_the_pushed_image_pulls_back_and_answers(
    built: tuple[Path, dict[str, Any], str, list[str]],
) -> None:
    model, doc, _, names = built
    image = doc["result"]["image"]
    pushed = {p["name"]: p["digest"] for p in image["pushed"]}
    assert sorted(pushed) == sorted(names) and image["digest"] == pushed[names[0]]
    assert image["digest"].startswith("sha256:")
    c = _docker.client()
    for name in names:
        c.api.remove_image(name, force=True)
    _docker.remove_image(c, image["id"])  # gone with its last name unless another has it
    assert _docker.image_id(c, names[0]) is None and _docker.image_id(c, image["id"]) is None
    c.api.pull(names[0].rsplit(":", 1)[0], tag="1")
    attrs = c.api.inspect_image(names[0])
    assert attrs["Id"] == image["id"]
    assert any(d.endswith("@" + image["digest"]) for d in attrs["RepoDigests"])
    expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
    server = Server(names[0])
    try:
        body, ctype = payloads(model)["dataframe_split"]
        status, answer = server.post(body, ctype)
        assert status == 200, answer
        assert compare(expected, answer["predictions"]) is None
    finally:
        server.close()


@pytest.mark.slow
def test_a_wrong_password_fails_with_one_line_that_masks_it(
    tmp_path: Path, private_index: Index, built: tuple[Path, dict[str, Any], str, list[str]]
) -> None:
    # the lock the first build made, the model naming the index without credentials, and
    # a --secret-file with the wrong password: the failure comes from the build itself
    model = private_model(
        tmp_path / "pyfunc-custom", f"--extra-index-url {private_index.url(None)}"
    )
    lock = tmp_path / "requirements.lock"
    locked = run_envbuild("lock", str(built[0]), "--output", str(lock))
    assert locked.returncode == 0, locked.stderr[-2000:]
    assert PASSWORD not in lock.read_text()
    secret = tmp_path / "index.secret"
    secret.write_text(f"# the team's index\n{private_index.url(WRONG)}\n")
    done = run_envbuild(
        "image", str(model), "--lock", str(lock), "--secret-file", str(secret),
        "--network", "host", "--no-smoke", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert WRONG not in done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "EB801"
    # pypiserver: 401 without credentials, 403 for wrong ones
    assert "refused the credentials" in error["message"] and "403" in error["message"]
    assert "\n" not in error["message"]


class Relay:
    """The engine's unix socket on a TCP port of 127.0.0.1: the same engine, reached as a
    remote one is (DOCKER_HOST=tcp://...), so nothing of this machine's files is visible
    to the client's requests except what it sends."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.socket_path)
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.slow
def test_a_remote_engine_builds_and_proves_without_host_paths(
    tmp_path: Path, private_index: Index, built: tuple[Path, dict[str, Any], str, list[str]]
) -> None:
    engine = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert engine.startswith("unix://"), engine
    relay = Relay(engine.removeprefix("unix://"))
    tag = f"{TAG}-remote:1"
    try:
        env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{relay.port}"}
        done = run_envbuild(
            "image", str(built[0]), "-t", tag, "--network", "host", "--format", "json", env=env
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)["result"]
        assert result["image"]["builder"] == "buildkit" and result["smoke"]["ok"]
        assert result["smoke"]["sandbox"]["mounts"] == []  # reached by exec, not a host path
        assert relay.connections > 0
    finally:
        relay.close()
        _docker.remove_image(_docker.client(), tag)
