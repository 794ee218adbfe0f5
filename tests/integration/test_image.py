"""`envbuild image` for real: build the scikit-learn and pyfunc examples, run them, and
get their stored predictions back through /invocations in every payload format; a
weights-only change reuses the dependency layer; a --wheelhouse build needs no network;
the proof runs sandboxed and the tags are applied only after it passed.

Builds are shared per module. The credit model is built from the environment its
manifest measured (`truth`, with mlflow-skinny for mlflow): as declared it pins torch,
whose PyPI build is CUDA (gigabytes of nvidia-* wheels on the slim base; not built here).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from envbuild._adapters import docker as _docker
from envbuild.build import compare, smoke_image
from envbuild.errors import FailedError
from envbuild.read import read_model
from tests.helpers import EXAMPLES, ROOT, run_envbuild

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())


def truth_model(dst: Path, name: str) -> Path:
    """Copy an example with requirements.txt rewritten to its measured truth set."""
    import shutil

    shutil.copytree(EXAMPLES / name, dst)
    truth = next(e["truth"] for e in MANIFEST["examples"] if e["name"] == name)
    lines = [
        f"{'mlflow-skinny' if k == 'mlflow' else k}=={v}" for k, v in sorted(truth.items()) if v
    ]
    (dst / "requirements.txt").write_text("\n".join(lines) + "\n")
    return dst


def build(model: Path, tag: str, *extra: str) -> dict[str, Any]:
    done = run_envbuild("image", str(model), "-t", tag, "--format", "json", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["exit_code"] == 0
    return doc["result"]


class Server:
    def __init__(self, image: str) -> None:
        self.client = _docker.client()
        self.running = _docker.run(self.client, image, port=8080)
        self.base = f"http://127.0.0.1:{self.running.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("no /ping: " + _docker.logs_tail(self.running))

    def post(self, body: bytes, content_type: str) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.base + "/invocations", data=body, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def close(self) -> None:
        _docker.remove(self.running)


def payloads(model: Path) -> dict[str, tuple[bytes, str]]:
    """The serving example in each format MLflow's protocol accepts for a DataFrame."""
    doc = json.loads((model / "serving_input_example.json").read_text())
    split = doc["dataframe_split"]
    params = {"params": doc["params"]} if "params" in doc else {}
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(split["columns"])
    writer.writerows(split["data"])
    formats = {
        "dataframe_split": (json.dumps(doc).encode(), "application/json"),
        "dataframe_records": (
            json.dumps({"dataframe_records": records, **params}).encode(),
            "application/json",
        ),
        "instances": (json.dumps({"instances": records, **params}).encode(), "application/json"),
        "inputs": (
            json.dumps(
                {"inputs": {c: [r[c] for r in records] for c in split["columns"]}, **params}
            ).encode(),
            "application/json",
        ),
    }
    if not params:  # CSV carries no params
        formats["csv"] = (out.getvalue().encode(), "text/csv")
    return formats


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    model = truth_model(tmp_path_factory.mktemp("credit") / "sklearn-credit", "sklearn-credit")
    result = build(model, "envbuild-test-credit:1")
    yield model, result


