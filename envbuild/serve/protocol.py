"""MLflow's scoring protocol over a loaded pyfunc model, without any HTTP.

Parsing and serialisation go through the same MLflow functions MLflow's own scoring server
uses (``mlflow.utils.proto_json_utils``, importable with mlflow-skinny alone, unlike
``mlflow.pyfunc.scoring_server`` which imports Flask in 1.x and 2.x), so predictions come
back byte for byte as ``mlflow models serve`` returns them. What differs is on purpose:
malformed payloads get short messages without the payload echoed back, and an exception
raised inside the model is a 500, not a 400.

Both protocols are spoken, whichever MLflow serves the model. MLflow 2's: a JSON object
with one of FORMATS, answered ``{"predictions": ...}``. MLflow 1.x's, which 2.0 dropped: a
bare pandas JSON body (a ``split`` object, ``{"columns": ..., "data": ...}``, or a
``records`` list), its orient named or not by ``application/json; format=pandas-split``
or ``format=pandas-records``, and ``application/json-numpy-split``; these are answered as
1.x answered them, the predictions without the wrapper, since only a 1.x client sends
them. CSV and ``instances``/``inputs``, which both accept, get MLflow 2's answer.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from .batching import Pending, json_kind

log = logging.getLogger("envbuild.serve")

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
NUMPY_SPLIT = "application/json-numpy-split"  # MLflow 1.x: a split body, no signature types
CONTENT_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet", NUMPY_SPLIT)
# MLflow 1.x's Content-Type parameter naming the pandas orient of a bare JSON body
LEGACY_ORIENTS = {"pandas-split": "split", "pandas-records": "records"}
SPLIT_KEYS = frozenset({"columns", "data", "index"})  # pandas' orient='split' object
MAX_MESSAGE = 2000

# The MLflow modules the scorer imports at start. Image builds import the same list (plus the
# flavor's loader module) to decide which of MLflow's runtime modules get bytecode
# (envbuild/_scripts/bytecode.py), so keep the two in step through this one tuple.
MLFLOW_MODULES = (
    "mlflow.pyfunc",
    "mlflow.exceptions",
    "mlflow.utils.proto_json_utils",
    "mlflow.version",
    "mlflow.pyfunc.utils.serving_data_parser",
)

# Libraries imported before MLflow when the MLmodel names them. skops builds its list of
# trusted types at import by looking each of ~900 types up in every module of sys.modules
# (skops.io._utils.whichmodule), so its import costs in proportion to what is already loaded:
# importing it before MLflow's ~1,500 modules cut a skops model's load from 2.2 s to 1.8 s
# (examples/sklearn-credit, python:3.11-slim). The model loads exactly as before.
EARLY_IMPORTS = ((re.compile(r"^\s+serialization_format:\s*['\"]?skops\b", re.M), "skops.io"),)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()  # more response headers (V2's binary extension)
    close: bool = False  # the connection closes after this answer (its request may be unread)


class RequestError(Exception):
    """A request that gets a JSON error response (status, MLflow-style error code)."""

    def __init__(self, status: int, message: str, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def response(self) -> Response:
        return Response(self.status, error_body(self.error_code, self.message))


class LoadError(Exception):
    """The model could not be loaded; the message says why."""


def error_body(error_code: str, message: str) -> bytes:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ... (truncated)"
    return json.dumps({"error_code": error_code, "message": message}).encode("utf-8")


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


_ENFORCE = re.compile(
    r"Failed to enforce schema of data '.*' with schema '(?P<schema>.*)'\. Error: (?P<error>.*)",
    re.DOTALL,
)


def schema_message(message: str) -> str:
    """MLflow's schema-enforcement message without the echoed input data."""
    match = _ENFORCE.search(message)
    if not match:
        return message
    return (
        f"the input does not match the model signature: {match['error'].strip()} "
        f"(signature: {match['schema']})"
    )


@dataclass(frozen=True)
class MediaType:
    mime: str
    orient: str | None = None  # "split" or "records", from MLflow 1.x's format= parameter


