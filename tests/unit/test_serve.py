"""The in-image server without a model: settings, OpenAPI from real signatures, the protocol's
pure parts, the package's self-containment, and the HTTP layer in-process.

The HTTP tests run the real Server/Handler over loopback with a stand-in scorer (the model
side is covered for real in tests/integration/test_serve.py); the stand-in only decides
what /invocations answers, to reach the error paths (timeouts, slow requests, big bodies).
"""

from __future__ import annotations

import ast
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi
from packaging.requirements import Requirement as PkgRequirement

import envbuild
from envbuild import render, serve, serving
from envbuild.serve import config as serve_config
from envbuild.serve import openapi, protocol
from envbuild.serve.config import ConfigError, load_config
from envbuild.serve.protocol import RequestError, Response
from envbuild.serve.server import ACCEPT_TIMEOUT, App, Server
from tests.helpers import EXAMPLES, ROOT

SERVE = ROOT / "envbuild" / "serve"


def signature_of(name: str) -> dict[str, Any]:
    mlmodel = yaml.safe_load((EXAMPLES / name / "MLmodel").read_text())
    return dict(mlmodel["signature"])


# -- settings ------------------------------------------------------------------------------


def test_config_defaults() -> None:
    c = load_config({})
    cpus = len(os.sched_getaffinity(0))  # workers default to one per usable CPU
    assert (c.host, c.port, c.workers, c.model_dir) == (
        "0.0.0.0",
        8080,
        cpus,
        "/opt/envbuild/model",
    )
    assert load_config({"ENVBUILD_WORKERS": "AUTO", "MLFLOW_MODELS_WORKERS": "5"}).workers == cpus
    assert load_config({"MLFLOW_MODELS_WORKERS": "auto"}).workers == cpus
    assert c.backlog >= 200 and c.timeout == 60 and c.access_log