@pytest.fixture(scope="module")
def pyfunc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    model = truth_model(tmp_path_factory.mktemp("pyfunc") / "pyfunc-custom", "pyfunc-custom")
    result = build(model, "envbuild-test-pyfunc:1")
    yield model, result


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("which", ["credit", "pyfunc"])
def test_image_answers_like_the_trained_model(which: str, request: pytest.FixtureRequest) -> None:
    model, result = request.getfixturevalue(which)
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    labels = _docker.inspect(_docker.client(), result["image"]["id"]).labels
    mlmodel = (model / "MLmodel").read_text()
    assert labels["io.envbuild.model.uuid"] in mlmodel
    assert labels["io.envbuild.lock.sha256"] == result["plan"]["lock_sha256"]
    expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
    server = Server(result["image"]["id"])
    try:
        for fmt, (body, ctype) in payloads(model).items():
            status, doc = server.post(body, ctype)
            assert status == 200, (fmt, doc)
            assert compare(expected, doc["predictions"]) is None, (fmt, doc)
        status, doc = server.post(
            b'{"dataframe_split": {"columns": ["nope"], "data": [[1]]}}', "application/json"
        )
        assert 400 <= status < 500
    finally:
        server.close()


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_image_runs_as_non_root_with_healthcheck(credit: tuple[Path, dict[str, Any]]) -> None:
    attrs = _docker.client().api.inspect_image(credit[1]["image"]["id"])
    assert attrs["Config"]["User"] == "10001:10001"
    assert "/ping" in " ".join(attrs["Config"]["Healthcheck"]["Test"])
    assert credit[1]["image"]["size"] < 900_000_000


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_built_image_under_200_concurrent_connections(
    credit: tuple[Path, dict[str, Any]],
) -> None:
    """benchmarks/load_test.py from a second process on loopback against the built image:
    200 concurrent keep-alive connections, 2,000 requests, every response compared with
    the stored predictions; nothing may fail or go unsent. (bench_image.py runs the same
    load against MLflow's image for the comparison.)"""
    model, result = credit
    server = Server(result["image"]["id"])
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "load_test.py"), server.base + "/invocations",
             "--payload", str(model / "serving_input_example.json"),
             "--expect", str(model / "expected_predictions.json"),
             "--concurrency", "200", "--requests", "2000", "--max-seconds", "240", "--json"],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        report = json.loads(done.stdout)
        print(json.dumps(report, indent=1))  # the numbers, with pytest -s
        assert done.returncode == 0, (report, _docker.logs_tail(server.running))
        assert report["ok"] == 2000 and report["errors"] == 0 and report["not_sent"] == 0
        assert report["statuses"] == {"200": 2000}
    finally:
        server.close()


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_another_python_builds_on_its_own_base(tmp_path: Path) -> None:
    """--python-version 3.12 for a model trained on 3.11: the lock is resolved for 3.12,
    the base is the local python:3.12-slim (../shared/tools/docker-engine --python 3.12),
    the venv in the image runs 3.12, and the stored predictions come back."""
    model = truth_model(tmp_path / "sklearn-credit", "sklearn-credit")
    result = build(model, "envbuild-test-credit:py312", "--python-version", "3.12")
    assert result["plan"]["base_image"] == "python:3.12-slim"
    assert result["plan"]["python_version"] == "3.12"
    assert result["plan"]["labels"]["io.envbuild.python"] == "3.12"
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/opt/envbuild/venv/bin/python",
         result["image"]["id"], "-c", "import sys, sklearn; print(sys.version_info[:2], sklearn.__version__)"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    assert out == "(3, 12) 1.9.1", out


