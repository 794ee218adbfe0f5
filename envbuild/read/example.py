"""The saved input example, and how it compares with the signature (EB120)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._paths import inside
from envbuild._yaml import YamlDoc
from envbuild.codes import EB102, EB103, EB106, EB120
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.read._common import str_or_none
from envbuild.read.mlmodel import MLmodel
from envbuild.read.signature import ColType, DataType, Schema, Signature


@dataclass(frozen=True, kw_only=True)
class InputExample:
    file: str
    type: str | None  # dataframe, ndarray, json_object, sparse_matrix_csc, ...
    pandas_orient: str | None
    data: Any
    serving_file: str | None = None
    serving_data: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "type": self.type,
            "pandas_orient": self.pandas_orient,
            "serving_file": self.serving_file,
            "data": self.data,
        }


def _read_json(root: Path, rel: str, where: Location, problems: list[Finding]) -> Any:
    try:
        target = inside(root, rel, location=where)
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    if not target.is_file():
        problems.append(
            EB103.at(
                where, f"{rel} is missing", hint="restore the input example or re-log the model"
            )
        )
        return None
    try:
        return json.loads(target.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        problems.append(
            EB106.at(
                Location(file=rel, line=line),
                f"{rel} is not valid JSON",
                hint="re-log the model with a fresh input_example",
            )
        )
        return None


def read_input_example(
    doc: YamlDoc, root: Path, mlmodel: MLmodel, problems: list[Finding]
) -> InputExample | None:
    info = mlmodel.saved_input_example_info
    if info is None:
        return None
    rel = info.get("artifact_path")
    if not isinstance(rel, str):
        problems.append(
            EB102.at(
                doc.at(("saved_input_example_info",)),
                "saved_input_example_info has no artifact_path",
                hint="re-log the model",
            )
        )
        return None
    data = _read_json(root, rel, doc.at(("saved_input_example_info", "artifact_path")), problems)
    serving = info.get("serving_input_path")
    serving_data = None
    if isinstance(serving, str) and (root / serving).exists():
        serving_data = _read_json(
            root, serving, doc.at(("saved_input_example_info", "serving_input_path")), problems
        )
    return InputExample(
        file=rel,
        type=str_or_none(info.get("type")),
        pandas_orient=str_or_none(info.get("pandas_orient")),
        data=data,
        serving_file=serving if isinstance(serving, str) else None,
        serving_data=serving_data,
    )


def _columns_of(example: InputExample) -> tuple[list[str] | None, list[list[Any]]] | None:
    """The example as (column names or None, rows), for dataframe-like examples."""
    data = example.data
    if isinstance(data, dict) and "dataframe_split" in data:
        data = data["dataframe_split"]
    if (
        isinstance(data, dict)
        and isinstance(data.get("inputs"), dict | list)
        and set(data) <= {"inputs", "params"}
    ):
        data = data["inputs"]  # an example saved with params: {"inputs": ..., "params": ...}
    if isinstance(data, dict) and "data" in data and isinstance(data["data"], list):
        cols = data.get("columns")
        rows = [r if isinstance(r, list) else [r] for r in data["data"]]
        return ([str(c) for c in cols] if isinstance(cols, list) else None), rows
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        names = sorted({str(k) for r in data for k in r})
        return names, [[r.get(n) for n in names] for r in data]
    if (
        isinstance(data, dict)
        and data
        and all(not isinstance(v, dict | list) or isinstance(v, list) for v in data.values())
    ):
        if (
            all(isinstance(v, list) for v in data.values())
            and "inputs" not in data
            and "instances" not in data
        ):
            names = [str(k) for k in data]
            length = max((len(v) for v in data.values()), default=0)
            return names, [
                [data[n][i] if i < len(data[n]) else None for n in names] for i in range(length)
            ]
        if "inputs" not in data and "instances" not in data:
            names = [str(k) for k in data]
            return names, [[data[n] for n in names]]
    return None


def _value_ok(kind: DataType, value: Any) -> bool:
    if value is None:
        return True
    k = kind.kind
    if k is ColType.ANY:
        return True
    if k is ColType.BOOLEAN:
        return isinstance(value, bool)
    if k in (ColType.INTEGER, ColType.LONG):
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if k in (ColType.FLOAT, ColType.DOUBLE):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if k in (ColType.STRING, ColType.BINARY, ColType.DATETIME):
        return isinstance(value, str)
    if k is ColType.ARRAY:
        return (
            isinstance(value, list) and all(_value_ok(kind.items, v) for v in value)
            if kind.items
            else isinstance(value, list)
        )
    if k in (ColType.OBJECT, ColType.MAP):
        return isinstance(value, dict)
    return True


def _tensor_of(example: InputExample) -> Any:
    data = example.data
    if isinstance(data, dict):
        for key in ("inputs", "instances"):
            if key in data:
                return data[key]
    return data


def _shape(value: Any) -> tuple[int, ...]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            out.extend(_leaves(v))
        return out
    return [value]


_HINT = "re-log the model with an input_example that matches its signature (or fix the signature)"


def check_example(example: InputExample, signature: Signature) -> list[Finding]:
    """Compare the saved input example with the signature's inputs; each mismatch is a
    finding (EB120) naming the example file."""
    inputs = signature.inputs
    if inputs is None or example.data is None:
        return []
    loc = Location(file=example.file)
    out = _check_params(example, signature, loc)
    if inputs.kind == "columns":
        return _check_columns(example, inputs, loc, out)
    return _check_tensors(example, inputs, loc, out)


def _check_params(example: InputExample, signature: Signature, loc: Location) -> list[Finding]:
    out: list[Finding] = []
    if isinstance(example.data, dict) and isinstance(example.data.get("params"), dict):
        known = {p.name: p for p in signature.params}
        for name, value in example.data["params"].items():
            param = known.get(str(name))
            if param is None:
                out.append(
                    EB120.at(
                        loc,
                        f"param {name!r} of the input example is not in the signature",
                        hint=_HINT,
                    )
                )
            elif param.shape is None and not _value_ok(param.type, value):
                out.append(
                    EB120.at(
                        loc,
                        f"param {name!r} is {param.type.kind.value} in the signature, but the example holds {value!r}",
                        hint=_HINT,
                    )
                )
    return out


def _check_columns(
    example: InputExample, inputs: Schema, loc: Location, out: list[Finding]
) -> list[Finding]:
    """``out`` holds the params' findings; a table that cannot be compared replaces them."""
    table = _columns_of(example)
    if table is None:
        if len(inputs.columns) == 1 or all(c.name is None for c in inputs.columns):
            return out
        return [
            EB120.at(
                loc, "the input example is not a table, but the signature has columns", hint=_HINT
            )
        ]
    names, rows = table
    if names is None:
        width = {len(r) for r in rows}
        if width and width != {len(inputs.columns)}:
            out.append(
                EB120.at(
                    loc,
                    f"the input example has {sorted(width)} columns, the signature {len(inputs.columns)}",
                    hint=_HINT,
                )
            )
        return out
    index = {n: i for i, n in enumerate(names)}
    for col in inputs.columns:
        if col.name is None:
            continue
        if col.name not in index:
            if col.required:
                out.append(
                    EB120.at(
                        loc,
                        f"required column {col.name!r} is missing from the input example",
                        hint=_HINT,
                    )
                )
            continue
        i = index[col.name]
        bad = [r[i] for r in rows if i < len(r) and not _value_ok(col.type, r[i])]
        if bad:
            out.append(
                EB120.at(
                    loc,
                    f"column {col.name!r} is {col.type.kind.value} in the signature, but the example holds {bad[0]!r}",
                    hint=_HINT,
                )
            )
        if col.required and any(i < len(r) and r[i] is None for r in rows):
            out.append(
                EB120.at(
                    loc, f"required column {col.name!r} has a null in the input example", hint=_HINT
                )
            )
    return out


