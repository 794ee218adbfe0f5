"""The model signature: column and tensor schemas, params, and their parsers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from envbuild._compat import StrEnum


class ColType(StrEnum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    LONG = "long"
    FLOAT = "float"
    DOUBLE = "double"
    STRING = "string"
    BINARY = "binary"
    DATETIME = "datetime"
    ARRAY = "array"
    OBJECT = "object"
    MAP = "map"
    ANY = "any"


@dataclass(frozen=True, kw_only=True)
class DataType:
    """A column or parameter type; nested for array (items), object (properties), map
    (values)."""

    kind: ColType
    items: DataType | None = None
    properties: tuple[tuple[str, DataType, bool], ...] = ()
    values: DataType | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind.value}
        if self.items is not None:
            out["items"] = self.items.to_json()
        if self.properties:
            out["properties"] = {
                name: {**t.to_json(), "required": req} for name, t, req in self.properties
            }
        if self.values is not None:
            out["values"] = self.values.to_json()
        return out


@dataclass(frozen=True, kw_only=True)
class ColSpec:
    name: str | None
    type: DataType
    required: bool = True


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    name: str | None
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    name: str
    type: DataType
    default: Any
    shape: tuple[int, ...] | None


@dataclass(frozen=True, kw_only=True)
class Schema:
    kind: Literal["columns", "tensors"]
    columns: tuple[ColSpec, ...] = ()
    tensors: tuple[TensorSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.kind == "columns":
            return {
                "kind": "columns",
                "columns": [
                    {"name": c.name, **c.type.to_json(), "required": c.required}
                    for c in self.columns
                ],
            }
        return {
            "kind": "tensors",
            "tensors": [
                {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors
            ],
        }


@dataclass(frozen=True, kw_only=True)
class Signature:
    inputs: Schema | None
    outputs: Schema | None
    params: tuple[ParamSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": [
                {
                    "name": p.name,
                    **p.type.to_json(),
                    "default": p.default,
                    "shape": list(p.shape) if p.shape is not None else None,
                }
                for p in self.params
            ],
        }


TENSOR_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "float128",
    "complex64",
    "complex128",
    "str",
    "bytes",
    "object",
    "datetime64",
    "timedelta64",
    "str_",
    "bytes_",
    "object_",
    "bool_",
    "U",
    "S",
}


class SchemaError(ValueError):
    pass


def _parse_type(raw: Any) -> DataType:
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise SchemaError(f"a type must be a name or {{'type': ...}}, got {raw!r}")
    try:
        kind = ColType(raw["type"])
    except ValueError:
        raise SchemaError(f"unknown type {raw['type']!r}") from None
    if kind is ColType.ARRAY:
        if "items" not in raw:
            raise SchemaError("an array type needs 'items'")
        return DataType(kind=kind, items=_parse_type(raw["items"]))
    if kind is ColType.OBJECT:
        props = raw.get("properties") or {}
        if not isinstance(props, Mapping):
            raise SchemaError("an object type needs 'properties' as a mapping")
        return DataType(
            kind=kind,
            properties=tuple(
                (
                    str(k),
                    _parse_type(v),
                    bool(v.get("required", True)) if isinstance(v, Mapping) else True,
                )
                for k, v in sorted(props.items(), key=lambda kv: str(kv[0]))
            ),
        )
    if kind is ColType.MAP:
        if "values" not in raw:
            raise SchemaError("a map type needs 'values'")
        return DataType(kind=kind, values=_parse_type(raw["values"]))
    return DataType(kind=kind)


def parse_schema(raw: Any) -> Schema:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"not JSON: {exc.msg}") from None
    if not isinstance(raw, list):
        raise SchemaError("a schema must be a JSON list of column or tensor specs")
    if raw and all(isinstance(s, Mapping) and s.get("type") == "tensor" for s in raw):
        tensors = []
        for spec in raw:
            ts = spec.get("tensor-spec")
            if not isinstance(ts, Mapping) or "dtype" not in ts or "shape" not in ts:
                raise SchemaError("a tensor spec needs 'tensor-spec' with 'dtype' and 'shape'")
            shape = ts["shape"]
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape
            ):
                raise SchemaError(f"tensor shape must be a list of integers >= -1, got {shape!r}")
            dtype = str(ts["dtype"])
            if dtype not in TENSOR_DTYPES:
                raise SchemaError(f"unknown tensor dtype {dtype!r}")
            tensors.append(TensorSpec(name=spec.get("name"), dtype=dtype, shape=tuple(shape)))
        return Schema(kind="tensors", tensors=tuple(tensors))
    columns = []
    for spec in raw:
        if not isinstance(spec, Mapping):
            raise SchemaError(f"a column spec must be a mapping, got {spec!r}")
        if spec.get("type") == "tensor":
            raise SchemaError("a schema cannot mix tensor and column specs")
        name = spec.get("name")
        columns.append(
            ColSpec(
                name=str(name) if name is not None else None,
                type=_parse_type(spec),
                required=bool(spec.get("required", True)),
            )
        )
    return Schema(kind="columns", columns=tuple(columns))


def parse_params(raw: Any) -> tuple[ParamSpec, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"not JSON: {exc.msg}") from None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SchemaError("params must be a JSON list")
    out = []
    for spec in raw:
        # MLflow accepts `dtype` as well as `type` (ParamSpec.from_json_dict: MLflow 2.5-2.7
        # wrote `dtype`), and `type` wins when both are present
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise SchemaError("a param spec needs 'name' and 'type' (or 'dtype')")
        kind = spec.get("type") or spec.get("dtype")
        if kind is None:
            raise SchemaError("a param spec needs 'name' and 'type' (or 'dtype')")
        shape = spec.get("shape")
        if shape is not None and (
            not isinstance(shape, list) or not all(isinstance(d, int) for d in shape)
        ):
            raise SchemaError(f"param shape must be null or a list of integers, got {shape!r}")
        out.append(
            ParamSpec(
                name=str(spec["name"]),
                type=_parse_type({**spec, "type": kind} if kind == "object" else kind),
                default=spec.get("default"),
                shape=tuple(shape) if shape is not None else None,
            )
        )
    return tuple(out)
