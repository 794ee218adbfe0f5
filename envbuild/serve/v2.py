"""The Open Inference Protocol V2 (REST), as KServe, Seldon MLServer and Triton speak it.

Routes (server.py): ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
``/v2/models/{name}[/versions/{v}]``, ``.../ready`` and ``POST .../infer``. The model's
name is ENVBUILD_MODEL_NAME; its version the MLmodel's ``model_uuid`` (or ``1``).
Metadata comes from the signature: a column is an input of shape ``[-1]``, a tensor keeps
its shape. An infer request's inputs become what MLflow's own parsers would give the
model: one column each for a column signature (a pandas DataFrame, as ``dataframe_split``
gives), arrays for a tensor signature (one array, or a dict for named tensors). The
binary tensor extension Triton's clients use by default is read and, when asked for
(``binary_data_output``, or an output's ``binary_data``), written.
"""

from __future__ import annotations

import importlib
import json
import struct
from typing import Any

from .batching import Pending, columns_kind
from .protocol import RequestError, Response

# V2 datatypes and the numpy dtypes they are; BYTES is an object array of str (or bytes).
DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_FROM_NUMPY = {v: k for k, v in DATATYPES.items()}
COLUMN_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
}
HEADER = "Inference-Header-Content-Length"


def error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode("utf-8"))


def _np() -> Any:
    return importlib.import_module("numpy")