def _check_tensors(
    example: InputExample, inputs: Schema, loc: Location, out: list[Finding]
) -> list[Finding]:
    """``out`` holds the params' findings; tensors that cannot be paired replace them."""
    value = _tensor_of(example)
    if len(inputs.tensors) == 1:
        pairs = [(inputs.tensors[0], value)]
    elif isinstance(value, dict):
        pairs = [(t, value.get(t.name or "")) for t in inputs.tensors]
    else:
        return [
            EB120.at(
                loc,
                "the signature has several named tensors, the input example is not a mapping",
                hint=_HINT,
            )
        ]
    for spec, tensor in pairs:
        label = f"tensor {spec.name!r}" if spec.name else "the input tensor"
        if tensor is None:
            out.append(EB120.at(loc, f"{label} is missing from the input example", hint=_HINT))
            continue
        shape = _shape(tensor)
        if len(shape) != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, shape, strict=False)
        ):
            out.append(
                EB120.at(
                    loc,
                    f"{label} has shape {list(shape)}, the signature {list(spec.shape)}",
                    hint=_HINT,
                )
            )
            continue
        leaves = _leaves(tensor)
        if spec.dtype.startswith(("int", "uint")) and any(
            (isinstance(v, float) and not v.is_integer()) or isinstance(v, str) for v in leaves
        ):
            out.append(
                EB120.at(
                    loc,
                    f"{label} is {spec.dtype} in the signature, but the example holds non-integers",
                    hint=_HINT,
                )
            )
        elif spec.dtype.startswith("float") and any(isinstance(v, str) for v in leaves):
            out.append(
                EB120.at(
                    loc,
                    f"{label} is {spec.dtype} in the signature, but the example holds text",
                    hint=_HINT,
                )
            )
    return out