def mlflow1_requests(model: Path) -> dict[str, tuple[bytes, str]]:
    """An MLflow 1.x input example (pandas split JSON) in the request forms MLflow 1.30's
    scoring server took (its CONTENT_TYPE_* constants), all answered without a wrapper."""
    split = json.loads((model / "input_example.json").read_text())
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    as_split, as_records = json.dumps(split).encode(), json.dumps(records).encode()
    return {
        "split": (as_split, "application/json"),
        "records": (as_records, "application/json"),
        "format=pandas-split": (as_split, "application/json; format=pandas-split"),
        "format=pandas-records": (as_records, "application/json; format=pandas-records"),
        "numpy-split": (as_split, "application/json-numpy-split"),
    }


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.8", "3.7"])
def test_mlflow1_model_image_answers_mlflow1_and_mlflow2_clients(
    tmp_path: Path, python: str
) -> None:
    """A model MLflow 1.30.1 wrote on Python 3.8 and on 3.7 (issue #14): the image runs
    that MLflow on that Python's local base (../shared/tools/docker-engine --python 3.7),
    its smoke test matches the stored predictions, and a running container answers 1.x
    clients as 1.x did (the bare predictions) and 2.x clients with the wrapper."""
    import shutil

    name = f"mlflow1.30.1-py{python}-sklearn-pickle"
    model = tmp_path / name
    shutil.copytree(ROOT / "tests" / "corpus" / "models" / name, model)
    tag = f"envbuild-test-mlflow1:py{python}"
    result = build(model, tag)
    assert result["plan"]["base_image"] == f"python:{python}-slim"
    assert result["smoke"]["proof"] == "matched stored predictions"
    expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
    server = Server(result["image"]["id"])
    try:
        with urllib.request.urlopen(server.base + "/version", timeout=10) as r:
            assert r.read() == b"1.30.1"
        with urllib.request.urlopen(server.base + "/openapi.json", timeout=10) as r:
            api = json.loads(r.read())
        validate_openapi(api)
        post = api["paths"]["/invocations"]["post"]
        answer = {**post["responses"]["200"]["content"]["application/json"]["schema"], **api}
        for form, (body, ctype) in mlflow1_requests(model).items():
            status, doc = server.post(body, ctype)
            assert status == 200 and compare(expected, doc) is None, (form, doc)
            # the document describes the body and its bare answer (/openapi.json, 1.x forms)
            request = post["requestBody"]["content"][ctype]["schema"]
            jsonschema.validate(json.loads(body), {**request, **api})
            jsonschema.validate(doc, answer)
        split = json.loads((model / "input_example.json").read_text())
        status, doc = server.post(
            json.dumps({"dataframe_split": split}).encode(), "application/json"
        )
        assert status == 200 and doc == {"predictions": expected}, doc
    finally:
        server.close()
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_bytecode_for_the_model_libraries_and_the_imported_runtime(
    credit: tuple[Path, dict[str, Any]],
) -> None:
    """scikit-learn (the model's) is compiled in full; of MLflow (the serving runtime) only
    what the server's imports load: mlflow.pyfunc has bytecode, mlflow.server (the tracking
    server, never imported to serve) has none; the build helper is gone."""
    script = (
        "import pathlib, sysconfig; sp = pathlib.Path(sysconfig.get_paths()['purelib']);"
        "py = lambda d: sorted(p.stem for p in (sp / d).glob('*.py'));"
        "pyc = lambda d: sorted(p.name.split('.')[0] for p in (sp / d / '__pycache__').glob('*.pyc'));"
        "print(py('sklearn') == pyc('sklearn'), py('sklearn/ensemble') == pyc('sklearn/ensemble'),"
        " '__init__' in pyc('mlflow/pyfunc'), pyc('mlflow/server'), pyc('mlflow/sklearn'),"
        " pathlib.Path('/opt/envbuild/bytecode.py').exists())"
    )
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/opt/envbuild/venv/bin/python",
         credit[1]["image"]["id"], "-c", script],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    assert out == "True True True [] ['__init__'] False", out


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_weights_only_change_reuses_the_dependency_layer(
    credit: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    model, first = credit
    changed = tmp_path / "sklearn-credit"
    shutil.copytree(model, changed)
    weights = changed / "model.skops"
    weights.write_bytes(weights.read_bytes() + b"\0")  # new bytes, same size class
    second = build(changed, "envbuild-test-credit:2", "--no-smoke")
    c = _docker.client()
    # --no-smoke: tagged at once, and the result says the image was not proven
    assert second["image"]["proven"] is False and "smoke" not in second
    assert _docker.image_id(c, "envbuild-test-credit:2") == second["image"]["id"]

    def install_step(image: str) -> str:
        history = _docker.history(c, image)
        return next(str(h["Id"]) for h in history if "uv pip install" in h["CreatedBy"])

    # the dependency install step is the same cached image in both builds
    assert install_step(first["image"]["id"]) == install_step(second["image"]["id"])
    a = _docker.inspect(c, first["image"]["id"]).layers
    b = _docker.inspect(c, second["image"]["id"]).layers
    base = len(_docker.inspect(c, "python:3.11-slim").layers)
    assert a[: base + 2] == b[: base + 2]  # base, lock, installed venv
    assert a[-1] != b[-1]  # the model's files
    # how long that rebuild takes is benchmarks/bench_image.py's "rebuild s"


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_without_example_the_image_predicts_on_its_signature(
    pyfunc: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """pyfunc-custom logged without an input example (same environment: the dependency
    layer is the cached one): the proof posts one row made from the signature, with the
    param at its default, in the sandboxed container."""
    import shutil

    import yaml

    model, _ = pyfunc
    bare = tmp_path / "pyfunc-custom"
    shutil.copytree(model, bare)
    doc = yaml.safe_load((bare / "MLmodel").read_text())
    del doc["saved_input_example_info"]
    (bare / "MLmodel").write_text(yaml.safe_dump(doc))
    for name in ("input_example.json", "serving_input_example.json", "expected_predictions.json"):
        (bare / name).unlink(missing_ok=True)
    try:
        result = build(bare, "envbuild-test-pyfunc:noexample")
        smoke = result["smoke"]
        assert smoke["proof"] == "predicted on a synthesized payload" and not smoke["compared"]
        assert smoke["synthesized"]["params"] == {"threshold": 0.5}
        assert smoke["sandbox"]["network"] == "none" and result["image"]["proven"]
    finally:
        subprocess.run(["docker", "rmi", "-f", "envbuild-test-pyfunc:noexample"],
                       capture_output=True, check=False)  # fmt: skip


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_wheelhouse_builds_without_network(pyfunc: tuple[Path, dict[str, Any]]) -> None:
    model, _ = pyfunc
    result = build(model, "envbuild-test-pyfunc:wheelhouse", "--wheelhouse", "--network", "none")
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    assert any(p.startswith(".envbuild/wheels/") for p in result["plan"]["files"])


@pytest.mark.network
def test_output_writes_the_context_without_docker(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    done = run_envbuild(
        "image", str(EXAMPLES / "pyfunc-custom"), "--output", str(out),
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "Dockerfile").read_text().startswith("# Generated by envbuild")
    assert (out / "model" / "MLmodel").is_file()
    assert (out / ".envbuild" / "requirements.lock").is_file()
    again = tmp_path / "first"
    out.rename(again)  # same inputs (the same command line) give the same bytes
    done = run_envbuild("image", str(EXAMPLES / "pyfunc-custom"), "--output", str(out),
                    env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    for p in sorted(out.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (again / p.relative_to(out)).read_bytes(), p


def test_no_docker_daemon_exits_3() -> None:
    done = run_envbuild(
        "image", str(EXAMPLES / "pyfunc-custom"), "-t", "x",
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )  # fmt: skip
    assert done.returncode == 3
    assert "EB901" in done.stderr and "no Docker engine" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


SANDBOX_FLAGS = (
    "--read-only", "--cap-drop", "ALL", "--network", "none", "--user", "12345:0",
    "--security-opt", "no-new-privileges",
)  # fmt: skip


def smoke_containers() -> list[str]:
    """Every container (running or not) that envbuild's smoke test started, but those of
    arm64 images: tests/integration/test_arm64.py may be proving one on another worker."""

    done = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=io.envbuild.smoke",
         "--format", '{{.ID}} {{.Label "io.envbuild.platform"}}'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [[*line.split(), ""] for line in done.stdout.splitlines() if line.strip()]
    return [row[0] for row in rows if row[1] != "linux/arm64"]


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("which", ["credit", "pyfunc"])
def test_built_image_answers_read_only_without_network_as_any_uid(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The built image, run by the test itself read-only, with no capabilities, no
    network, no privilege gain, no writable path at all (not even a tmpfs) and a uid it
    has never heard of in group 0, answers the stored predictions (asked through docker
    exec: there is no network to publish a port on)."""
    model, result = request.getfixturevalue(which)
    name = f"envbuild-test-h3-ro-{which}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, *SANDBOX_FLAGS, result["image"]["id"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    client = (
        "import sys, time, urllib.request\n"
        "body = sys.stdin.buffer.read()\n"
        "for _ in range(600):\n"
        "    try: urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2); break\n"
        "    except OSError: time.sleep(0.1)\n"
        "req = urllib.request.Request('http://127.0.0.1:8080/invocations', data=body,"
        " headers={'Content-Type': 'application/json'})\n"
        "sys.stdout.write(urllib.request.urlopen(req, timeout=60).read().decode())\n"
    )
    try:
        done = subprocess.run(
            ["docker", "exec", "-i", name, "/opt/envbuild/venv/bin/python", "-I", "-c", client],
            input=(model / "serving_input_example.json").read_bytes(),
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
        assert done.returncode == 0, (done.stderr.decode()[-2000:], logs[-2000:])
        expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
        assert compare(expected, json.loads(done.stdout)["predictions"]) is None
        attrs = json.loads(
            subprocess.run(["docker", "inspect", name], capture_output=True, check=True).stdout
        )[0]
        assert attrs["State"]["Running"] and attrs["HostConfig"]["ReadonlyRootfs"]
        assert attrs["Config"]["User"] == "12345:0" and attrs["HostConfig"]["CapDrop"] == ["ALL"]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_the_smoke_container_was_sandboxed(credit: tuple[Path, dict[str, Any]]) -> None:
    """What confined the module's own smoke run, as the engine's HostConfig reported it
    while the container ran (the result records it, not what was asked for)."""
    smoke = credit[1]["smoke"]
    box = smoke["sandbox"]
    uid, gid = box["user"].split(":")
    assert 100000 <= int(uid) <= 199999 and gid == "0"
    assert box["network"] == "none" and box["published_ports"] == [] and box["mounts"] == []
    assert box["read_only"] is True and list(box["tmpfs"]) == ["/tmp"]
    assert "size=" in box["tmpfs"]["/tmp"]
    assert box["cap_drop"] == ["ALL"] and box["security_opt"] == ["no-new-privileges"]
    assert box["pids_limit"] == 256 and box["memory"] >= 2 * 1024**3
    assert credit[1]["image"]["tags"] == ["envbuild-test-credit:1"]
    assert credit[1]["image"]["proven"] is True
    assert smoke["seconds_to_health"] > 0


@pytest.mark.docker
def test_a_container_that_exits_fails_the_smoke_test(tmp_path: Path) -> None:
    """No build needed: python:3.11-slim's REPL exits at once without a terminal, so the
    proof sees a crash, names it, and removes the container."""
    folder = read_model(EXAMPLES / "pyfunc-custom")
    before = set(smoke_containers())
    with pytest.raises(FailedError) as err:
        smoke_image("python:3.11-slim", folder, timeout=30)
    assert err.value.code == "EB802"
    assert "the container exited" in err.value.message
    assert set(smoke_containers()) <= before


def _image_named(name: str) -> str | None:
    return _docker.image_id(_docker.client(), name)


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_a_failed_proof_leaves_no_tag(
    pyfunc: tuple[Path, dict[str, Any]],
    credit: tuple[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """The pyfunc model with a wrong stored prediction (its dependency layers come from
    the module's build): exit 1 with EB802; the new name is never created, a name that
    already pointed at an image still points at it, the failed image and its container
    are gone; with --keep-failed it stays only as NAME:TAG-failed."""
    import shutil

    bad = tmp_path / "pyfunc-custom"
    shutil.copytree(pyfunc[0], bad)
    expected = json.loads((bad / "expected_predictions.json").read_text())
    expected["predictions"][0]["label"] = "no_default"  # the model says "default"
    (bad / "expected_predictions.json").write_text(json.dumps(expected))
    fresh, previous = "envbuild-test-h3-fresh:1", "envbuild-test-h3-previous:1"
    old_id = credit[1]["image"]["id"]
    c = _docker.client()
    _docker.add_tag(c, old_id, previous)
    before = set(smoke_containers())
    try:
        done = run_envbuild("image", str(bad), "-t", fresh, "-t", previous, "--format", "json")
        assert done.returncode == 1, done.stderr[-3000:]
        error = json.loads(done.stdout)["error"]
        assert error["code"] == "EB802" and "predictions differ" in error["message"]
        assert "was removed" in error["message"], error["message"]
        short = error["message"].split("the image (")[1].split(")")[0]
        assert _image_named(short) is None  # the unproven image is gone
        assert _image_named(fresh) is None
        assert _image_named(previous) == old_id
        assert set(smoke_containers()) <= before

        done = run_envbuild("image", str(bad), "-t", fresh, "--keep-failed")
        assert done.returncode == 1 and "EB802" in done.stderr
        kept = "envbuild-test-h3-fresh:1-failed"
        assert f"kept as {kept}" in done.stderr
        assert _image_named(fresh) is None
        kept_id = _image_named(kept)
        assert kept_id is not None
        labels = _docker.inspect(c, kept_id).labels
        assert labels["io.envbuild.model.uuid"] in (bad / "MLmodel").read_text()
        assert set(smoke_containers()) <= before
    finally:
        for name in ("envbuild-test-h3-fresh:1-failed", previous):
            subprocess.run(["docker", "rmi", name], capture_output=True, check=False)
    assert _image_named(old_id) == old_id  # untagging "previous" left the module's image


@pytest.mark.network
def test_the_command_line_in_the_dockerfile_is_canonical() -> None:
    """The header and the io.envbuild.command label name the parameters in one order and
    spelling, so reordered flags give the same bytes (no Docker needed: --no-build)."""
    model = str(EXAMPLES / "pyfunc-custom")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    first = run_envbuild(
        "image", model, "--no-build", "-t", "envbuild-test-h3-x:1", "--network", "none",
        "--base-image", "python:3.11-slim", "--platform", "linux/amd64", env=env,
    )  # fmt: skip
    second = run_envbuild(
        "image", "--platform=linux/amd64", "--base-image", "python:3.11-slim", model,
        "--network=none", "--tag", "envbuild-test-h3-x:1", "--no-build", env=env,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    canonical = (
        "envbuild image pyfunc-custom -t envbuild-test-h3-x:1 --python-version 3.11 "
        "--platform linux/amd64 --base-image python:3.11-slim --network none"
    )
    assert first.stdout.splitlines()[0] == f"# Generated by envbuild 0.1.0: {canonical}"
    assert f'io.envbuild.command="{canonical}"' in first.stdout
