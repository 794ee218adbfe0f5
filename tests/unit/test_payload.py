"""The smoke payload synthesized from a signature (envbuild/build/payload.py), on the
real signatures MLflow wrote into the corpus (tests/corpus/models/*/MLmodel) and the
examples: its exact document for each kind of signature, and that MLflow's own parser
and schema enforcement (the installed MLflow 3) accept it for every corpus model. Also
which error answers to it leave the proof at the load and which fail the smoke test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from envbuild.build import smoke_case
from envbuild.build.payload import column_value, synthesize, tensor_value
from envbuild.build.smoke import SmokeCase, SmokeResult, refusal
from envbuild.read import read_model
from envbuild.read.signature import ColType, DataType, TensorSpec, parse_params, parse_schema
from envbuild.read.signature import Signature as EnvSignature
from tests.helpers import EXAMPLES

MODELS = Path(__file__).resolve().parents[1] / "corpus" / "models"
MANIFEST = json.loads((MODELS.parent / "manifest.json").read_text(encoding="utf-8"))
FOLDERS = {e["name"]: MODELS / e["name"] / e["model_dir"] for e in MANIFEST["models"]}
SIGNED = sorted(n for n, p in FOLDERS.items() if "\nsignature:" in (p / "MLmodel").read_text())


def _signature(name: str) -> EnvSignature | None:
    """The signature as read/signature.py parses it, from the MLmodel's YAML (read_model
    refuses the models-from-code folders: their MLmodel names an absolute path)."""
    raw = yaml.safe_load((FOLDERS[name] / "MLmodel").read_text(encoding="utf-8"))
    sig = raw.get("signature")
    if not sig:
        return None
    return EnvSignature(
        inputs=parse_schema(sig["inputs"]) if sig.get("inputs") else None,
        outputs=None,
        params=parse_params(sig.get("params")),
    )


def _document(name: str) -> dict[str, Any] | None:
    made = synthesize(_signature(name))
    return made.document if made is not None else None


def test_the_yaml_signature_is_the_one_read_model_gives() -> None:
    name = "mlflow3.17.2-py3.11-sklearn-skops-noexample"
    read = read_model(FOLDERS[name]).mlmodel.signature
    assert read is not None and read.inputs == _signature(name).inputs  # type: ignore[union-attr]


def test_the_corpus_has_signed_and_unsigned_models() -> None:
    # what the tests below go over: most corpus models carry a signature, MLflow 1.30's none
    assert len(SIGNED) >= 40
    assert not [n for n in SIGNED if n.startswith("mlflow1.")]


@pytest.mark.parametrize(
    ("name", "document"),
    [
        (  # named columns, long and double: one row of a split DataFrame
            "mlflow3.17.2-py3.11-sklearn-skops-noexample",
            {
                "dataframe_split": {
                    "columns": ["age", "income", "debt", "score"],
                    "data": [[1, 1.0, 1.0, 1.0]],
                }
            },
        ),
        (  # MLflow 2.9's columns carry no `required`
            "mlflow2.9.2-py3.9-statsmodels-noexample",
            {"dataframe_split": {"columns": ["age", "income", "score"], "data": [[1.0] * 3]}},
        ),
        (  # a float32 tensor of shape [-1, 4]: a batch of one
            "mlflow3.17.2-py3.11-onnx-noexample",
            {"inputs": [[1.0, 1.0, 1.0, 1.0]]},
        ),
        (  # one unnamed string column: a list, as MLflow's own serving example has it
            "mlflow3.17.2-py3.11-transformers-noexample",
            {"inputs": ["a"]},
        ),
        (
            "mlflow3.17.2-py3.12-prophet-noexample",
            {"dataframe_split": {"columns": ["ds"], "data": [["2024-01-01T00:00:00"]]}},
        ),
        (
            "mlflow3.17.2-py3.12-langchain-models-from-code-noexample",
            {"dataframe_split": {"columns": ["review"], "data": [["a"]]}},
        ),
        ("mlflow1.30.1-py3.8-sklearn-pickle-noexample", None),  # no signature: load only
    ],
)
def test_the_document_for_each_kind_of_signature(name: str, document: Any) -> None:
    assert _document(name) == document


def test_params_are_sent_at_their_defaults() -> None:
    made = synthesize(read_model(EXAMPLES / "pyfunc-custom").mlmodel.signature)
    assert made is not None
    assert made.document["params"] == {"threshold": 0.5}
    assert made.document["dataframe_split"]["columns"][2] == "education"
    assert made.document["dataframe_split"]["data"] == [[1, 1, "a", 1, 1, 1.0, 1.0]]
    assert made.described == "one row of 7 columns, params threshold at their defaults"


SCALARS = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")


def test_every_column_type_and_nesting() -> None:
    nested = [
        {"type": "array", "items": {"type": "long"}, "name": "arr"},
        {
            "type": "object",
            "name": "obj",
            "properties": {"b": {"type": "string"}, "a": {"type": "double", "required": False}},
        },
        {"type": "map", "values": {"type": "boolean"}, "name": "m"},
    ]
    scalars = [{"type": t, "name": t, "required": t != "binary"} for t in SCALARS]
    schema = parse_schema(scalars + nested)
    made = synthesize(EnvSignature(inputs=schema, outputs=None))
    assert made is not None
    (row,) = made.document["dataframe_split"]["data"]
    # an optional column (binary here) is sent too: the model was fitted with it
    assert row == [True, 1, 1, 1.0, 1.0, "a", "YQ==", "2024-01-01T00:00:00", [1],
                   {"a": 1.0, "b": "a"}, {"a": True}]  # fmt: skip
    assert column_value(DataType(kind=ColType.ANY)) == "a"


@pytest.mark.parametrize(
    ("dtype", "shape", "value"),
    [
        ("float32", (-1, 2, 3), [[[1.0] * 3] * 2]),
        ("int64", (-1,), [1]),
        ("uint8", (2, 2), [[1, 1], [1, 1]]),
        ("bool", (-1, 1), [[True]]),
        ("str", (-1,), ["a"]),
        ("object", (), "a"),
    ],
)
def test_tensor_shapes_and_dtypes(dtype: str, shape: tuple[int, ...], value: Any) -> None:
    assert tensor_value(TensorSpec(name=None, dtype=dtype, shape=shape)) == value


def test_named_tensors_and_type_hints() -> None:
    two = parse_schema([
        {"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}},
        {"type": "tensor", "name": "y", "tensor-spec": {"dtype": "int32", "shape": [-1]}},
    ])  # fmt: skip
    made = synthesize(EnvSignature(inputs=two, outputs=None))
    assert made is not None and made.document == {"inputs": {"x": [[1.0, 1.0]], "y": [1]}}
    assert made.described == "x float64[-1,2], y int32[-1]"
    cols = parse_schema([{"type": "string", "name": "q"}, {"type": "long", "name": "k"}])
    hinted = synthesize(EnvSignature(inputs=cols, outputs=None), type_hints=True)
    assert hinted is not None and hinted.document == {"inputs": [{"q": "a", "k": 1}]}
    assert synthesize(None) is None
    assert synthesize(EnvSignature(inputs=None, outputs=cols, params=parse_params(None))) is None


@pytest.mark.parametrize("name", SIGNED)
def test_mlflow_accepts_the_payload_for_every_corpus_signature(name: str) -> None:
    """What the server does with the body (envbuild/serve/protocol.py): MLflow's parser,
    then its schema enforcement against the model's own signature, as MLflow reads it."""
    from mlflow.models import Model
    from mlflow.models.utils import _enforce_schema
    from mlflow.utils import proto_json_utils as pju

    signature = Model.load(str(FOLDERS[name] / "MLmodel")).signature
    document = _document(name)
    assert document is not None
    schema = signature.inputs
    if "inputs" in document:
        data = pju.parse_tf_serving_input({"inputs": document["inputs"]}, schema=schema)
    else:
        data = pju.dataframe_from_parsed_json(
            document["dataframe_split"], pandas_orient="split", schema=schema
        )
    enforced = _enforce_schema(data, schema)
    assert len(enforced) == 1  # one row, one batch