def test_config_reads_env_and_mlflow_fallbacks() -> None:
    c = load_config(
        {
            "ENVBUILD_PORT": "9000",
            "MLFLOW_MODELS_WORKERS": "3",
            "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": "7.5",
            "ENVBUILD_ACCESS_LOG": "0",
            "ENVBUILD_LOG_LEVEL": "debug",
        }
    )
    assert (c.port, c.workers, c.timeout, c.access_log, c.log_level) == (
        9000,
        3,
        7.5,
        False,
        "DEBUG",
    )
    assert load_config({"ENVBUILD_WORKERS": "2", "MLFLOW_MODELS_WORKERS": "5"}).workers == 2


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ENVBUILD_PORT": "http"}, "ENVBUILD_PORT='http' is not a number"),
        ({"ENVBUILD_PORT": "70000"}, "ENVBUILD_PORT='70000' is out of range"),
        ({"ENVBUILD_WORKERS": "0"}, "ENVBUILD_WORKERS='0' is out of range"),
        ({"MLFLOW_MODELS_WORKERS": "x"}, "MLFLOW_MODELS_WORKERS='x' is not a number"),
        ({"ENVBUILD_LOG_LEVEL": "LOUD"}, "ENVBUILD_LOG_LEVEL='LOUD'"),
        ({"ENVBUILD_ACCESS_LOG": "maybe"}, "ENVBUILD_ACCESS_LOG='maybe'"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(env)


def test_bad_setting_exits_2_before_loading_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "envbuild.serve"],
        env={"ENVBUILD_PORT": "eighty", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "ERROR ENVBUILD_PORT='eighty' is not a number"
    assert done.stdout == ""


def test_missing_model_exits_1_with_the_path(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "envbuild.serve"],
        env={"ENVBUILD_MODEL_DIR": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"{tmp_path / 'none'}: no MLmodel file there (set ENVBUILD_MODEL_DIR)" in done.stderr
    assert "Traceback" not in done.stderr


# -- the package is self-contained and valid Python 3.7 ----------------------------------


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[str, bool]]:
    """(top-level module, imported inside a function) for every absolute import."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ImportFrom) and not node.level:
            yield (node.module or "").split(".")[0], in_function
        elif isinstance(node, ast.Import):
            yield from ((a.name.split(".")[0], in_function) for a in node.names)
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        yield from _imports(node, inner)


def test_serve_package_imports_only_stdlib_and_itself() -> None:
    # MLflow and pandas are reached through importlib, inside the model's environment;
    # uvicorn only by the layer that runs on it, when chosen (ENVBUILD_HTTP=uvicorn).
    seen = set()
    for path in sorted(SERVE.glob("*.py")):
        tree = ast.parse(path.read_text(), feature_version=(3, 7))
        for top, in_function in _imports(tree):
            seen.add((path.name, top, in_function))
            if (path.name, top, in_function) == ("asgi.py", "uvicorn", True):
                continue
            assert top in sys.stdlib_module_names, f"{path.name} imports {top}"
    assert ("asgi.py", "uvicorn", True) in seen  # the exception above is still needed


def test_the_builtin_layer_never_imports_uvicorn() -> None:
    code = (
        "import sys, envbuild.serve.asgi, envbuild.serve.server, envbuild.serve.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'h11')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout == "[]\n"


def copied_server() -> dict[str, bytes]:
    """The server as the builder copies it, ``{"envbuild_serve/<path>": bytes}``."""
    return {f.path.removeprefix(".envbuild/server/"): f.read() for f in render.server_files()}


def test_server_files_are_what_the_builder_copies() -> None:
    paths = [f.path for f in render.server_files()]
    assert paths == sorted(paths)
    package = f".envbuild/server/{serving.SERVE_PACKAGE}/"
    sources = [p for p in SERVE.rglob("*.py") if "__pycache__" not in p.parts]
    assert set(paths) == {package + p.relative_to(SERVE).as_posix() for p in sources}
    assert package + "__main__.py" in paths
    # the server's default port is the one the image exposes and the smoke test maps
    assert serve_config.ENV_VARS["ENVBUILD_PORT"][0] == str(render.PORT)


def test_server_answers_the_health_path_the_builder_probes(running: Any) -> None:
    c = conn(running())
    assert call(c, "GET", render.HEALTH_PATH)[0] == 200
    c.close()


def test_server_version_is_envbuild_version() -> None:
    # the server reports it (Server header, --version) and cannot import envbuild for it
    assert serve.__version__ == envbuild.__version__


def test_copied_package_runs_under_its_new_name(tmp_path: Path) -> None:
    for rel, data in copied_server().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-m", "envbuild_serve", "--help"],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for name in serve_config.ENV_VARS:
        assert name in done.stdout


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.17.2", "mlflow-skinny==3.17.2"),
        ("2.9.2", "mlflow-skinny==2.9.2"),
        ("1.14.0", "mlflow-skinny==1.14.0"),
        ("1.13.1", "mlflow==1.13.1"),
        (None, "mlflow-skinny"),
        ("not a version", "mlflow-skinny"),
    ],
)
def test_serving_requirements(version: str | None, expected: str) -> None:
    reqs = serving.serving_requirements(version)
    assert [r.raw for r in reqs] == [expected, "pandas", "numpy"]
    assert all(r.location.file == serving.SERVING_SOURCE for r in reqs)


CORPUS = ROOT / "tests" / "corpus" / "models"


def corpus_spec(name: str) -> Any:
    from envbuild.read import read_model

    return read_model(CORPUS / name).env.spec


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        # python_env.yaml's build_dependencies name setuptools without a version: the table's
        ("mlflow2.9.2-py3.9-sklearn-pickle", "2.9.2", ["setuptools<81"]),
        ("mlflow2.9.2-py3.9-sklearn-pickle", "2.15.1", ["setuptools<81"]),
        # the requirements' mlflow==2.9.2 is what gets installed, whatever MLmodel says
        ("mlflow2.9.2-py3.9-sklearn-pickle", "2.16.0", ["setuptools<81"]),
        ("mlflow2.9.2-py3.9-sklearn-pickle", None, ["setuptools<81"]),
        # MLflow 3 has no pkg_resources import (and pins setuptools==84.2.1 itself)
        ("mlflow3.17.2-py3.11-sklearn-skops", "3.17.2", []),
        # setuptools==68.2.2 there: the environment says, and the table stays out
        ("mlflow1.30.1-py3.8-sklearn-pickle", "1.30.1", []),
        ("mlflow3.17.2-py3.12-sklearn-skops", "3.17.2", []),
    ],
)
def test_mlflow_needs_apply_where_the_environment_is_silent(
    name: str, version: str | None, expected: list[str]
) -> None:
    spec = corpus_spec(name)
    stack = serving.serving_stack(
        version, list(spec.requirements), decided=tuple(spec.build_dependencies)
    )
    needs = [r for r in stack.added if r.name == "setuptools"]
    assert [r.raw for r in needs] == expected
    assert all(r.location.file == serving.SERVING_SOURCE and r.reasons for r in needs)


def test_the_bound_reaches_the_resolver_past_a_bare_build_dependency() -> None:
    """python_env.yaml's bare `- setuptools` (MLflow 2.9.2 and 2.13 wrote it) is a line the
    model names, but without a version: setuptools<81 must still go to uv, else it locks
    setuptools 82+ and `import mlflow` fails on pkg_resources (found on a public MLflow
    2.13.0 folder and on this corpus folder, whose venv failed to load after the merge)."""
    spec = corpus_spec("mlflow2.9.2-py3.9-sklearn-pickle")
    decided = tuple(spec.build_dependencies)
    assert [str(r.requirement) for r in decided if r.name == "setuptools"] == ["setuptools"]
    stack = serving.serving_stack("2.9.2", list(spec.requirements), decided=decided)
    lines = stack.lines([*spec.requirements, *decided], prefer=False)
    assert "setuptools<81" in [r.raw for r in lines]
    # a version the model gives still decides: the bound stays out
    pinned = [
        replace(r, requirement=PkgRequirement("setuptools==80.9.0"))
        if r.name == "setuptools"
        else r
        for r in decided
    ]
    lines = stack.lines([*spec.requirements, *pinned], prefer=False)
    assert [str(r.requirement) for r in lines if r.name == "setuptools"] == ["setuptools==80.9.0"]


def test_a_bare_mlflow_prefers_the_model_version() -> None:
    bare = corpus_spec("mlflow1.30.1-py3.8-sklearn-pickle")  # requirements.txt: mlflow
    stack = serving.serving_stack("1.30.1", list(bare.requirements))
    assert stack.preferred is not None and stack.preferred.raw == "mlflow-skinny==1.30.1"
    assert serving.serving_stack(None, list(bare.requirements)).preferred is None
    pinned = corpus_spec("mlflow2.9.2-py3.9-sklearn-pickle")  # mlflow==2.9.2: the pin decides
    assert serving.serving_stack("2.9.2", list(pinned.requirements)).preferred is None


def test_model_mlflow_version_falls_back_to_the_environment_pin() -> None:
    spec = corpus_spec("mlflow2.9.2-py3.9-sklearn-pickle")
    assert serving.model_mlflow_version("2.9.3", spec) == "2.9.3"  # MLmodel wins
    assert serving.model_mlflow_version(None, spec) == "2.9.2"
    assert (
        serving.model_mlflow_version(None, corpus_spec("mlflow1.30.1-py3.8-sklearn-pickle")) is None
    )


# -- OpenAPI from the signatures -----------------------------------------------------------


@pytest.mark.parametrize("name", ["sklearn-credit", "pyfunc-custom", "pytorch-tensor"])
def test_openapi_of_examples_is_valid_and_accepts_their_payload(name: str) -> None:
    example = json.loads((EXAMPLES / name / "serving_input_example.json").read_text())
    doc = openapi.build_openapi(signature_of(name), title=name, example=example)
    validate_openapi(doc)
    request = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    schema = {**request["schema"], "components": doc["components"]}
    jsonschema.validate(example, schema)
    assert request["example"] == example


def test_openapi_describes_mlflow_1_bodies_and_their_bare_answers() -> None:
    """The server takes MLflow 1.x's bodies from any client (a bare pandas split object or
    records list, format=pandas-*, numpy split) and answers them without the wrapper: the
    document says so, and the bodies and both answers validate against it."""
    example = json.loads((EXAMPLES / "sklearn-credit" / "serving_input_example.json").read_text())
    expected = json.loads((EXAMPLES / "sklearn-credit" / "expected_predictions.json").read_text())
    doc = openapi.build_openapi(signature_of("sklearn-credit"), example=example)
    validate_openapi(doc)
    post = doc["paths"]["/invocations"]["post"]
    content = post["requestBody"]["content"]
    split = example["dataframe_split"]
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    for body in (split, records, example):
        jsonschema.validate(body, {**content["application/json"]["schema"], **doc})
    jsonschema.validate(
        split, {**content["application/json; format=pandas-split"]["schema"], **doc}
    )
    jsonschema.validate(
        records, {**content["application/json; format=pandas-records"]["schema"], **doc}
    )
    assert "application/json-numpy-split" in content
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(expected, {**answer, **doc})  # {"predictions": [...]}
    jsonschema.validate(expected["predictions"], {**answer, **doc})  # 1.x: the bare list
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"predictions": "no"}, {**answer, **doc})


def test_openapi_columns_params_and_outputs() -> None:
    doc = openapi.build_openapi(signature_of("pyfunc-custom"))
    comps = doc["components"]["schemas"]
    assert comps["Params"]["properties"]["threshold"] == {
        "type": "number",
        "format": "double",
        "default": 0.5,
    }
    variants = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"]
    records = next(v for v in variants if v["title"] == "dataframe_records")
    row = records["properties"]["dataframe_records"]["items"]
    assert row["properties"]["age"] == {"type": "integer", "format": "int64"}
    assert row["properties"]["education"] == {"type": "string"}
    assert row["required"][:2] == ["limit_bal", "age"]
    ok = doc["paths"]["/invocations"]["post"]["responses"]["200"]["content"]["application/json"]
    item = ok["schema"]["anyOf"][0]["properties"]["predictions"]["items"]
    assert item["properties"] == {
        "probability": {"type": "number", "format": "double"},
        "label": {"type": "string"},
    }
    schema = {**records, "components": doc["components"]}
    bad = {"dataframe_records": [{"limit_bal": 1, "age": "old"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert "text/csv" in doc["paths"]["/invocations"]["post"]["requestBody"]["content"]


def test_openapi_tensor_signature() -> None:
    doc = openapi.build_openapi(signature_of("pytorch-tensor"))
    validate_openapi(doc)
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert "text/csv" not in body
    inputs = next(v for v in body["application/json"]["schema"]["oneOf"] if v["title"] == "inputs")
    tensor = inputs["properties"]["inputs"]
    assert tensor["type"] == "array" and tensor["items"]["minItems"] == 8
    assert tensor["items"]["items"] == {"type": "number"}
    out = doc["paths"]["/invocations"]["post"]["responses"]["200"]["content"]["application/json"]
    assert out["schema"]["anyOf"][0]["properties"]["predictions"]["items"]["maxItems"] == 2


def test_openapi_rich_types_named_tensors_and_no_signature() -> None:
    sig = {
        "inputs": json.dumps(
            [
                {"type": "array", "items": {"type": "long"}, "name": "a", "required": True},
                {
                    "type": "object",
                    "properties": {
                        "p": {"type": "string", "required": True},
                        "q": {"type": "array", "items": {"type": "double"}, "required": False},
                    },
                    "name": "o",
                    "required": False,
                },
                {"type": "map", "values": {"type": "string"}, "name": "m", "required": True},
                {"type": "any", "name": "any", "required": True},
                {"type": "datetime", "name": "d", "required": True},
                {"type": "binary", "name": "b", "required": True},
            ]
        ),
        "outputs": json.dumps([{"type": "double", "required": True}]),
        "params": json.dumps(
            [
                {"name": "tags", "default": ["a"], "shape": [-1], "type": "string"},
                {
                    "name": "when",
                    "default": "2020-01-01T00:00:00",
                    "shape": None,
                    "type": "datetime",
                },
                {
                    "name": "obj",
                    "default": {"k": 1},
                    "shape": None,
                    "type": "object",
                    "properties": {"k": {"type": "long", "required": True}},
                },
            ]
        ),
    }
    doc = openapi.build_openapi(sig)
    validate_openapi(doc)
    params = doc["components"]["schemas"]["Params"]["properties"]
    assert params["tags"] == {"type": "array", "items": {"type": "string"}, "default": ["a"]}
    assert params["obj"]["properties"]["k"]["format"] == "int64"
    named = {
        "inputs": json.dumps(
            [
                {
                    "name": "x",
                    "type": "tensor",
                    "tensor-spec": {"dtype": "float32", "shape": [-1, 3]},
                },
                {"name": "y", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}},
            ]
        )
    }
    validate_openapi(openapi.build_openapi(named))
    validate_openapi(openapi.build_openapi(None))


# -- protocol, the parts without a model ---------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "needle"),
    [
        (None, 415, "missing Content-Type"),
        ("application/xml", 415, "'application/xml' is not supported"),
        ("application/json; charset=latin-1", 415, "charset 'latin-1'"),
        ("application/json; format=pandas-index", 415, "format='pandas-index'"),
        ("text/csv; format=pandas-split", 415, "application/json; format=pandas-split"),
        ("application/json; orient=split", 415, "parameter 'orient'"),
    ],
)
def test_content_type_errors(header: str | None, status: int, needle: str) -> None:
    with pytest.raises(RequestError) as err:
        protocol.parse_content_type(header)
    assert err.value.status == status and needle in err.value.message


def test_content_type_accepts_charset_and_case() -> None:
    assert protocol.parse_content_type("Application/JSON; charset=UTF-8") == "application/json"
    assert protocol.parse_content_type("text/csv") == "text/csv"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # MLflow 1.x's scoring server constants (CONTENT_TYPE_JSON_SPLIT_ORIENTED, ...)
        ("application/json; format=pandas-split", ("application/json", "split")),
        ("application/json; format=pandas-records", ("application/json", "records")),
        ("application/json;format=pandas-split;charset=utf-8", ("application/json", "split")),
        ('application/json; format="pandas-records"', ("application/json", "records")),
        ("application/json-numpy-split", ("application/json-numpy-split", None)),
        ("text/csv", ("text/csv", None)),
        ("application/json", ("application/json", None)),
    ],
)
def test_media_type_reads_mlflow1_formats(header: str, expected: tuple[str, str | None]) -> None:
    media = protocol.parse_media_type(header)
    assert (media.mime, media.orient) == expected


SPLIT = {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.5]]}
RECORDS = [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.5}]


@pytest.mark.parametrize(
    ("body", "orient", "expected"),
    [
        # MLflow 1.x bodies: a bare split object (index optional) or a records list
        (SPLIT, None, "split"),
        ({**SPLIT, "index": [0, 1]}, None, "split"),
        ({"data": [[1, 2]]}, None, "split"),
        (RECORDS, None, "records"),
        ([], None, "records"),
        # the Content-Type's format= decides, as it did in 1.x
        (SPLIT, "split", "split"),
        (RECORDS, "records", "records"),
        # MLflow 2 bodies stay MLflow 2's
        ({"dataframe_split": SPLIT}, None, None),
        ({"dataframe_records": RECORDS}, None, None),
        ({"instances": RECORDS}, None, None),
        ({"inputs": {"a": [1, 3]}}, None, None),
        ({"columns": ["a"]}, None, None),  # no data: not a DataFrame
        ({**SPLIT, "params": {"k": 1}}, None, None),  # 1.x had no params
        ({"messages": [{"role": "user", "content": "hi"}]}, None, None),
    ],
)
def test_legacy_orient(body: Any, orient: str | None, expected: str | None) -> None:
    assert protocol.legacy_orient(body, orient) == expected


@pytest.mark.parametrize(
    ("body", "orient", "needle"),
    [
        (RECORDS, "split", "format=pandas-split needs a JSON object"),
        (SPLIT, "records", "format=pandas-records needs a JSON list of records"),
        (3, "records", "got a JSON int"),
    ],
)
def test_legacy_orient_refuses_a_body_its_format_does_not_fit(
    body: Any, orient: str, needle: str
) -> None:
    with pytest.raises(RequestError) as err:
        protocol.legacy_orient(body, orient)
    assert err.value.status == 400 and needle in err.value.message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"dataframe_split": ', "malformed JSON: Expecting value at line 1 column 21"),
        (b"[1, 2]", "got a JSON list"),
        (b"\xff\xfe{}", "not UTF-8 (byte 0)"),
        (b"[" * 100000 + b"]" * 100000, "malformed JSON"),
    ],
)
def test_json_errors(body: bytes, needle: str) -> None:
    with pytest.raises(RequestError) as err:
        protocol.decode_json(body)
    assert err.value.status == 400 and needle in err.value.message


def test_schema_message_drops_the_echoed_data() -> None:
    raw = (
        "Failed to enforce schema of data '   a  b\n0  1  2' with schema "
        "'['limit_bal': long (required)]'. Error: Model is missing inputs ['limit_bal']."
    )
    assert protocol.schema_message(raw) == (
        "the input does not match the model signature: Model is missing inputs "
        "['limit_bal']. (signature: ['limit_bal': long (required)])"
    )
    assert protocol.schema_message("other") == "other"


def test_error_body_is_bounded_json() -> None:
    doc = json.loads(protocol.error_body("BAD_REQUEST", "x" * 10000))
    assert doc["error_code"] == "BAD_REQUEST"
    assert len(doc["message"]) < 2100 and doc["message"].endswith("(truncated)")


# -- HTTP layer, in-process ----------------------------------------------------------------


class StandIn:
    """Answers /invocations by the body: 'sleep:<s>' sleeps, anything else is echoed;
    content type and JSON errors go through the real protocol functions."""

    mlflow_version = "9.9.9"
    model_dir = None
    metadata = SimpleNamespace(model_uuid="cafe", saved_input_example_info=None)

    def __init__(self) -> None:
        self.sleeping = threading.Event()  # set once a 'sleep:' prediction is under way

    def signature_dict(self) -> dict[str, Any]:
        return signature_of("sklearn-credit")

    def invoke(self, body: bytes, content_type: str | None) -> Response:
        try:
            protocol.parse_content_type(content_type)
            if body.startswith(b"sleep:"):
                self.sleeping.set()
                time.sleep(float(body[6:]))
            else:
                protocol.decode_json(body)
            return Response(200, b'{"echo": ' + json.dumps(body.decode()).encode() + b"}")
        except RequestError as exc:
            return exc.response()


@pytest.fixture
def running() -> Iterator[Any]:
    servers: list[Server] = []

    def start(stand_in: StandIn | None = None, **env: str) -> Server:
        config = load_config({"ENVBUILD_ACCESS_LOG": "0", **env})
        app = App(stand_in or StandIn(), config)  # type: ignore[arg-type]
        app.start_pool()
        server = Server(("127.0.0.1", 0), app, config.backlog)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if not server.stopping:
            server.begin_stop()
        server.close(5)


def conn(server: Server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)


def call(c: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
         ctype: str = "application/json") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    c.request(method, path, body=body, headers={"Content-Type": ctype} if body is not None else {})
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_routes_keepalive_and_errors(running: Any) -> None:
    server = running()
    c = conn(server)
    assert call(c, "GET", "/ping")[::2] == (200, b"\n")
    assert call(c, "GET", "/health?probe=1")[::2] == (200, b"\n")
    status, headers, body = call(c, "GET", "/version")
    assert (status, body, headers["content-type"].split(";")[0]) == (200, b"9.9.9", "text/plain")
    status, headers, body = call(c, "POST", "/invocations", b'{"a": 1}')
    assert status == 200 and json.loads(body) == {"echo": '{"a": 1}'}
    assert headers["content-length"] == str(len(body)) and "connection" not in headers
    status, _, body = call(c, "GET", "/nope")
    assert status == 404 and json.loads(body)["error_code"] == "ENDPOINT_NOT_FOUND"
    status, headers, body = call(c, "GET", "/invocations")
    assert status == 405 and headers["allow"] == "POST"
    status, _, body = call(c, "POST", "/invocations", b"{", "application/json")
    assert status == 400 and json.loads(body) == {
        "error_code": "BAD_REQUEST",
        "message": "malformed JSON: Expecting property name enclosed in double quotes at "
        "line 1 column 2",
    }
    status, _, body = call(c, "POST", "/invocations", b"{}", "application/xml")
    assert status == 415 and json.loads(body)["error_code"] == "BAD_REQUEST"
    c.request("HEAD", "/ping")
    r = c.getresponse()
    assert (r.status, r.read(), r.getheader("Content-Length")) == (200, b"", "1")
    status, _, body = call(c, "GET", "/openapi.json")
    doc = json.loads(body)
    validate_openapi(doc)
    assert doc["info"] == {
        "title": "MLflow model cafe",
        "version": "cafe",
        "x-mlflow-version": "9.9.9",
    }
    # all of the above on one connection: keep-alive held
    assert len(server._threads) == 1
    status, headers, _ = call(c, "DELETE", "/ping")
    assert status == 405 and headers["connection"] == "close"
    c.close()


def test_chunked_body_and_size_limit(running: Any) -> None:
    server = running(ENVBUILD_MAX_BODY="64")
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'
        )
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b'{"echo": "{\\"a\\": 1}"}')
    c = conn(server)
    status, headers, body = call(c, "POST", "/invocations", b'{"a": "' + b"x" * 100 + b'"}')
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    c.close()


def test_slow_prediction_gets_504(running: Any) -> None:
    server = running(ENVBUILD_TIMEOUT="0.2")
    c = conn(server)
    status, _, body = call(c, "POST", "/invocations", b"sleep:1")
    c.close()
    assert status == 504
    assert json.loads(body) == {
        "error_code": "DEADLINE_EXCEEDED",
        "message": "the prediction took longer than 0.2s (ENVBUILD_TIMEOUT)",
    }


def test_graceful_stop_finishes_in_flight_and_closes_idle(running: Any) -> None:
    stand_in = StandIn()
    server = running(stand_in)
    idle = conn(server)
    assert call(idle, "GET", "/ping")[0] == 200
    busy = conn(server)
    result: dict[str, Any] = {}

    def slow() -> None:
        result["r"] = call(busy, "POST", "/invocations", b"sleep:0.8")

    t = threading.Thread(target=slow)
    t.start()
    assert stand_in.sleeping.wait(5)  # the prediction is in flight
    server.begin_stop()
    assert server.close(5) is True
    t.join(5)
    status, headers, _ = result["r"]
    assert status == 200 and headers["connection"] == "close"
    assert idle.sock is not None and idle.sock.recv(10) == b""  # closed by the server
    idle.close()
    busy.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=1)


def test_bad_request_line_is_json_400(running: Any) -> None:
    server = running()
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        reply = s.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error_code"] == "BAD_REQUEST"


def test_a_worker_that_loses_the_accept_race_does_not_block() -> None:
    """Workers share the listening socket: select() wakes them all when a connection
    arrives, one accepts it, the others then call accept() with nothing queued. That call
    must return at once (non-blocking socket) so the loser goes back to select() and still
    sees a stop; a blocking accept() hung there until the next connection (seen in CI as a
    worker stuck past SIGTERM). The loser's call is reproduced directly here."""
    config = load_config({"ENVBUILD_ACCESS_LOG": "0"})
    server = Server(("127.0.0.1", 0), App(StandIn(), config), config.backlog)  # type: ignore[arg-type]
    try:
        winner = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)
        accepted, _ = _accept(server)  # the winner
        done = threading.Event()
        # the loser: woken for the same connection, finds the queue empty

        def lose() -> None:
            server._handle_request_noblock()  # type: ignore[attr-defined]  # not in typeshed
            done.set()

        loser = threading.Thread(target=lose, daemon=True)
        loser.start()
        assert done.wait(2), "accept() blocked with no connection queued"
        assert server.socket.getblocking() is False
        accepted.close()
        winner.close()
    finally:
        server.server_close()


