"""A smoke payload synthesized from the model's signature, for a model without an input
example: one row (a batch of one) with a value of each column's type, or a tensor of
ones of each input's dtype and shape (``-1`` dimensions are 1), and every param at its
default. Both smoke tests (image and venv) post it, through ``smoke_case``.

The values are made up (``1``, ``1.0``, ``"a"``, ...): a model may refuse them for their
meaning (an unseen category), which the smoke test tells apart from an environment that
cannot run the model (see smoke.py). Optional columns (``required: false``) get a value
too: the model was fitted with them, and leaving them out would test MLflow's schema
enforcement rather than the environment."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from envbuild.read.signature import ColType, DataType, Schema, Signature, TensorSpec

_COLUMN_VALUES: dict[ColType, Any] = {
    ColType.BOOLEAN: True,
    ColType.INTEGER: 1,
    ColType.LONG: 1,
    ColType.FLOAT: 1.0,
    ColType.DOUBLE: 1.0,
    ColType.STRING: "a",
    # MLflow's parser base64-decodes a binary column of a JSON payload
    ColType.BINARY: base64.b64encode(b"a").decode("ascii"),
    ColType.DATETIME: "2024-01-01T00:00:00",
    ColType.ANY: "a",
}


def _tensor_value(dtype: str) -> Any:
    if dtype in ("bool", "bool_"):
        return True
    if dtype.startswith(("int", "uint")) or dtype == "timedelta64":
        return 1
    if dtype.startswith(("float", "complex")):
        return 1.0
    if dtype == "datetime64":
        return "2024-01-01T00:00:00"
    return "a"  # str, bytes, object and their numpy spellings


def column_value(kind: DataType) -> Any:
    """A value of ``kind``: nested for arrays (one item), objects (every property) and
    maps (one key)."""
    if kind.kind is ColType.ARRAY:
        return [column_value(kind.items)] if kind.items is not None else []
    if kind.kind is ColType.OBJECT:
        return {name: column_value(t) for name, t, _ in kind.properties}
    if kind.kind is ColType.MAP:
        return {"a": column_value(kind.values)} if kind.values is not None else {}
    return _COLUMN_VALUES[kind.kind]


def tensor_value(spec: TensorSpec) -> Any:
    """A nested list of ``spec``'s shape (``-1`` is 1) filled with a value of its dtype."""
    value = _tensor_value(spec.dtype)
    for dim in reversed(spec.shape):
        value = [value for _ in range(1 if dim == -1 else dim)]
    return value


@dataclass(frozen=True, kw_only=True)
class Synthesized:
    """The JSON document to POST to /invocations, and a few words on what it holds."""

    document: dict[str, Any]
    described: str


def _inputs(schema: Schema, *, type_hints: bool) -> tuple[str, Any]:
    """(the protocol key, its value) for one row of ``schema``."""
    if schema.kind == "tensors":
        if len(schema.tensors) == 1:  # named or not, MLflow takes one tensor bare
            return "inputs", tensor_value(schema.tensors[0])
        return "inputs", {str(t.name): tensor_value(t) for t in schema.tensors}
    names = [c.name for c in schema.columns]
    row = [column_value(c.type) for c in schema.columns]
    if all(n is not None for n in names):
        if type_hints:  # a type-hinted model takes its Python value: a list of records
            return "inputs", [dict(zip(map(str, names), row, strict=True))]
        return "dataframe_split", {"columns": names, "data": [row]}
    if len(row) == 1:  # one unnamed column: MLflow's own serving examples send a list
        return "inputs", row
    return "dataframe_split", {"data": [row]}


def synthesize(signature: Signature | None, *, type_hints: bool = False) -> Synthesized | None:
    """The payload for ``signature``'s inputs, with every param at its default; None when
    there is no input schema to go by. ``type_hints``: the signature comes from the
    predict function's type hints (MLmodel ``is_signature_from_type_hint``), whose server
    takes only ``{"inputs": ...}``."""
    if signature is None or signature.inputs is None:
        return None
    schema = signature.inputs
    if not (schema.columns if schema.kind == "columns" else schema.tensors):
        return None
    key, value = _inputs(schema, type_hints=type_hints)
    document: dict[str, Any] = {key: value}
    params = {p.name: p.default for p in signature.params if p.default is not None}
    if params:
        document["params"] = params
    if schema.kind == "tensors":
        what = ", ".join(
            f"{t.name or 'tensor'} {t.dtype}[{','.join(str(d) for d in t.shape)}]"
            for t in schema.tensors
        )
    else:
        n = len(schema.columns)
        what = f"one row of {n} column{'s' if n != 1 else ''}"
    if params:
        what += f", params {', '.join(sorted(params))} at their defaults"
    return Synthesized(document=document, described=what)
