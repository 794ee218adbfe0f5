"""A built image speaks V2 and /metrics: `envbuild image` of examples/sklearn-credit (its
measured environment), run with Docker, asked through Triton's client (tritonclient[http])
for the stored predictions; /metrics parses with prometheus_client and counts them; under
200 concurrent connections on /invocations (batching on, every answer checked) nothing
fails or goes unsent."""

from __future__ import annotations

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

from envbuild._adapters import docker as _docker
from tests.helpers import ROOT
from tests.integration.test_image import Server, build, truth_model

TAG = "envbuild-test-v2-credit:1"

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    model = truth_model(tmp_path_factory.mktemp("v2") / "sklearn-credit", "sklearn-credit")
    result = build(model, TAG)
    yield model, result
    _docker.remove_image(_docker.client(), TAG)


def test_tritonclient_gets_the_stored_predictions_and_metrics_count_them(
    image: tuple[Path, dict[str, Any]],
) -> None:
    model, result = image
    split = json.loads((model / "serving_input_example.json").read_text())["dataframe_split"]
    expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
    server = Server(result["image"]["id"])
    try:
        client = triton.InferenceServerClient(server.base.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("model")
        meta = client.get_model_metadata("model")
        assert [i["name"] for i in meta["inputs"]] == split["columns"]
        assert meta["outputs"] == [{"name": "predictions", "datatype": "INT64", "shape": [-1]}]
        inputs = []
        for i, spec in enumerate(meta["inputs"]):
            values = [row[i] for row in split["data"]]
            dtype = object if spec["datatype"] == "BYTES" else triton.triton_to_np_dtype(spec["datatype"])  # fmt: skip
            tensor = triton.InferInput(spec["name"], [len(values)], spec["datatype"])
            tensor.set_data_from_numpy(np.array(values, dtype=dtype))
            inputs.append(tensor)
        for _ in range(3):
            assert client.infer("model", inputs).as_numpy("predictions").tolist() == expected
        client.close()
        with urllib.request.urlopen(server.base + "/metrics", timeout=30) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }
        infer = (("route", "/v2/models/{name}/infer"), ("status", "200"))
        assert samples[("envbuild_requests_total", infer)] == 3
        assert samples[("envbuild_model_load_seconds", ())] > 0
    finally:
        server.close()


def test_200_connections_with_batching_lose_nothing(image: tuple[Path, dict[str, Any]]) -> None:
    model, result = image
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
        assert done.returncode == 0, (report, _docker.logs_tail(server.running))
        assert report["ok"] == 2000 and report["errors"] == 0 and report["not_sent"] == 0
        with urllib.request.urlopen(server.base + "/metrics", timeout=30) as r:
            text = r.read().decode()
        batches = {
            s.name: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name.startswith("envbuild_batch_requests_")
        }
        print(batches)
        assert batches["envbuild_batch_requests_sum"] == 2000
        assert batches["envbuild_batch_requests_count"] < 2000  # requests were merged
    finally:
        server.close()
