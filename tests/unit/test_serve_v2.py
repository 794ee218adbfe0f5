"""The server's V2 routes, /metrics and adaptive batching, in-process with stand-in models
(an identity model: what it is given comes back, so every decoding and encoding path is
visible), spoken to by Triton's own client (tritonclient[http]) and read by
prometheus_client's parser; the batcher with a model whose first call is held, so
queueing is certain without timing. Real models: tests/integration/test_serve_v2.py."""

# ruff: noqa: F811  (the tests take test_serve's `running` fixture, imported below)
from __future__ import annotations

import concurrent.futures
import socket
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families

from envbuild.serve import batching, v2
from envbuild.serve.config import ConfigError, load_config
from envbuild.serve.protocol import RequestError
from tests.unit.test_serve import StandIn, call, conn, running  # noqa: F401


class Identity(StandIn):
    """A model without a signature that answers with its input, as MLflow would serve it."""

    input_schema = None
    params_schema = None

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def signature_dict(self) -> Any:
        return None

    def predict(self, data: Any, params: Any) -> Any:
        self.calls.append(len(data))
        return data


def client(server: Any) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.server_address[1]}")


# -- the race at a stop ----------------------------------------------------------------------


def test_a_connection_accepted_before_the_stop_gets_its_request_answered(running: Any) -> None:
    """A connection the server accepted, set up and has not read from yet when the stop
    begins: its request, sent after begin_stop, is answered (once, with Connection: close).
    It was marked idle at setup and shut down unread. The test waits for the handler to
    register the connection (an event), not for time to pass."""
    server = running()
    registered = threading.Event()
    mark = server.mark

    def spy(sock: socket.socket, idle: bool | None) -> None:
        mark(sock, idle)
        if idle is not None:
            registered.set()

    server.mark = spy
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as s:
        assert registered.wait(10)  # accepted and set up; nothing sent yet
        server.begin_stop()
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert b"\r\nConnection: close\r\n" in reply and reply.endswith(b"\r\n\r\n\n")
    assert server.close(5) is True


# -- V2 through Triton's client ----------------------------------------------------------------


def test_v2_health_metadata_and_infer_with_tritonclient(running: Any) -> None:
    server = running(Identity())
    c = client(server)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("model")
    assert not c.is_model_ready("other")
    assert c.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = c.get_model_metadata("model")
    assert meta["name"] == "model" and meta["versions"] == ["cafe"] and meta["inputs"] == []
    assert c.is_model_ready("model", "cafe") and not c.is_model_ready("model", "2")
    columns: dict[str, Any] = {
        "n": np.array([1, -2, 3], dtype=np.int64),
        "x": np.array([0.5, 1.25, -3.0], dtype=np.float32),
        "s": np.array(["a", "bé", ""], dtype=object),
        "b": np.array([True, False, True]),
    }
    types = {"n": "INT64", "x": "FP32", "s": "BYTES", "b": "BOOL"}
    for binary in (True, False):
        inputs = []
        for name, arr in columns.items():
            tensor = triton.InferInput(name, [3], types[name])
            tensor.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(tensor)
        for outputs in (None, [triton.InferRequestedOutput("s", binary_data=binary)]):
            result = c.infer("model", inputs, outputs=outputs, request_id="r1")
            response = result.get_response()
            assert response["id"] == "r1" and response["model_version"] == "cafe"
            names = list(columns) if outputs is None else ["s"]
            assert [o["name"] for o in response["outputs"]] == names
            for name in names:
                got = result.as_numpy(name)
                want = columns[name]
                if types[name] == "BYTES":
                    # binary BYTES come back as bytes (all, when no output is named), JSON as str
                    as_bytes = binary or outputs is None
                    assert [x.decode() if as_bytes else x for x in got] == list(want)
                else:
                    assert got.dtype == want.dtype and got.tolist() == want.tolist()
    c.close()


def test_v2_errors_are_json_with_the_reason(running: Any) -> None:
    server = running(Identity())
    c = conn(server)
    status, _, body = call(c, "POST", "/v2/models/other/infer", b"{}")
    assert status == 404 and b"this server serves 'model'" in body
    status, _, body = call(c, "POST", "/v2/models/model/infer", b'{"inputs": []}')
    assert status == 400 and b"non-empty 'inputs'" in body
    bad_shape = b'{"inputs": [{"name": "a", "shape": [2], "datatype": "INT64", "data": [1]}]}'
    status, _, body = call(c, "POST", "/v2/models/model/infer", bad_shape)
    assert status == 400 and b"input 'a'" in body
    status, headers, _ = call(c, "GET", "/v2/models/model/infer")
    assert status == 405 and headers["allow"] == "POST"
    status, _, body = call(c, "GET", "/v2/models/model/versions/9")
    assert status == 404 and b"no version '9'" in body
    c.close()


