"""V2, /metrics and adaptive batching on real models: the server (copied as the builder
copies it) in a uv venv per model, asked through Triton's client (tritonclient[http]) for
the stored predictions; concurrent requests, merged into shared model calls, get exactly the
answers each gets alone; /metrics parses with prometheus_client and counts what was sent.

Models: examples/sklearn-credit (columns, skops) and two corpus models written by MLflow
3.17.2 that batch: LightGBM (columns) and ONNX (a float32 tensor, two named outputs).
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families
from uv import find_uv_bin

from envbuild import serving
from tests.helpers import EXAMPLES, ROOT
from tests.integration.test_serve import Running, stage_server, start_server, truth

CORPUS = ROOT / "tests" / "corpus" / "models"
MODELS = {
    "sklearn-credit": EXAMPLES / "sklearn-credit",
    "lightgbm": CORPUS / "mlflow3.17.2-py3.11-lightgbm",
    "onnx": CORPUS / "mlflow3.17.2-py3.11-onnx",
}

pytestmark = [pytest.mark.venv, pytest.mark.network, pytest.mark.slow]


def environment(model: Path, root: Path) -> dict[str, Path]:
    """A venv with the serving stack and the model's requirements.txt pins."""
    venv = root / "venv"
    uv = find_uv_bin()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    if model.parent == EXAMPLES:  # an example: the environment its manifest measured
        pins = [f"{dist}=={version}" for dist, version in sorted(truth(model.name).items())]
    else:
        pins = [line.strip() for line in (model / "requirements.txt").read_text().splitlines()]
    mlflow = next(p.split("==")[1] for p in pins if p.startswith("mlflow=="))
    reqs = [r.raw for r in serving.serving_requirements(mlflow)]
    reqs += [p for p in pins if p and not p.startswith(("mlflow==", "mlflow-tracing"))]
    done = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *reqs],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return {"python": venv / "bin" / "python", "path": stage_server(root / "server")}


@pytest.fixture(scope="module", params=list(MODELS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Running]]:
    """One worker, one prediction slot, batching on: concurrent requests must queue."""
    name = request.param
    root = tmp_path_factory.mktemp(f"v2-{name}")
    env = environment(MODELS[name], root)
    server = start_server(
        env, MODELS[name], root / "log", ENVBUILD_WORKERS="1", ENVBUILD_THREADS="1",
        ENVBUILD_BATCH="1", ENVBUILD_ACCESS_LOG="0",
    )  # fmt: skip
    yield name, server
    assert server.stop() == 0, server.text()[-3000:]


def stored(name: str) -> tuple[dict[str, Any], Any]:
    model = MODELS[name]
    payload = json.loads((model / "serving_input_example.json").read_text())
    return payload, json.loads((model / "expected_predictions.json").read_text())["predictions"]


def v2_inputs(client: triton.InferenceServerClient, payload: dict[str, Any]) -> list[Any]:
    """The stored example as V2 tensors, typed by the server's metadata."""
    meta = client.get_model_metadata("model")
    inputs = []
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        specs = {s["name"]: s for s in meta["inputs"]}
        for i, column in enumerate(split["columns"]):
            datatype = specs[column]["datatype"]
            values = [row[i] for row in split["data"]]
            dtype = object if datatype == "BYTES" else triton.triton_to_np_dtype(datatype)
            tensor = triton.InferInput(column, [len(values)], datatype)
            tensor.set_data_from_numpy(np.array(values, dtype=dtype), binary_data=i % 2 == 0)
            inputs.append(tensor)
        return inputs
    (spec,) = meta["inputs"]
    arr = np.array(payload["inputs"], dtype=triton.triton_to_np_dtype(spec["datatype"]))
    tensor = triton.InferInput(spec["name"], list(arr.shape), spec["datatype"])
    tensor.set_data_from_numpy(arr)
    return [tensor]


def test_v2_infer_answers_the_stored_predictions(served: tuple[str, Running]) -> None:
    name, server = served
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("model")
    payload, expected = stored(name)
    result = client.infer("model", v2_inputs(client, payload))
    if isinstance(expected, dict):  # named outputs (ONNX: label, probabilities)
        for key, value in expected.items():
            np.testing.assert_allclose(result.as_numpy(key), np.array(value), rtol=1e-6)
    else:
        out = result.get_response()["outputs"]
        assert len(out) == 1
        np.testing.assert_allclose(result.as_numpy(out[0]["name"]), np.array(expected), rtol=1e-12)
    client.close()