def parse_media_type(header: str | None) -> MediaType:
    """The MIME type of a Content-Type header and MLflow 1.x's ``format`` parameter, or a
    RequestError(415) saying what is wrong."""
    if not header:
        raise RequestError(
            415, "missing Content-Type; send application/json or text/csv", "BAD_REQUEST"
        )
    mime, *rest = (part.strip() for part in header.split(";"))
    mime = mime.lower()
    orient = None
    for param in rest:
        if not param:
            continue
        key, _, value = param.partition("=")
        key = key.strip().lower()
        value = value.strip().strip('"').lower()
        if key == "charset":
            if value not in ("utf-8", "utf8"):
                raise RequestError(415, f"charset {value!r} is not supported; send UTF-8")
        elif key == "format" and mime == "application/json" and value in LEGACY_ORIENTS:
            orient = LEGACY_ORIENTS[value]
        elif key == "format":
            raise RequestError(
                415,
                f"format={value!r} is not supported: MLflow 1.x's formats are "
                + ", ".join(f"application/json; format={f}" for f in LEGACY_ORIENTS),
            )
        else:
            raise RequestError(415, f"unrecognised Content-Type parameter {key!r}")
    if mime not in CONTENT_TYPES:
        raise RequestError(
            415, f"Content-Type {mime!r} is not supported; send one of {', '.join(CONTENT_TYPES)}"
        )
    return MediaType(mime, orient)


def parse_content_type(header: str | None) -> str:
    """The MIME type of a Content-Type header, or a RequestError(415) saying what is wrong."""
    return parse_media_type(header).mime


def legacy_orient(obj: Any, orient: str | None) -> str | None:
    """The pandas orient of an MLflow 1.x body (``split`` or ``records``), or None for a
    body in MLflow 2's form; ``orient`` is the one the Content-Type named. MLflow 1.x took
    a JSON list as records and any other object without instances/inputs as split; an
    object here is split only with pandas' split keys and nothing else."""
    if orient == "split" and not isinstance(obj, dict):
        raise RequestError(
            400,
            "format=pandas-split needs a JSON object with 'columns' and 'data' "
            f"(pandas orient='split'); got a JSON {type(obj).__name__}",
        )
    if orient == "records" and not isinstance(obj, list):
        raise RequestError(
            400,
            "format=pandas-records needs a JSON list of records (pandas orient='records'); "
            f"got a JSON {type(obj).__name__}",
        )
    if orient is not None:
        return orient
    if isinstance(obj, list):
        return "records"
    if isinstance(obj, dict) and "data" in obj and set(obj) <= SPLIT_KEYS:
        return "split"
    return None


def decode_json(body: bytes) -> dict[str, Any]:
    """The request's JSON object, or a RequestError(400) naming the problem and position."""
    obj = load_json(body)
    if not isinstance(obj, dict):
        raise RequestError(
            400,
            f"the body must be a JSON object with one of the keys {', '.join(FORMATS)}; "
            f"got a JSON {type(obj).__name__}",
        )
    return obj