def test_v2_metadata_from_column_and_tensor_signatures() -> None:
    cols = [{"type": "long", "name": "a"}, {"type": "string", "name": "b"}]
    assert v2.tensor_metadata(cols, "input") == [
        {"name": "a", "datatype": "INT64", "shape": [-1]},
        {"name": "b", "datatype": "BYTES", "shape": [-1]},
    ]
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 8]}}]
    assert v2.tensor_metadata(tensor, "input") == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 8]}
    ]


# -- /metrics ------------------------------------------------------------------------------


def families(server: Any) -> dict[str, Any]:
    c = conn(server)
    status, headers, body = call(c, "GET", "/metrics")
    c.close()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample(fams: dict[str, Any], family: str, name: str, **labels: str) -> float:
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no {name} {labels}")


def test_metrics_count_requests_by_route_and_status_with_latency(running: Any) -> None:
    server = running()
    server.app.metrics.load_seconds = 1.5
    c = conn(server)
    for _ in range(3):
        assert call(c, "POST", "/invocations", b'{"a": 1}')[0] == 200
    assert call(c, "POST", "/invocations", b"{")[0] == 400
    assert call(c, "GET", "/nope")[0] == 404
    assert call(c, "GET", "/ping")[0] == 200
    c.close()
    fams = families(server)
    total = "envbuild_requests"
    assert sample(fams, total, total + "_total", route="/invocations", status="200") == 3
    assert sample(fams, total, total + "_total", route="/invocations", status="400") == 1
    assert sample(fams, total, total + "_total", route="other", status="404") == 1
    lat = "envbuild_request_duration_seconds"
    assert sample(fams, lat, lat + "_count", route="/invocations") == 4
    assert sample(fams, lat, lat + "_bucket", route="/invocations", le="+Inf") == 4
    assert 0 < sample(fams, lat, lat + "_sum", route="/invocations") < 10
    # the /metrics request itself is the one in flight
    gauge = "envbuild_requests_in_flight"
    assert sample(fams, gauge, gauge, route="/metrics") == 1
    assert sample(fams, gauge, gauge, route="/invocations") == 0
    assert sample(fams, "envbuild_model_load_seconds", "envbuild_model_load_seconds") == 1.5


def test_metrics_rows_of_every_worker_are_summed() -> None:
    from envbuild.serve.metrics import Metrics

    m = Metrics(3)
    for slot in (0, 2):
        m.use_slot(slot)
        m.finished("/invocations", 200, 0.003, in_flight=False)
        m.batch(4, 20)
    fams = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    total = "envbuild_requests"
    assert sample(fams, total, total + "_total", route="/invocations", status="200") == 2
    assert sample(fams, "envbuild_batch_requests", "envbuild_batch_requests_sum") == 8
    assert sample(fams, "envbuild_batch_rows", "envbuild_batch_rows_bucket", le="100.0") == 2


# -- batching ------------------------------------------------------------------------------


class Held:
    """predict that blocks its first call until released, recording every call."""

    def __init__(self, fail_when: Any = None) -> None:
        self.release = threading.Event()
        self.first = threading.Event()
        self.calls: list[tuple[int, Any]] = []
        self.fail_when = fail_when

    def __call__(self, data: Any, params: Any) -> Any:
        self.calls.append((len(data), params))
        if not self.first.is_set():
            self.first.set()
            assert self.release.wait(10)
        if self.fail_when is not None and self.fail_when(data):
            raise RequestError(500, "refused", "INTERNAL_ERROR")
        if isinstance(data, pd.DataFrame):
            return data.assign(y=data["a"] * 2)[["y"]]
        return data * 2


def batcher(predict: Any, pool: Any, **kw: Any) -> batching.Batcher:
    return batching.Batcher(predict, pool, slots=1, max_requests=kw.pop("max", 64),
                            max_wait=kw.pop("wait", 0.0))  # fmt: skip


def test_queued_requests_of_one_kind_are_merged_and_split_back() -> None:
    held = Held()
    frames = [pd.DataFrame({"a": list(range(i, i + i + 1))}) for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool)
        first = b.submit(frames[0], None)
        assert held.first.wait(10)  # the only slot is busy: the rest queue
        rest = [b.submit(f, None) for f in frames[1:4]]
        other_params = b.submit(frames[4], {"k": 1})
        other_columns = b.submit(pd.DataFrame({"z": [1.0]}).rename(columns={"z": "a"}), None)
        held.release.set()
        answers = [f.result(10) for f in (first, *rest)]
        assert other_params.result(10)["y"].tolist() == (frames[4]["a"] * 2).tolist()
        assert other_columns.result(10)["y"].tolist() == [2.0]
    for frame, answer in zip(frames[:4], answers, strict=True):
        assert answer["y"].tolist() == (frame["a"] * 2).tolist()
        assert list(answer.index) == list(range(len(frame)))
    # the first alone; the three same-kind ones in one call; the other kinds alone
    assert held.calls == [(1, None), (2 + 3 + 4, None), (5, {"k": 1}), (1, None)]