def _accept(server: Server) -> tuple[socket.socket, Any]:
    deadline = time.monotonic() + 5
    while True:
        try:
            return server.socket.accept()
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_accept_is_bounded_even_if_another_holder_clears_o_nonblock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """O_NONBLOCK is shared by every process holding the listening socket; a worker was
    found blocked in accept() with the flag cleared. With the flag cleared on purpose here,
    the loser's accept() still returns (SO_RCVTIMEO, ~1 s) and the next service_actions()
    sets the flag again, with one warning."""
    import fcntl

    config = load_config({"ENVBUILD_ACCESS_LOG": "0"})
    server = Server(("127.0.0.1", 0), App(StandIn(), config), config.backlog)  # type: ignore[arg-type]
    try:
        fd = server.socket.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        done = threading.Event()

        def lose() -> None:
            server._handle_request_noblock()  # type: ignore[attr-defined]  # not in typeshed
            done.set()

        loser = threading.Thread(target=lose, daemon=True)
        loser.start()
        # bounded by the socket's receive timeout, which Linux applies to accept()
        timeout = server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
        assert struct.unpack("ll", timeout) == (ACCEPT_TIMEOUT, 0)
        assert done.wait(5), "accept() blocked with the flag cleared"
        with caplog.at_level("WARNING", logger="envbuild.serve"):
            server.service_actions()
            server.service_actions()
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        assert [r.message for r in caplog.records].count(
            "the listening socket had been made blocking by another holder; made non-blocking again"
        ) == 1
    finally:
        server.server_close()


