"""An OpenAPI 3.0 document for the scoring protocol, derived from the model's signature.

Pure functions over the signature as MLflow writes it in the MLmodel file (``inputs``,
``outputs`` and ``params`` are JSON strings there); no MLflow import, so the builder and the
unit tests can call it too. Column types, tensor dtypes/shapes and params with their
defaults become JSON schemas; ``required: false`` columns become optional and nullable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict

from .protocol import NUMPY_SPLIT

Json = Dict[str, Any]

_SCALARS: dict[str, Json] = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"},
    "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte", "description": "base64"},
    # MLflow datetimes are naive ISO 8601 (no zone), which RFC 3339 "date-time" rejects.
    "datetime": {"type": "string", "description": "ISO 8601 date and time"},
}

_TENSOR_DTYPES: dict[str, Json] = {
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "object": {},
    "bytes": {"type": "string", "format": "byte", "description": "base64"},
    "datetime64": {"type": "string", "description": "ISO 8601 date and time"},
}

# The ``error_code`` values the server sends (MLflow's names for them).
ERROR_CODES = (
    "BAD_REQUEST",
    "ENDPOINT_NOT_FOUND",
    "REQUEST_LIMIT_EXCEEDED",
    "INTERNAL_ERROR",
    "TEMPORARILY_UNAVAILABLE",
    "DEADLINE_EXCEEDED",
)


def _loads(value: Any) -> list[Json] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise ValueError(f"a signature part must be a JSON list, got {type(value).__name__}")
    return value


def _type_schema(spec: Mapping[str, Any]) -> Json:
    """JSON schema of one MLflow type dict (a column, property, param or array item)."""
    kind = spec.get("type")
    if kind == "tensor":
        return _tensor_schema(spec["tensor-spec"])
    if kind in _SCALARS:
        return dict(_SCALARS[kind])
    if kind == "array":
        return {"type": "array", "items": _type_schema(spec.get("items") or {})}
    if kind == "object":
        props = spec.get("properties") or {}
        out: Json = {
            "type": "object",
            "properties": {name: _type_schema(p) for name, p in sorted(props.items())},
        }
        required = sorted(n for n, p in props.items() if p.get("required", True))
        if required:
            out["required"] = required
        return out
    if kind == "map":
        return {"type": "object", "additionalProperties": _type_schema(spec.get("values") or {})}
    return {}  # "any", or a type this server does not know: accept anything


def _dtype_schema(dtype: str) -> Json:
    name = dtype.lower()
    if name.startswith(("int", "uint")):
        return {"type": "integer"}
    if name.startswith(("float", "double")):
        return {"type": "number"}
    for prefix, schema in _TENSOR_DTYPES.items():
        if name.startswith(prefix):
            return dict(schema)
    return {}


def _nested(item: Json, shape: list[Any]) -> Json:
    out = item
    for dim in reversed(shape):
        arr: Json = {"type": "array", "items": out}
        if isinstance(dim, int) and dim >= 0:
            arr["minItems"] = dim
            arr["maxItems"] = dim
        out = arr
    return out


def _tensor_schema(tensor_spec: Mapping[str, Any]) -> Json:
    shape = list(tensor_spec.get("shape") or [])
    schema = _nested(_dtype_schema(str(tensor_spec.get("dtype", ""))), shape)
    schema["description"] = f"tensor {tensor_spec.get('dtype')} shape {shape}"
    return schema


def _column(spec: Mapping[str, Any]) -> Json:
    schema = _type_schema(spec)
    if not spec.get("required", True):
        schema["nullable"] = True
    return schema


def _any_of(schemas: list[Json]) -> Json:
    """One cell of a row whose columns have these schemas (duplicates merged)."""
    unique: list[Json] = []
    for schema in schemas:
        if schema not in unique:
            unique.append(schema)
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _is_tensor(specs: list[Json]) -> bool:
    return bool(specs) and all(s.get("type") == "tensor" for s in specs)


def _named(specs: list[Json]) -> bool:
    return all(s.get("name") for s in specs)


def _record_schema(specs: list[Json]) -> Json:
    return {
        "type": "object",
        "properties": {str(s["name"]): _column(s) for s in specs},
        "required": [str(s["name"]) for s in specs if s.get("required", True)],
    }


def _input_formats(specs: list[Json] | None) -> dict[str, Json]:
    """Schemas of the four JSON input formats for these input specs."""
    any_rows: Json = {"type": "array", "items": {}}
    if not specs:
        return {
            "dataframe_split": {
                "type": "object",
                "properties": {"columns": {"type": "array", "items": {}}, "data": any_rows},
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": any_rows,
            "inputs": {},
        }
    if _is_tensor(specs):
        if len(specs) == 1 and not specs[0].get("name"):
            whole = _tensor_schema(specs[0]["tensor-spec"])
            per_row = whole.get("items", {}) if whole.get("type") == "array" else whole
            return {
                "dataframe_split": {
                    "type": "object",
                    "properties": {"data": whole},
                    "required": ["data"],
                },
                "dataframe_records": {"type": "array", "items": {"type": "object"}},
                "instances": {"type": "array", "items": per_row},
                "inputs": whole,
            }
        tensors = {str(s["name"]): _tensor_schema(s["tensor-spec"]) for s in specs}
        rows = {
            name: (t.get("items", {}) if t.get("type") == "array" else t)
            for name, t in tensors.items()
        }
        return {
            "dataframe_split": {
                "type": "object",
                "properties": {"columns": {"type": "array"}, "data": {"type": "array"}},
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {
                "type": "array",
                "items": {"type": "object", "properties": rows, "required": sorted(rows)},
            },
            "inputs": {"type": "object", "properties": tensors, "required": sorted(tensors)},
        }
    if not _named(specs):
        cell = _any_of([_column(s) for s in specs])
        rows_of_cells: Json = {"type": "array", "items": {"type": "array", "items": cell}}
        return {
            "dataframe_split": {
                "type": "object",
                "properties": {"data": rows_of_cells},
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array", "items": cell},
            "inputs": {"type": "array", "items": cell},
        }
    names = [str(s["name"]) for s in specs]
    record = _record_schema(specs)
    cell = _any_of([_column(s) for s in specs])
    columnar: Json = {
        "type": "object",
        "properties": {str(s["name"]): {"type": "array", "items": _column(s)} for s in specs},
        "required": [str(s["name"]) for s in specs if s.get("required", True)],
    }
    return {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string", "enum": names}},
                "data": {"type": "array", "items": {"type": "array", "items": cell}},
                "index": {"type": "array", "items": {}},
            },
            "required": ["columns", "data"],
            "description": "pandas DataFrame.to_dict(orient='split'); columns: " + ", ".join(names),
        },
        "dataframe_records": {"type": "array", "items": record},
        "instances": {"type": "array", "items": record},
        "inputs": {"oneOf": [columnar, {"type": "array", "items": record}]},
    }


def _params_schema(params: list[Json] | None) -> Json:
    if not params:
        return {"type": "object", "description": "the model declares no params"}
    props: Json = {}
    for p in params:
        schema = _type_schema(p)
        shape = p.get("shape")
        if shape:
            schema = _nested(schema, list(shape))
        if p.get("default") is not None:
            schema["default"] = p["default"]
        props[str(p["name"])] = schema
    return {"type": "object", "properties": props}


def _output_schema(specs: list[Json] | None) -> Json:
    if not specs:
        return {}
    if _is_tensor(specs):
        if len(specs) == 1:
            return _tensor_schema(specs[0]["tensor-spec"])
        return {
            "type": "object",
            "properties": {str(s.get("name")): _tensor_schema(s["tensor-spec"]) for s in specs},
        }
    if _named(specs):
        # A DataFrame result is serialised as records, one object per row.
        return {"type": "array", "items": _record_schema(specs)}
    if len(specs) == 1:
        return {"type": "array", "items": _column(specs[0])}
    return {"type": "array", "items": {}}


def _error(description: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_openapi(
    signature: Mapping[str, Any] | None,
    *,
    title: str = "MLflow model",
    version: str = "1",
    mlflow_version: str | None = None,
    example: Any = None,
) -> Json:
    """The OpenAPI document; ``signature`` is the MLmodel ``signature`` mapping or None."""
    signature = signature or {}
    inputs = _loads(signature.get("inputs"))
    outputs = _loads(signature.get("outputs"))
    params = _loads(signature.get("params"))
    formats = _input_formats(inputs)
    params_schema = _params_schema(params)
    variants = []
    for key in ("dataframe_split", "dataframe_records", "instances", "inputs"):
        variants.append(
            {
                "title": key,
                "type": "object",
                "properties": {
                    key: formats[key],
                    "params": {"$ref": "#/components/schemas/Params"},
                },
                "required": [key],
            }
        )
    # MLflow 1.x's bodies, which the server takes from any client (protocol.py): a bare
    # pandas split object or records list, answered with the bare predictions
    split_1x = {**formats["dataframe_split"], "title": "pandas split (MLflow 1.x)"}
    records_1x = {**formats["dataframe_records"], "title": "pandas records (MLflow 1.x)"}
    json_body: Json = {"schema": {"oneOf": [*variants, split_1x, records_1x]}}
    if example is not None:
        json_body["example"] = example
    content: Json = {
        "application/json": json_body,
        "application/json; format=pandas-split": {"schema": formats["dataframe_split"]},
        "application/json; format=pandas-records": {"schema": formats["dataframe_records"]},
        NUMPY_SPLIT: {
            "schema": {
                "type": "object",
                "properties": {"columns": {"type": "array"}, "data": {"type": "array"}},
                "required": ["data"],
                "description": "MLflow 1.x's numpy split: column types inferred, the "
                "signature not applied",
            }
        },
    }
    if inputs is None or not _is_tensor(inputs):
        csv: Json = {"schema": {"type": "string"}}
        if inputs and _named(inputs):
            header = ",".join(str(s["name"]) for s in inputs)
            csv["schema"]["description"] = f"CSV with a header row: {header}"
        content["text/csv"] = csv
    predictions = _output_schema(outputs)
    ok = {
        "description": "predictions, serialised as MLflow's scoring server does: wrapped in "
        "'predictions', or bare for MLflow 1.x's bodies (a pandas split or records body, "
        "numpy split), as MLflow 1.x answered them",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {"predictions": predictions},
                            "required": ["predictions"],
                        },
                        {**predictions, "title": "MLflow 1.x"},
                    ]
                }
            }
        },
    }
    text_ok = {"description": "ok", "content": {"application/json": {"schema": {}}}}
    info: Json = {"title": title, "version": version}
    if mlflow_version:
        info["x-mlflow-version"] = mlflow_version
    return {
        "openapi": "3.0.3",
        "info": info,
        "paths": {
            "/invocations": {
                "post": {
                    "summary": "Predict",
                    "operationId": "invocations",
                    "requestBody": {"required": True, "content": content},
                    "responses": {
                        "200": ok,
                        "400": _error("the payload does not match the protocol or signature"),
                        "413": _error("the body is larger than ENVBUILD_MAX_BODY"),
                        "415": _error("unsupported content type"),
                        "500": _error("the model raised an error"),
                        "504": _error("the prediction took longer than ENVBUILD_TIMEOUT"),
                    },
                }
            },
            "/ping": {
                "get": {"summary": "Health", "operationId": "ping", "responses": {"200": text_ok}}
            },
            "/health": {
                "get": {"summary": "Health", "operationId": "health", "responses": {"200": text_ok}}
            },
            "/version": {
                "get": {
                    "summary": "MLflow version",
                    "operationId": "version",
                    "responses": {
                        "200": {
                            "description": "the MLflow version serving the model",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {"200": text_ok},
                }
            },
        },
        "components": {
            "schemas": {
                "Params": params_schema,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error_code": {"type": "string", "enum": list(ERROR_CODES)},
                        "message": {"type": "string"},
                    },
                    "required": ["error_code", "message"],
                },
            }
        },
    }