def test_max_batch_size_and_arrays() -> None:
    held = Held()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool, max=2)
        futures = [b.submit(np.full((1, 3), 1.0, dtype=np.float32), None)]
        assert held.first.wait(10)
        futures += [b.submit(np.full((n, 3), float(n), dtype=np.float32), None) for n in (1, 2, 3)]
        held.release.set()
        results = [f.result(10) for f in futures]
    assert [r.shape for r in results] == [(1, 3), (1, 3), (2, 3), (3, 3)]
    assert [float(r[0, 0]) for r in results] == [2.0, 2.0, 4.0, 6.0]
    assert [n for n, _ in held.calls] == [1, 3, 3]  # at most two requests per call


def test_a_failing_merged_call_answers_each_request_alone() -> None:
    held = Held(fail_when=lambda d: bool((d["a"] < 0).any()))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool)
        first = b.submit(pd.DataFrame({"a": [1]}), None)
        assert held.first.wait(10)
        good = b.submit(pd.DataFrame({"a": [2, 3]}), None)
        bad = b.submit(pd.DataFrame({"a": [-1]}), None)
        held.release.set()
        assert first.result(10)["y"].tolist() == [2]
        assert good.result(10)["y"].tolist() == [4, 6]
        with pytest.raises(RequestError, match="refused"):
            bad.result(10)
    assert [n for n, _ in held.calls] == [1, 3, 2, 1]