def test_named_user_gives_a_nameless_uid_a_passwd_entry(tmp_path, monkeypatch) -> None:
    """ENVBUILD_NSS_WRAPPER=1 and a UID with no passwd entry (the smoke test's random one):
    a passwd line for it under HOME and nss_wrapper preloaded for the JVM; otherwise
    nothing."""
    import pwd

    from envbuild.serve.__main__ import named_user

    assert named_user({"HOME": str(tmp_path)}) is None  # not asked
    asked = {"ENVBUILD_NSS_WRAPPER": "1", "HOME": str(tmp_path)}
    if os.getuid() == 0 or _has_entry(pwd):
        assert named_user(dict(asked)) is None  # this user has a name already

    def nameless(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", nameless)
    env = dict(asked)
    path = named_user(env)
    assert path == str(tmp_path / ".envbuild-passwd")
    line = (tmp_path / ".envbuild-passwd").read_text()
    assert line == f"envbuild:x:{os.getuid()}:{os.getgid()}:envbuild:{tmp_path}:/bin/sh\n"
    assert env["LD_PRELOAD"] == "libnss_wrapper.so" and env["NSS_WRAPPER_PASSWD"] == path


def _has_entry(pwd) -> bool:  # type: ignore[no-untyped-def]
    try:
        pwd.getpwuid(os.getuid())
    except KeyError:
        return False
    return True


def test_tensorflow_loaded_means_one_process() -> None:
    """A TensorFlow model loaded before the workers fork hangs in a worker's first
    predict (measured on the corpus tensorflow-keras model: its image smoke test answered
    504 after ENVBUILD_TIMEOUT, twice; by hand, a fork after mlflow.pyfunc.load_model and a
    predict in the child did not return in 60 s). serve() then runs one process; with the
    fix that model's server answered /invocations in 0.3 s with ENVBUILD_WORKERS=2."""
    from envbuild.serve.server import fork_unsafe

    assert fork_unsafe({"tensorflow": object(), "numpy": object()}) == "tensorflow"
    assert fork_unsafe({"sklearn": object(), "torch": object(), "xgboost": object()}) is None