def _subsets(payload: dict[str, Any]) -> list[bytes]:
    """Thirty-two different requests: rotations and repeats of the stored rows."""
    key = "dataframe_split" if "dataframe_split" in payload else "inputs"
    rows = payload[key]["data"] if key == "dataframe_split" else payload[key]
    bodies = []
    for i in range(32):
        chosen = [rows[(i + j) % len(rows)] for j in range(1 + i % len(rows))]
        if key == "dataframe_split":
            doc: dict[str, Any] = {key: {"columns": payload[key]["columns"], "data": chosen}}
        else:
            doc = {key: chosen}
        bodies.append(json.dumps(doc).encode())
    return bodies


def _post(server: Running, body: bytes) -> bytes:
    req = urllib.request.Request(
        server.url + "/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        return bytes(r.read())


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, labels) -> value


def metrics(server: Running) -> Metrics:
    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def together_as_alone(
    server: Running, bodies: list[bytes], send: Any
) -> tuple[Metrics, Metrics, float, float]:
    """Each body sent alone, then all of them at once three times: every concurrent answer
    must equal, byte for byte, its answer alone. Returns /metrics before and after the
    concurrent rounds, the requests the batcher ran in them and its model calls."""
    alone = [send(server, b) for b in bodies]  # one at a time: nothing queues, no merge
    before = metrics(server)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        for _ in range(3):
            assert list(pool.map(lambda b: send(server, b), bodies)) == alone
    after = metrics(server)
    calls = (
        after[("envbuild_batch_requests_count", ())] - before[("envbuild_batch_requests_count", ())]
    )
    merged = (
        after[("envbuild_batch_requests_sum", ())] - before[("envbuild_batch_requests_sum", ())]
    )
    return before, after, merged, calls


def test_batched_answers_equal_the_answers_alone(served: tuple[str, Running]) -> None:
    name, server = served
    bodies = _subsets(stored(name)[0])
    before, after, merged, calls = together_as_alone(server, bodies, _post)
    assert merged == 3 * len(bodies)
    assert calls < merged, "no request was merged with another"
    print(f"{name}: {merged:g} requests in {calls:g} model calls")
    ok = ("envbuild_requests_total", (("route", "/invocations"), ("status", "200")))
    assert after[ok] - before[ok] == 3 * len(bodies)
    count = ("envbuild_request_duration_seconds_count", (("route", "/invocations"),))
    assert after[count] >= after[ok]
    assert after[("envbuild_model_load_seconds", ())] > 0


def _v2_bodies(server: Running, payload: dict[str, Any]) -> list[bytes]:
    """_subsets' thirty-two requests as V2 JSON, each input typed by the model's metadata."""
    with urllib.request.urlopen(server.url + "/v2/models/model", timeout=30) as r:
        specs = {s["name"]: s for s in json.loads(r.read())["inputs"]}
    bodies = []
    for body in _subsets(payload):
        doc = json.loads(body)
        if "dataframe_split" in doc:
            split = doc["dataframe_split"]
            inputs = [
                {"name": c, "shape": [len(split["data"])], "datatype": specs[c]["datatype"],
                 "data": [row[i] for row in split["data"]]}
                for i, c in enumerate(split["columns"])
            ]  # fmt: skip
        else:
            ((name, spec),) = specs.items()
            rows = doc["inputs"]
            flat = [x for row in rows for x in row]
            inputs = [{"name": name, "shape": [len(rows), len(rows[0])],
                       "datatype": spec["datatype"], "data": flat}]  # fmt: skip
        bodies.append(json.dumps({"inputs": inputs}).encode())
    return bodies


def _infer(server: Running, body: bytes) -> bytes:
    req = urllib.request.Request(
        server.url + "/v2/models/model/infer", data=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        return bytes(r.read())


def test_batched_v2_answers_equal_the_answers_alone(served: tuple[str, Running]) -> None:
    """V2 requests merged into shared model calls (a column model's columns concatenated
    before its DataFrame is made) get byte for byte the answers each gets alone."""
    name, server = served
    bodies = _v2_bodies(server, stored(name)[0])
    _, _, merged, calls = together_as_alone(server, bodies, _infer)
    assert merged == 3 * len(bodies)
    assert calls < merged, "no V2 request was merged with another"
    print(f"{name} (V2): {merged:g} requests in {calls:g} model calls")