class Builds:
    """A Pending's build as the scorer's is (pandas JSON made a DataFrame), counting calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, payload: Any) -> pd.DataFrame:
        if isinstance(payload, dict):
            frame = pd.DataFrame(columns=payload["columns"], data=payload["data"])
        else:
            frame = pd.DataFrame(data=payload)
        self.calls.append(len(frame))
        if (frame["a"] < 0).any():
            raise RequestError(400, "invalid 'dataframe_split' input: a is negative")
        return frame


def pending(build: Builds, orient: str, payload: Any) -> batching.Pending:
    kind = batching.json_kind(orient, payload)
    assert kind is not None
    rows = len(payload["data"]) if orient == "split" else len(payload)
    return batching.Pending(orient, payload, build, kind, rows)


def test_pending_json_of_one_kind_is_parsed_once_per_merged_call() -> None:
    held, build = Held(), Builds()
    split: list[dict[str, Any]] = [
        {"columns": ["a", "b"], "data": [[i, f"s{i}"]] * (1 + i % 2)} for i in range(5)
    ]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool)
        first = b.submit(pending(build, "split", split[0]), None)
        assert held.first.wait(10)
        rest = [b.submit(pending(build, "split", s), None) for s in split[1:]]
        # a float in column a: pandas would infer float64 for it alone, so it is not merged
        floats = b.submit(
            pending(build, "split", {"columns": ["a", "b"], "data": [[1.5, "x"]]}), None
        )
        records = b.submit(
            pending(build, "records", [{"a": 7, "b": "r"}, {"a": 8, "b": "r"}]), None
        )
        held.release.set()
        answers = [f.result(10) for f in (first, *rest)]
        assert floats.result(10)["y"].tolist() == [3.0]
        assert records.result(10)["y"].tolist() == [14, 16]
    for payload, answer in zip(split, answers, strict=True):
        assert answer["y"].tolist() == [row[0] * 2 for row in payload["data"]]
        assert str(answer["y"].dtype) == "int64"
    # one build and one predict for the four queued split requests (1+2+1+2 rows)
    assert build.calls == [1, 6, 1, 2]
    assert [n for n, _ in held.calls] == [1, 6, 1, 2]


def test_a_failing_merged_parse_parses_each_request_alone() -> None:
    held, build = Held(), Builds()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool)
        first = b.submit(pending(build, "split", {"columns": ["a"], "data": [[1]]}), None)
        assert held.first.wait(10)
        good = b.submit(pending(build, "split", {"columns": ["a"], "data": [[2], [3]]}), None)
        bad = b.submit(pending(build, "split", {"columns": ["a"], "data": [[-1]]}), None)
        held.release.set()
        assert first.result(10)["y"].tolist() == [2]
        assert good.result(10)["y"].tolist() == [4, 6]
        with pytest.raises(RequestError, match="a is negative"):
            bad.result(10)
    assert build.calls == [1, 3, 2, 1]  # the merged parse failed: each alone
    assert [n for n, _ in held.calls] == [1, 2]


def test_v2_columns_of_one_kind_make_one_frame_per_merged_call() -> None:
    held, frames = Held(), []

    def build(columns: dict[str, Any]) -> pd.DataFrame:
        frames.append(len(next(iter(columns.values()))))
        return pd.DataFrame(columns)

    def columns(n: int, dtype: str = "int64") -> batching.Pending:
        arrays = {"a": np.arange(n, dtype=dtype), "b": np.full(n, 0.5)}
        kind = batching.columns_kind(arrays)
        assert kind is not None
        return batching.Pending("columns", arrays, build, kind, n)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        b = batcher(held, pool)
        first = b.submit(columns(1), None)
        assert held.first.wait(10)
        rest = [b.submit(columns(n), None) for n in (2, 3)]
        other = b.submit(columns(2, "int32"), None)  # another dtype: its own call
        held.release.set()
        assert first.result(10)["y"].tolist() == [0]
        assert [f.result(10)["y"].tolist() for f in rest] == [[0, 2], [0, 2, 4]]
        assert other.result(10)["y"].tolist() == [0, 2]
    assert frames == [1, 5, 2]
    kind = batching.columns_kind
    # strings (V2 BYTES) merge with strings, not with bytes or a column that holds a None
    text = kind({"s": np.array(["x", "y"], dtype=object)})
    assert text is not None and text == kind({"s": np.array(["z"], dtype=object)})
    assert text != kind({"s": np.array([b"x"], dtype=object)})
    assert text != kind({"s": np.array(["x", None], dtype=object)})
    merged = pd.DataFrame({"s": np.concatenate([np.array(["x"], dtype=object)] * 2)})
    assert merged["s"].dtype == pd.DataFrame({"s": np.array(["x"], dtype=object)})["s"].dtype
    assert kind({"a": np.zeros(2), "b": np.zeros(3)}) is None
    assert kind({"a": np.zeros(0)}) is None


def test_json_kind_merges_only_what_pandas_infers_alike() -> None:
    kind = batching.json_kind
    assert kind("split", {"columns": ["a", "b"], "data": [[1, "x"]]}) == kind(
        "split", {"columns": ["a", "b"], "data": [[5, "y"], [6, "z"]]}
    )
    assert kind("split", {"columns": ["a"], "data": [[1]]}) != kind(
        "split", {"columns": ["a"], "data": [[1.0]]}
    )
    assert kind("split", {"columns": ["a"], "data": [[1], [None]]}) != kind(
        "split", {"columns": ["a"], "data": [[1]]}
    )
    assert kind("records", [{"a": 1, "b": 2}]) != kind("records", [{"b": 2, "a": 1}])
    never = [
        ("split", {"columns": ["a"], "data": [[1]], "index": [0]}),  # an index of its own
        ("split", {"columns": ["a", "a"], "data": [[1, 2]]}),
        ("split", {"columns": ["a"], "data": [[[1, 2]]]}),  # a nested value
        ("split", {"columns": ["a"], "data": [[2**63]]}),  # inferred as object
        ("split", {"columns": ["a"], "data": []}),
        ("split", {"columns": ["a"], "data": [[1]] * (batching.MAX_PENDING_ROWS + 1)}),
        ("split", {"columns": [f"c{i}" for i in range(100)], "data": [list(range(100))] * 41}),
        ("split", {"columns": ["a", "b"], "data": [[1]]}),
        ("records", [{"a": 1}, {"a": 1, "b": 2}]),
        ("records", [{"a": {"x": 1}}]),
        ("records", {"a": [1]}),
    ]
    for orient, payload in never:
        assert kind(orient, payload) is None, payload


def test_no_wait_without_other_requests_arriving() -> None:
    """ENVBUILD_BATCH_WAIT_MS only applies while other requests are being read: alone, a
    request with a 60 s wait configured is answered at once."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        b = batcher(lambda d, p: d, pool, wait=60.0)
        assert b.submit(np.zeros((2, 1)), None).result(5).shape == (2, 1)


def test_batching_is_on_by_default_only_for_row_wise_flavors() -> None:
    def meta(loader: str) -> Any:
        return type("M", (), {"flavors": {"python_function": {"loader_module": loader}}})()

    assert batching.row_wise(meta("mlflow.sklearn")) and batching.row_wise(meta("mlflow.onnx"))
    assert not batching.row_wise(meta("mlflow.pyfunc.model"))
    assert batching.batch_key({"a": [1]}, None) is None  # a dict runs alone
    assert load_config({}).batch == "auto" and load_config({"ENVBUILD_BATCH": "no"}).batch == "0"
    assert load_config({"ENVBUILD_BATCH_WAIT_MS": "5"}).batch_wait == 0.005
    with pytest.raises(ConfigError, match="ENVBUILD_BATCH='sometimes'"):
        load_config({"ENVBUILD_BATCH": "sometimes"})