def _specs(signature: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    raw = (signature or {}).get(key)
    if not raw:
        return []
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [s for s in specs if isinstance(s, dict)] if isinstance(specs, list) else []


def tensor_metadata(specs: list[dict[str, Any]], default: str) -> list[dict[str, Any]]:
    out = []
    for i, spec in enumerate(specs):
        name = spec.get("name") or (default if len(specs) == 1 else f"{default}-{i}")
        if spec.get("type") == "tensor":
            tspec = spec.get("tensor-spec") or {}
            dtype = str(tspec.get("dtype", "object"))
            datatype = _FROM_NUMPY.get(dtype, "BYTES")
            shape = [int(d) for d in tspec.get("shape", [-1])]
        else:
            datatype = COLUMN_TYPES.get(str(spec.get("type")), "BYTES")
            shape = [-1]
        out.append({"name": name, "datatype": datatype, "shape": shape})
    return out


class V2:
    """The V2 routes over a scorer: metadata prepared once, requests decoded per call."""

    def __init__(self, scorer: Any, name: str) -> None:
        self.scorer = scorer
        self.name = name
        meta = scorer.metadata
        self.version = str(getattr(meta, "model_uuid", None) or "1")
        sig = scorer.signature_dict()
        self.inputs = tensor_metadata(_specs(sig, "inputs"), "input")
        self.outputs = tensor_metadata(_specs(sig, "outputs"), "predictions")
        flavors = getattr(meta, "flavors", None) or {}
        doc = {
            "name": name,
            "versions": [self.version],
            "platform": "mlflow",
            "inputs": self.inputs,
            "outputs": self.outputs,
            "parameters": {"mlflow_version": scorer.mlflow_version, "flavors": sorted(flavors)},
        }
        self.model_metadata = Response(200, json.dumps(doc).encode("utf-8"))
        self.server_metadata = Response(
            200,
            json.dumps(
                {
                    "name": "envbuild-serve",
                    "version": scorer.mlflow_version,
                    "extensions": ["binary_tensor_data"],
                }
            ).encode("utf-8"),
        )
        self.error_405 = error(405, "use POST for /v2/models/<name>/infer")
        schema: Any = getattr(scorer, "input_schema", None)
        self._tensor = bool(schema is not None and schema.is_tensor_spec())
        self._named = bool(schema is not None and schema.has_input_names())
        self._columns: list[str] = list(schema.input_names()) if self._named else []
        params = getattr(scorer, "params_schema", None)
        self._param_names = {p.name for p in params.params} if params is not None else set()

    def check(self, name: str, version: str | None) -> Response | None:
        """A 404 for another model or version, None for this one."""
        if name != self.name:
            return error(404, f"no model {name!r}; this server serves {self.name!r}")
        if version is not None and version != self.version:
            return error(
                404, f"model {name!r} has no version {version!r}; its version is {self.version!r}"
            )
        return None

    # -- request --------------------------------------------------------------------------

    def decode(
        self, body: bytes, header_length: str | None, defer: bool = False
    ) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
        """(model input, params, request): raises RequestError(400) naming the problem.
        With ``defer`` (the batcher's caller), a column model's input may come back as a
        batching.Pending of its columns, made a DataFrame when its batch runs."""
        binary = b""
        if header_length is not None:
            try:
                n = int(header_length)
                if not 0 <= n <= len(body):
                    raise ValueError
            except ValueError:
                raise RequestError(400, f"bad {HEADER} {header_length!r}") from None
            body, binary = body[:n], body[n:]
        try:
            req = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestError(400, f"the inference request is not JSON: {exc}") from None
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("inputs"), list)
            or not req["inputs"]
        ):
            raise RequestError(400, "the inference request needs a non-empty 'inputs' list")
        arrays: dict[str, Any] = {}
        offset = 0
        for i, tensor in enumerate(req["inputs"]):
            if not isinstance(tensor, dict):
                raise RequestError(400, f"inputs[{i}] is not an object")
            name = tensor.get("name")
            if not isinstance(name, str) or not name:
                raise RequestError(400, f"inputs[{i}] has no 'name'")
            size = (tensor.get("parameters") or {}).get("binary_data_size")
            chunk = None
            if size is not None:
                chunk = binary[offset : offset + int(size)]
                if len(chunk) != int(size):
                    raise RequestError(400, f"input {name!r}: binary data ends early")
                offset += int(size)
            arrays[name] = _array(name, tensor, chunk)
        params = req.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError(400, "'parameters' must be an object")
        model_params = {k: v for k, v in params.items() if k in self._param_names}
        if defer and not self._tensor:
            kind = columns_kind(arrays)
            if kind is not None:
                rows = next(iter(arrays.values())).shape[0]
                return (
                    Pending("columns", arrays, self._model_input, kind, rows),
                    model_params or None,
                    req,
                )
        return self._model_input(arrays), model_params or None, req

    def _model_input(self, arrays: dict[str, Any]) -> Any:
        if self._tensor:
            if not self._named:
                if len(arrays) != 1:
                    raise RequestError(
                        400, f"this model takes one tensor; got inputs {sorted(arrays)}"
                    )
                return next(iter(arrays.values()))
            return arrays
        pd = importlib.import_module("pandas")
        columns: dict[str, Any] = {}
        for name, arr in arrays.items():
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim == 2 and len(arrays) == 1 and arr.shape[1] == len(self._columns):
                return pd.DataFrame({c: arr[:, j] for j, c in enumerate(self._columns)})
            if arr.ndim != 1:
                raise RequestError(
                    400, f"input {name!r} has shape {list(arr.shape)}; a column is [-1] or [-1, 1]"
                )
            columns[name] = arr
        lengths = {len(a) for a in columns.values()}
        if len(lengths) > 1:
            raise RequestError(400, f"the inputs have different lengths {sorted(lengths)}")
        return pd.DataFrame(columns)

    # -- response -------------------------------------------------------------------------

    def encode(self, raw: Any, req: dict[str, Any]) -> Response:
        outputs = self._outputs(raw)
        wanted = req.get("outputs")
        params = req.get("parameters") or {}
        all_binary = bool(params.get("binary_data_output"))
        binary_names: set[str] = set()
        if isinstance(wanted, list) and wanted:
            names = [str(w.get("name")) for w in wanted if isinstance(w, dict)]
            missing = [n for n in names if n not in outputs]
            if missing:
                raise RequestError(400, f"no output {missing[0]!r}; outputs: {sorted(outputs)}")
            for w in wanted:
                if isinstance(w, dict) and (w.get("parameters") or {}).get(
                    "binary_data", all_binary
                ):
                    binary_names.add(str(w.get("name")))
            outputs = {n: outputs[n] for n in names}
        elif all_binary:
            binary_names = set(outputs)
        tensors = []
        blobs: list[bytes] = []
        for name, arr in outputs.items():
            datatype = _FROM_NUMPY.get(str(arr.dtype), "BYTES")
            tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
            if name in binary_names:
                blob = _to_binary(arr, datatype)
                tensor["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                tensor["data"] = _to_json(arr, datatype)
            tensors.append(tensor)
        doc: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if "id" in req:
            doc["id"] = req["id"]
        doc["outputs"] = tensors
        head = json.dumps(doc).encode("utf-8")
        if not blobs:
            return Response(200, head)
        return Response(
            200, head + b"".join(blobs), "application/octet-stream", ((HEADER, str(len(head))),)
        )

    def _outputs(self, raw: Any) -> dict[str, Any]:
        np = _np()
        pd = importlib.import_module("pandas")
        if isinstance(raw, pd.DataFrame):
            return {str(c): _column(raw[c].to_numpy()) for c in raw.columns}
        if isinstance(raw, dict):
            return {str(k): _column(np.asarray(v)) for k, v in raw.items()}
        if isinstance(raw, pd.Series):
            raw = raw.to_numpy()
        arr = _column(np.asarray(raw))
        if arr.ndim == 0:
            arr = arr.reshape(1)
        name = self.outputs[0]["name"] if len(self.outputs) == 1 else "predictions"
        return {name: arr}


def _column(arr: Any) -> Any:
    """Object columns of str stay BYTES; numbers keep their dtype."""
    if arr.dtype.kind in ("U", "S"):
        return arr.astype(object)
    return arr


def _array(name: str, tensor: dict[str, Any], chunk: bytes | None) -> Any:
    np = _np()
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise RequestError(400, f"input {name!r}: unknown datatype {datatype!r}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(400, f"input {name!r}: 'shape' must be a list of sizes, got {shape!r}")
    try:
        if chunk is not None:
            if datatype == "BYTES":
                arr = np.array(_read_bytes(chunk), dtype=object)
            else:
                arr = np.frombuffer(chunk, dtype=np.dtype(DATATYPES[datatype]).newbyteorder("<"))
                arr = arr.astype(DATATYPES[datatype])
        else:
            if "data" not in tensor:
                raise RequestError(400, f"input {name!r} has neither 'data' nor binary data")
            data = tensor["data"]
            if datatype == "BYTES":
                arr = np.array(_flatten(data), dtype=object)
            else:
                arr = np.asarray(data, dtype=DATATYPES[datatype]).reshape(-1)
        return arr.reshape(shape)
    except RequestError:
        raise
    except Exception as exc:
        raise RequestError(400, f"input {name!r}: {type(exc).__name__}: {exc}") from None


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [x for item in data for x in _flatten(item)]
    return [data]


def _read_bytes(chunk: bytes) -> list[str | bytes]:
    out: list[str | bytes] = []
    i = 0
    while i < len(chunk):
        if i + 4 > len(chunk):
            raise ValueError("truncated BYTES element")
        (n,) = struct.unpack_from("<I", chunk, i)
        item = chunk[i + 4 : i + 4 + n]
        if len(item) != n:
            raise ValueError("truncated BYTES element")
        try:
            out.append(item.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(item)
        i += 4 + n
    return out


def _to_binary(arr: Any, datatype: str) -> bytes:
    if datatype != "BYTES":
        return bytes(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    parts = []
    for item in arr.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


def _to_json(arr: Any, datatype: str) -> list[Any]:
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in flat]
    return list(flat.tolist())