def load_json(body: bytes) -> Any:
    """The request's JSON document, or a RequestError(400) naming the problem and position."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    return obj


def _early_imports(mlmodel: str) -> None:
    try:
        with open(mlmodel, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return  # the loader reports it
    for pattern, module in EARLY_IMPORTS:
        if pattern.search(text):
            try:
                importlib.import_module(module)
            except Exception as exc:  # the model's own load reports a real problem
                log.debug("early import of %s failed: %s", module, exc)


class Scorer:
    """A loaded pyfunc model and the protocol around it (thread-safe as the model is)."""

    def __init__(self, model_dir: str) -> None:
        if not os.path.isfile(os.path.join(model_dir, "MLmodel")):
            raise LoadError(f"{model_dir}: no MLmodel file there (set ENVBUILD_MODEL_DIR)")
        os.environ.setdefault("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
        # A serving process does not report usage to MLflow (MLflow 3 does by default, from
        # a thread, over the network); set MLFLOW_DISABLE_TELEMETRY=false to allow it.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        _early_imports(os.path.join(model_dir, "MLmodel"))
        # importlib, not import statements: MLflow's API is untyped and varies by version,
        # so it is handled as Any here (and mypy need not have MLflow installed).
        pyfunc_name, exceptions_name, pju_name, version_name, parser_name = MLFLOW_MODULES
        try:
            pyfunc = importlib.import_module(pyfunc_name)
            exceptions = importlib.import_module(exceptions_name)
            pju = importlib.import_module(pju_name)
            version = importlib.import_module(version_name)
        except ImportError as exc:
            raise LoadError(
                f"cannot import MLflow ({exc}); the environment needs mlflow-skinny"
            ) from None
        try:
            parser = importlib.import_module(parser_name)
            is_unified_llm_input: Any = parser.is_unified_llm_input
        except (ImportError, AttributeError):  # MLflow before 2.12
            is_unified_llm_input = None
        self._llm_input = is_unified_llm_input
        # MLflow 2.0 on parse a decoded body (dataframe_from_parsed_json); 1.x parses JSON
        # text (_dataframe_from_json). Both serialise the same way.
        frames = ("dataframe_from_parsed_json", "_dataframe_from_json")
        if not (
            all(hasattr(pju, name) for name in ("NumpyEncoder", "_get_jsonable_obj"))
            and any(hasattr(pju, name) for name in frames)
        ):
            raise LoadError(
                f"MLflow {version.VERSION}'s mlflow.utils.proto_json_utils lacks the payload "
                "parsers envbuild's server uses (MLflow 1.30 and 2.x/3.x have them)"
            )
        self._mlflow_exception: Any = exceptions.MlflowException
        self._pju: Any = pju
        self.mlflow_version = str(version.VERSION)
        self.model_dir = model_dir
        kwargs: dict[str, Any] = {}
        config = os.environ.get("SERVING_MODEL_CONFIG")
        if config:
            try:
                kwargs["model_config"] = json.loads(config)
            except json.JSONDecodeError as exc:
                raise LoadError(f"SERVING_MODEL_CONFIG is not JSON: {exc}") from None
        # MLflow's load-time checks of the environment against the model (its requirement
        # pins, its Python) are left to environment_warnings(), which the server runs once it
        # answers: they decide nothing, and reading every installed distribution's file list
        # cost 0.08 of the 1.2 s load of examples/sklearn-credit (python:3.11-slim).
        self._pyfunc: Any = pyfunc
        try:
            self.model: Any = pyfunc.load_model(model_dir, suppress_warnings=True, **kwargs)
        except Exception as exc:
            raise LoadError(f"{model_dir}: loading the model failed: {_short(exc)}") from exc
        meta = self.model.metadata
        self.metadata = meta
        self.input_schema = (
            meta.get_input_schema() if hasattr(meta, "get_input_schema") else None
        )  # MLflow before 1.9 has no signatures
        self.params_schema = (
            meta.get_params_schema() if hasattr(meta, "get_params_schema") else None
        )
        hint = getattr(meta, "_is_signature_from_type_hint", None)
        self.type_hint_signature = bool(hint()) if callable(hint) else False
        try:
            self.accepts_params = "params" in inspect.signature(self.model.predict).parameters
        except (TypeError, ValueError):
            self.accepts_params = False
        # Whether pandas JSON may be merged before it is parsed (parse(defer=True)): MLflow
        # 2.0 on parses decoded JSON; a datetime column's format is inferred from its first
        # value (pandas.to_datetime), so a merged column could parse otherwise than alone.
        self.defers = hasattr(pju, "dataframe_from_parsed_json") and not any(
            getattr(t, "name", None) == "datetime"
            for t in (self.input_schema.input_types() if self.input_schema is not None else ())
        )

    def environment_warnings(self) -> None:
        """The warnings MLflow's ``load_model`` gives when the installed packages or the
        Python differ from what the model was logged with, logged as MLflow logs them."""
        pyfunc = self._pyfunc
        try:
            if hasattr(pyfunc, "_get_pip_requirements_from_model_path"):  # 2.12 and 3.x
                pyfunc.warn_dependency_requirement_mismatches(
                    pyfunc._get_pip_requirements_from_model_path(self.model_dir)
                )
            elif hasattr(pyfunc, "_warn_dependency_requirement_mismatches"):  # 2.0 to 2.3
                pyfunc._warn_dependency_requirement_mismatches(self.model_dir)
            conf = self.metadata.flavors.get("python_function") or {}
            pyfunc._warn_potentially_incompatible_py_version_if_necessary(
                model_py_version=conf.get("python_version")
            )
        except Exception as exc:  # a check that cannot run must not stop a serving model
            log.debug("MLflow's environment check failed: %s", exc, exc_info=True)

    # -- parsing -------------------------------------------------------------------------

    def _frame(self, data: Any, orient: str) -> Any:
        """A DataFrame from a decoded pandas JSON body, typed by the signature."""
        pju = self._pju
        if hasattr(pju, "dataframe_from_parsed_json"):
            return pju.dataframe_from_parsed_json(
                data, pandas_orient=orient, schema=self.input_schema
            )
        # MLflow 1.x reads the JSON text itself (pandas.read_json)
        return pju._dataframe_from_json(
            io.StringIO(json.dumps(data)), schema=self.input_schema, pandas_orient=orient
        )

    def _checked_frame(self, data: Any, orient: str, label: str) -> Any:
        """_frame, its failures a RequestError(400) naming the input's form."""
        try:
            return self._frame(data, orient)
        except self._mlflow_exception as exc:
            raise RequestError(400, f"invalid {label} input: {exc.message}") from None
        except Exception as exc:
            raise RequestError(400, f"invalid {label} input: {_short(exc)}") from None

    def _pandas(self, data: Any, orient: str, label: str, defer: bool) -> Any:
        """The DataFrame of a decoded pandas JSON input; with ``defer``, a Pending that
        makes it later, merged with queued inputs of its kind, if it is of a kind that may
        merge (batching.json_kind)."""
        if defer and self.defers:
            kind = json_kind(orient, data)
            if kind is not None:
                rows = len(data["data"]) if orient == "split" else len(data)
                build = partial(self._checked_frame, orient=orient, label=label)
                return Pending(orient, data, build, kind, rows)
        return self._checked_frame(data, orient, label)

    def _parse_json(
        self, body: bytes, orient: str | None = None, defer: bool = False
    ) -> tuple[Any, dict[str, Any] | None, bool]:
        """(data, params, unwrapped): the model input, its params, whether the answer goes
        without the ``predictions`` wrapper (LLM style, and MLflow 1.x's bodies)."""
        obj = load_json(body)
        legacy = legacy_orient(obj, orient)
        if legacy is not None:
            return self._pandas(obj, legacy, f"pandas '{legacy}'", defer), None, True
        if not isinstance(obj, dict):
            raise RequestError(
                400,
                f"the body must be a JSON object with one of the keys {', '.join(FORMATS)}, "
                "or pandas JSON (MLflow 1.x: a split object or a records list); "
                f"got a JSON {type(obj).__name__}",
            )
        if self._llm_input is not None and self._llm_input(obj):
            names = {p.name for p in self.params_schema.params} if self.params_schema else set()
            data = {k: v for k, v in obj.items() if k not in names}
            return data, {k: v for k, v in obj.items() if k in names}, True
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            raise RequestError(
                400, f"'params' must be a JSON object, got a JSON {type(params).__name__}"
            )
        present = [k for k in FORMATS if k in obj]
        if self.type_hint_signature:
            if "inputs" not in obj:
                raise RequestError(
                    400,
                    "this model's signature comes from type hints: send {'inputs': ...}; "
                    f"got keys {sorted(obj)}",
                )
            return obj["inputs"], params, False
        if len(present) != 1:
            got = ", ".join(sorted(obj)) or "none"
            raise RequestError(
                400,
                "the body must have exactly one of the keys "
                f"{', '.join(FORMATS)} (plus optional 'params'), or be pandas JSON "
                f"(MLflow 1.x: {{'columns': ..., 'data': ...}} or a list); got keys: {got}",
            )
        fmt = present[0]
        if fmt.startswith("dataframe_"):
            return (
                self._pandas(obj[fmt], fmt[len("dataframe_") :], f"'{fmt}'", defer),
                params,
                False,
            )
        if not hasattr(self._pju, "parse_tf_serving_input"):
            raise RequestError(
                400, f"MLflow {self.mlflow_version} cannot parse '{fmt}'; send pandas JSON"
            )
        try:
            data = self._pju.parse_tf_serving_input({fmt: obj[fmt]}, schema=self.input_schema)
        except self._mlflow_exception as exc:
            raise RequestError(400, f"invalid '{fmt}' input: {exc.message}") from None
        except Exception as exc:
            raise RequestError(400, f"invalid '{fmt}' input: {_short(exc)}") from None
        return data, params, False

    def _parse_numpy_split(self, body: bytes) -> Any:
        """MLflow 1.x's application/json-numpy-split: a split object made a DataFrame of
        objects whose column types pandas infers, as 1.x did (the signature is not used)."""
        obj = decode_json(body)
        pd: Any = importlib.import_module("pandas")
        np: Any = importlib.import_module("numpy")
        try:
            return pd.DataFrame(
                index=obj.get("index"),
                data=np.array(obj["data"], dtype=object),
                columns=obj.get("columns"),
            ).infer_objects()
        except Exception as exc:
            raise RequestError(400, f"invalid numpy-split input: {_short(exc)}") from None

    def _parse_csv(self, body: bytes) -> Any:
        pd: Any = importlib.import_module("pandas")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(400, f"the body is not UTF-8 (byte {exc.start})") from None
        schema = self.input_schema
        try:
            if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
                return pd.read_csv(io.StringIO(text))
            dtypes = dict(zip(schema.input_names(), schema.pandas_types()))
            return pd.read_csv(io.StringIO(text), dtype=dtypes)
        except Exception as exc:
            raise RequestError(
                400, f"could not read the CSV body as a DataFrame: {_short(exc)}"
            ) from None

    def _parse_parquet(self, body: bytes) -> Any:
        pd: Any = importlib.import_module("pandas")
        try:
            return pd.read_parquet(io.BytesIO(body))
        except ImportError as exc:
            raise RequestError(415, f"Parquet input needs pyarrow in the image: {exc}") from None
        except Exception as exc:
            raise RequestError(400, f"could not read the Parquet body: {_short(exc)}") from None

    # -- the call ------------------------------------------------------------------------

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """model.predict, with MLflow errors about the input as 400 and the rest as 500."""
        try:
            if self.accepts_params:
                return self.model.predict(data, params=params)
            if params:
                log.warning("this model's predict takes no params; ignoring %s", sorted(params))
            return self.model.predict(data)
        except self._mlflow_exception as exc:
            status = exc.get_http_status_code()
            if 400 <= status < 500:
                raise RequestError(400, schema_message(str(exc.message))) from None
            log.exception("the model raised an MLflow error")
            raise RequestError(500, f"the model failed: {exc.message}", "INTERNAL_ERROR") from None
        except Exception as exc:
            log.exception("the model raised %s", type(exc).__name__)
            raise RequestError(500, f"the model raised {_short(exc)}", "INTERNAL_ERROR") from None

    def serialize(self, raw: Any, unwrapped: bool = False) -> bytes:
        """The response body exactly as MLflow's ``predictions_to_json`` writes it."""
        try:
            predictions = self._pju._get_jsonable_obj(raw, pandas_orient="records")
            doc = predictions if unwrapped else {"predictions": predictions}
            return json.dumps(doc, cls=self._pju.NumpyEncoder).encode("utf-8")
        except Exception as exc:
            log.exception("cannot serialise the predictions")
            raise RequestError(
                500,
                f"cannot serialise the model's output ({type(raw).__name__}) as JSON: "
                f"{_short(exc)}",
                "INTERNAL_ERROR",
            ) from None

    def parse(
        self, body: bytes, content_type: str | None, defer: bool = False
    ) -> tuple[Any, dict[str, Any] | None, bool]:
        """An /invocations body as (data, params, unwrapped); raises RequestError. With
        ``defer`` (the batcher's caller), pandas JSON may come back as a batching.Pending,
        made a DataFrame when its batch runs."""
        media = parse_media_type(content_type)
        if media.mime == "application/json":
            return self._parse_json(body, media.orient, defer)
        if media.mime == NUMPY_SPLIT:
            return self._parse_numpy_split(body), None, True
        if media.mime == "text/csv":
            return self._parse_csv(body), None, False
        return self._parse_parquet(body), None, False

    def invoke(self, body: bytes, content_type: str | None) -> Response:
        """One /invocations request: bytes in, the HTTP response out (never raises)."""
        try:
            data, params, unwrapped = self.parse(body, content_type)
            raw = self.predict(data, params)
            return Response(200, self.serialize(raw, unwrapped))
        except RequestError as exc:
            return exc.response()
        except Exception as exc:  # a bug here must still answer, not drop the connection
            log.exception("unexpected error handling a request")
            return Response(500, error_body("INTERNAL_ERROR", _short(exc)))

    def signature_dict(self) -> dict[str, Any] | None:
        sig = getattr(self.metadata, "signature", None)
        return sig.to_dict() if sig is not None else None