def test_smoke_case_falls_back_to_the_signature() -> None:
    with_example = smoke_case(read_model(FOLDERS["mlflow3.17.2-py3.11-sklearn-skops"]))
    assert with_example is not None and with_example.synthesized is None
    assert with_example.expected_file == "expected_predictions.json"
    case = smoke_case(read_model(FOLDERS["mlflow3.17.2-py3.11-sklearn-skops-noexample"]))
    assert case is not None and case.source == "MLmodel" and case.expected is None
    assert case.synthesized == "one row of 4 columns"
    assert (
        json.loads(case.payload)
        == case.document
        == _document("mlflow3.17.2-py3.11-sklearn-skops-noexample")
    )
    assert smoke_case(read_model(FOLDERS["mlflow1.30.1-py3.8-sklearn-pickle-noexample"])) is None


def _synthesized_case() -> SmokeCase:
    case = smoke_case(read_model(FOLDERS["mlflow3.17.2-py3.11-sklearn-skops-noexample"]))
    assert case is not None
    return case


def _error(message: str) -> bytes:
    return json.dumps({"error_code": "INTERNAL_ERROR", "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "tolerated"),
    [
        (400, _error("the input does not match the model signature: ..."), True),
        (500, _error("the model raised ValueError: Found unknown categories ['a']"), True),
        (500, _error("the model failed: bad value"), True),
        (500, _error("the model raised ModuleNotFoundError: No module named 'sklearn'"), False),
        (500, _error("the model raised AttributeError: 'Tree' has no attribute 'x'"), False),
        (500, _error("the model raised ImportError: cannot import name 'y'"), False),
        (500, b"Internal Server Error", False),  # not the server's answer
        (200, b'{"predictions": [1]}', False),
    ],
)
def test_which_answers_to_a_synthesized_payload_leave_the_load(
    status: int, body: bytes, tolerated: bool
) -> None:
    reason = refusal(_synthesized_case(), status, body)
    assert (reason is not None) == tolerated
    if reason is not None:
        assert reason.startswith(f"HTTP {status}: ")


def test_a_refusal_of_an_input_example_is_never_tolerated() -> None:
    case = smoke_case(read_model(FOLDERS["mlflow3.17.2-py3.11-sklearn-skops"]))
    assert refusal(case, 400, _error("the input does not match")) is None
    assert refusal(None, 400, _error("the input does not match")) is None


def test_the_proof_each_result_reports() -> None:
    case = _synthesized_case()
    made = SmokeResult.answered(case, [0], "ok", seconds=1.0, sandbox=None)
    assert made.proof == "predicted on a synthesized payload" and made.refusal_finding() is None
    doc = made.to_json()
    assert doc["synthesized"] == case.document and doc["input"] == "MLmodel"
    refused = SmokeResult.answered(
        case, None, "loaded; ...", seconds=1.0, sandbox=None, refused="HTTP 400: no"
    )
    assert refused.proof == "loaded" and not refused.compared
    finding = refused.refusal_finding()
    assert finding is not None and finding.code == "EB806" and finding.severity == "warning"
    assert SmokeResult.no_example(1.0, "loaded").proof == "loaded"
