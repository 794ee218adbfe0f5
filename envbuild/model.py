"""Reading an MLflow model folder: the MLmodel file, its flavors, signature, input example
and environment files. Reading never imports or unpickles anything."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envbuild._compat import StrEnum
from envbuild._paths import inside
from envbuild._yaml import YamlDoc, load_yaml
from envbuild.contents import LFS_HINT, lfs_finding, lfs_pointer_at, parse_lfs_pointer
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Finding, Location, Severity, unique
from envbuild.spec import ModelEnv, PythonPin, read_model_env

MLMODEL = "MLmodel"

# Fields MLflow 1.x-3.x writes at the top of MLmodel; anything else is kept in `extra`.
KNOWN_FIELDS = (
    "artifact_path",
    "flavors",
    "model_uuid",
    "model_id",
    "run_id",
    "utc_time_created",
    "mlflow_version",
    "signature",
    "saved_input_example_info",
    "model_size_bytes",
    "metadata",
    "databricks_runtime",
    "resources",
    "env_vars",
    "prompts",
    "auth_policy",
    "model_config",
)

# flavor name -> (version field, distribution name)
FLAVOR_LIBRARIES: dict[str, tuple[str, str]] = {
    "sklearn": ("sklearn_version", "scikit-learn"),
    "xgboost": ("xgb_version", "xgboost"),
    "lightgbm": ("lgb_version", "lightgbm"),
    "catboost": ("catboost_version", "catboost"),
    "pytorch": ("pytorch_version", "torch"),
    "tensorflow": ("tensorflow_version", "tensorflow"),
    "keras": ("keras_version", "keras"),
    "fastai": ("fastai_version", "fastai"),
    "statsmodels": ("statsmodels_version", "statsmodels"),
    "prophet": ("prophet_version", "prophet"),
    "spacy": ("spacy_version", "spacy"),
    "transformers": ("transformers_version", "transformers"),
    "sentence_transformers": ("sentence_transformers_version", "sentence-transformers"),
    "onnx": ("onnx_version", "onnx"),
    "h2o": ("h2o_version", "h2o"),
    "paddle": ("paddle_version", "paddlepaddle"),
    "spark": ("pyspark_version", "pyspark"),
    "pmdarima": ("pmdarima_version", "pmdarima"),
    "diviner": ("diviner_version", "diviner"),
    "mleap": ("mleap_version", "mleap"),
    "langchain": ("langchain_version", "langchain"),
    "llama_index": ("llama_index_version", "llama-index"),
    "openai": ("openai_version", "openai"),
    "dspy": ("dspy_version", "dspy"),
    "johnsnowlabs": ("johnsnowlabs_version", "johnsnowlabs"),
}


# --------------------------------------------------------------------------------------
# signature


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


class _SchemaError(ValueError):
    pass


def _parse_type(raw: Any) -> DataType:
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise _SchemaError(f"a type must be a name or {{'type': ...}}, got {raw!r}")
    try:
        kind = ColType(raw["type"])
    except ValueError:
        raise _SchemaError(f"unknown type {raw['type']!r}") from None
    if kind is ColType.ARRAY:
        if "items" not in raw:
            raise _SchemaError("an array type needs 'items'")
        return DataType(kind=kind, items=_parse_type(raw["items"]))
    if kind is ColType.OBJECT:
        props = raw.get("properties") or {}
        if not isinstance(props, Mapping):
            raise _SchemaError("an object type needs 'properties' as a mapping")
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
            raise _SchemaError("a map type needs 'values'")
        return DataType(kind=kind, values=_parse_type(raw["values"]))
    return DataType(kind=kind)


def parse_schema(raw: Any) -> Schema:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _SchemaError(f"not JSON: {exc.msg}") from None
    if not isinstance(raw, list):
        raise _SchemaError("a schema must be a JSON list of column or tensor specs")
    if raw and all(isinstance(s, Mapping) and s.get("type") == "tensor" for s in raw):
        tensors = []
        for spec in raw:
            ts = spec.get("tensor-spec")
            if not isinstance(ts, Mapping) or "dtype" not in ts or "shape" not in ts:
                raise _SchemaError("a tensor spec needs 'tensor-spec' with 'dtype' and 'shape'")
            shape = ts["shape"]
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape
            ):
                raise _SchemaError(f"tensor shape must be a list of integers >= -1, got {shape!r}")
            dtype = str(ts["dtype"])
            if dtype not in TENSOR_DTYPES:
                raise _SchemaError(f"unknown tensor dtype {dtype!r}")
            tensors.append(TensorSpec(name=spec.get("name"), dtype=dtype, shape=tuple(shape)))
        return Schema(kind="tensors", tensors=tuple(tensors))
    columns = []
    for spec in raw:
        if not isinstance(spec, Mapping):
            raise _SchemaError(f"a column spec must be a mapping, got {spec!r}")
        if spec.get("type") == "tensor":
            raise _SchemaError("a schema cannot mix tensor and column specs")
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
            raise _SchemaError(f"not JSON: {exc.msg}") from None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _SchemaError("params must be a JSON list")
    out = []
    for spec in raw:
        if not isinstance(spec, Mapping) or "name" not in spec or "type" not in spec:
            raise _SchemaError("a param spec needs 'name' and 'type'")
        shape = spec.get("shape")
        if shape is not None and (
            not isinstance(shape, list) or not all(isinstance(d, int) for d in shape)
        ):
            raise _SchemaError(f"param shape must be null or a list of integers, got {shape!r}")
        out.append(
            ParamSpec(
                name=str(spec["name"]),
                type=_parse_type(spec["type"]),
                default=spec.get("default"),
                shape=tuple(shape) if shape is not None else None,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------------------
# flavors


@dataclass(frozen=True, kw_only=True)
class Flavor:
    """One entry of ``flavors``; ``version`` is its library's recorded version when the
    flavor records one (``sklearn_version``, ``xgb_version``, ...)."""

    name: str
    params: Mapping[str, Any]
    library: str | None = None
    version_field: str | None = None
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "library": self.library,
            "version_field": self.version_field,
            "version": self.version,
            "params": _jsonable(self.params),
        }


@dataclass(frozen=True, kw_only=True)
class PyFunc:
    loader_module: str | None
    python_version: str | None
    data: str | None = None
    code: str | None = None
    model_path: str | None = None
    python_model: str | None = None
    model_code_path: str | None = None
    model_config: Any = None
    artifacts: Mapping[str, Any] = field(default_factory=dict)
    env_conda: str | None = None
    env_virtualenv: str | None = None
    env_legacy: bool = False  # `env: conda.yaml` rather than `env: {conda:, virtualenv:}`
    streamable: bool | None = None
    predict_fn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "loader_module": self.loader_module,
            "python_version": self.python_version,
            "data": self.data,
            "code": self.code,
            "model_path": self.model_path,
            "python_model": self.python_model,
            "model_code_path": self.model_code_path,
            "model_config": _jsonable(self.model_config),
            "artifacts": _jsonable(self.artifacts),
            "env": {
                "conda": self.env_conda,
                "virtualenv": self.env_virtualenv,
                "legacy": self.env_legacy,
            },
            "streamable": self.streamable,
            "predict_fn": self.predict_fn,
        }


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


@dataclass(frozen=True, kw_only=True)
class MLmodel:
    artifact_path: str | None = None
    flavors: tuple[Flavor, ...] = ()
    pyfunc: PyFunc | None = None
    model_uuid: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    utc_time_created: str | None = None
    mlflow_version: str | None = None
    signature: Signature | None = None
    saved_input_example_info: Mapping[str, Any] | None = None
    model_size_bytes: int | None = None
    metadata: Any = None
    databricks_runtime: str | None = None
    resources: Any = None
    env_vars: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def flavor(self, name: str) -> Flavor | None:
        return next((f for f in self.flavors if f.name == name), None)


@dataclass(frozen=True, kw_only=True)
class ModelFolder:
    """A model folder read completely. ``findings`` are problems that do not stop reading
    (an input example that does not match the signature, a Python mismatch, ...)."""

    path: Path
    mlmodel: MLmodel
    env: ModelEnv
    input_example: InputExample | None
    findings: tuple[Finding, ...] = ()

    @property
    def python_version(self) -> str | None:
        return self.env.spec.python.version if self.env.spec.python else None

    def to_json(self) -> dict[str, Any]:
        m = self.mlmodel
        return {
            "path": str(self.path),
            "mlmodel": {
                "artifact_path": m.artifact_path,
                "model_uuid": m.model_uuid,
                "model_id": m.model_id,
                "run_id": m.run_id,
                "utc_time_created": m.utc_time_created,
                "mlflow_version": m.mlflow_version,
                "model_size_bytes": m.model_size_bytes,
                "metadata": _jsonable(m.metadata),
                "databricks_runtime": m.databricks_runtime,
                "resources": _jsonable(m.resources),
                "env_vars": list(m.env_vars),
                "prompts": list(m.prompts),
                "saved_input_example_info": _jsonable(m.saved_input_example_info),
                "extra": _jsonable(m.extra),
            },
            "flavors": [f.to_json() for f in m.flavors],
            "python_function": m.pyfunc.to_json() if m.pyfunc else None,
            "python_version": self.python_version,
            "signature": m.signature.to_json() if m.signature else None,
            "input_example": self.input_example.to_json() if self.input_example else None,
            "environment": self.env.spec.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


# --------------------------------------------------------------------------------------
# reading


def _err(
    code: str, message: str, hint: str, loc: Location, severity: Severity = Severity.ERROR
) -> Finding:
    return Finding(code=code, severity=severity, message=message, hint=hint, location=loc)


def read_model(path: str | Path) -> ModelFolder:
    """Read a model folder. Raises ProblemsError (exit 2) listing every input problem;
    returns the folder with non-fatal findings otherwise."""
    root = Path(path)
    if not root.exists():
        raise InputError(
            "no such file or folder",
            hint="pass the path of an MLflow model folder (the one holding MLmodel)",
            location=Location(file=str(root)),
            code="EB100",
        )
    if root.is_file() and root.name == MLMODEL:
        root = root.parent
    if not root.is_dir():
        raise InputError(
            "not a folder",
            hint="pass the MLflow model folder, the one holding MLmodel",
            location=Location(file=str(root)),
            code="EB100",
        )
    mlmodel_path = root / MLMODEL
    if not mlmodel_path.is_file():
        nested = sorted(p.parent for p in root.glob("*/MLmodel"))
        hint = (
            f"did you mean {nested[0]}?"
            if nested
            else "pass the folder MLflow saved (mlflow.<flavor>.save_model) or downloaded"
        )
        raise InputError(
            f"no MLmodel file in {root}", hint=hint, location=Location(file=MLMODEL), code="EB100"
        )
    try:
        raw = mlmodel_path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read MLmodel: {exc.strerror}", location=Location(file=MLMODEL), code="EB100"
        ) from None
    pointer = parse_lfs_pointer(raw)
    if pointer is not None:
        raise InputError(
            lfs_finding(MLMODEL, pointer).message,
            hint=LFS_HINT,
            location=Location(file=MLMODEL),
            code="EB107",
        )
    doc = load_yaml(raw, file=MLMODEL)
    problems: list[Finding] = []
    findings: list[Finding] = []
    mlmodel = _parse_mlmodel(doc, root, problems)
    env = read_model_env(
        root,
        conda_path=mlmodel.pyfunc.env_conda if mlmodel.pyfunc else None,
        virtualenv_path=mlmodel.pyfunc.env_virtualenv if mlmodel.pyfunc else None,
        mlmodel_python=PythonPin(
            version=mlmodel.pyfunc.python_version,
            location=doc.at(("flavors", "python_function", "python_version")),
        )
        if mlmodel.pyfunc and mlmodel.pyfunc.python_version
        else None,
        field_prefix="flavors.python_function.env."
        if mlmodel.pyfunc and not mlmodel.pyfunc.env_legacy
        else "flavors.python_function.",
    )
    problems.extend(p for p in env.problems if p.severity is Severity.ERROR)
    findings.extend(p for p in env.problems if p.severity is not Severity.ERROR)
    example = _read_input_example(doc, root, mlmodel, problems)
    if problems:
        raise ProblemsError(unique(_lfs_instead(root, problems)))
    if example is not None and mlmodel.signature is not None:
        findings.extend(check_example(example, mlmodel.signature))
    return ModelFolder(
        path=root, mlmodel=mlmodel, env=env, input_example=example, findings=tuple(findings)
    )


def _lfs_instead(root: Path, problems: list[Finding]) -> list[Finding]:
    """A file that failed to parse because it is a Git LFS pointer gets the error that says
    so (EB107, run git lfs pull) instead of "not valid YAML/JSON"."""
    out = []
    for p in problems:
        rel = p.location.file
        pointer = lfs_pointer_at(root / rel) if rel and not Path(rel).is_absolute() else None
        out.append(lfs_finding(rel, pointer) if rel and pointer is not None else p)
    return out


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_mlmodel(doc: YamlDoc, root: Path, problems: list[Finding]) -> MLmodel:
    data = doc.data
    if not isinstance(data, dict):
        raise InputError(
            "MLmodel must be a YAML mapping with a 'flavors' section",
            hint="re-save the model with MLflow",
            location=Location(file=MLMODEL, line=1),
            code="EB102",
        )
    flavors_raw = data.get("flavors")
    if not isinstance(flavors_raw, dict) or not flavors_raw:
        problems.append(
            _err(
                "EB102",
                "MLmodel has no 'flavors' mapping",
                "re-save the model with MLflow",
                doc.at(("flavors",)),
            )
        )
        flavors_raw = {}
    flavors: list[Flavor] = []
    pyfunc: PyFunc | None = None
    for name, params in flavors_raw.items():
        name = str(name)
        if not isinstance(params, dict):
            problems.append(
                _err(
                    "EB102",
                    f"flavor {name!r} must be a mapping",
                    "re-save the model with MLflow",
                    doc.at(("flavors", name)),
                )
            )
            continue
        library, version_field, version = None, None, None
        if name in FLAVOR_LIBRARIES:
            version_field, library = FLAVOR_LIBRARIES[name]
            version = _str(params.get(version_field))
        else:
            for key in sorted(params):
                if str(key).endswith("_version") and key != "python_version":
                    version_field, version = str(key), _str(params[key])
                    break
        if name != "python_function":
            _check_flavor_paths(doc, name, params, root, problems)
        flavors.append(
            Flavor(
                name=name,
                params=params,
                library=library,
                version_field=version_field,
                version=version,
            )
        )
        if name == "python_function":
            pyfunc = _parse_pyfunc(doc, params, root, problems)
    signature = None
    sig_raw = data.get("signature")
    if sig_raw is not None:
        if not isinstance(sig_raw, dict):
            problems.append(
                _err(
                    "EB105",
                    "signature must be a mapping",
                    "re-save the model with MLflow",
                    doc.at(("signature",)),
                )
            )
        else:
            parts: dict[str, Any] = {}
            for key in ("inputs", "outputs", "params"):
                if sig_raw.get(key) is None:
                    parts[key] = None
                    continue
                try:
                    parts[key] = (
                        parse_params(sig_raw[key])
                        if key == "params"
                        else parse_schema(sig_raw[key])
                    )
                except _SchemaError as exc:
                    problems.append(
                        _err(
                            "EB105",
                            f"invalid signature {key}: {exc}",
                            "re-log the model with mlflow.models.infer_signature",
                            doc.at(("signature", key)),
                        )
                    )
                    parts[key] = None
            signature = Signature(
                inputs=parts["inputs"], outputs=parts["outputs"], params=parts["params"] or ()
            )
    size = data.get("model_size_bytes")
    info = data.get("saved_input_example_info")
    return MLmodel(
        artifact_path=_str(data.get("artifact_path")),
        flavors=tuple(flavors),
        pyfunc=pyfunc,
        model_uuid=_str(data.get("model_uuid")),
        model_id=_str(data.get("model_id")),
        run_id=_str(data.get("run_id")),
        utc_time_created=_str(data.get("utc_time_created")),
        mlflow_version=_str(data.get("mlflow_version")),
        signature=signature,
        saved_input_example_info=info if isinstance(info, dict) else None,
        model_size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        metadata=data.get("metadata"),
        databricks_runtime=_str(data.get("databricks_runtime")),
        resources=data.get("resources"),
        env_vars=tuple(str(v) for v in data.get("env_vars") or () if v is not None)
        if isinstance(data.get("env_vars"), list)
        else (),
        prompts=tuple(str(v) for v in data.get("prompts") or ())
        if isinstance(data.get("prompts"), list)
        else (),
        extra={str(k): v for k, v in data.items() if str(k) not in KNOWN_FIELDS},
    )


def _missing_file(value: str) -> tuple[str, str]:
    return f"names {value!r}, which is missing", "restore the model's files or re-save the model"


def _check_path(
    root: Path,
    value: str,
    where: Location,
    problems: list[Finding],
    *,
    missing: tuple[str, str] | None,
) -> None:
    """A path the MLmodel names must stay inside the folder (EB104); with ``missing``
    (message, hint) it must also exist (EB103)."""
    try:
        target = inside(root, value, location=where)
    except InputError as exc:
        problems.extend(exc.problems)
        return
    if missing is not None and not target.exists():
        problems.append(_err("EB103", missing[0], missing[1], where))


_FLAVOR_DATA_KEYS = ("data", "pickled_model", "model_data", "saved_model_dir", "model_file")


def _check_flavor_paths(
    doc: YamlDoc, name: str, params: dict[str, Any], root: Path, problems: list[Finding]
) -> None:
    """Other flavors name their files too (sklearn's pickled_model, xgboost's data, ...):
    those must stay inside the folder and, for the known data keys, exist."""
    for key, value in params.items():
        key = str(key)
        if not isinstance(value, str) or not (
            key in _FLAVOR_DATA_KEYS or key == "code" or key.endswith(("_path", "_file"))
        ):
            continue
        _check_path(
            root,
            value,
            doc.at(("flavors", name, key)),
            problems,
            missing=_missing_file(value) if key in _FLAVOR_DATA_KEYS else None,
        )


def _parse_pyfunc(
    doc: YamlDoc, params: dict[str, Any], root: Path, problems: list[Finding]
) -> PyFunc:
    base = ("flavors", "python_function")
    env = params.get("env")
    conda = virtualenv = None
    legacy = False
    if isinstance(env, str):
        conda, legacy = env, True
    elif isinstance(env, dict):
        for key in ("conda", "virtualenv"):
            if env.get(key) is not None and not isinstance(env.get(key), str):
                problems.append(
                    _err(
                        "EB102",
                        f"env.{key} must be a file name",
                        "re-save the model with MLflow",
                        doc.at((*base, "env", key)),
                    )
                )
        conda = env.get("conda") if isinstance(env.get("conda"), str) else None
        virtualenv = env.get("virtualenv") if isinstance(env.get("virtualenv"), str) else None
    elif env is not None:
        problems.append(
            _err(
                "EB102",
                "env must be a file name or {conda:, virtualenv:}",
                "re-save the model with MLflow",
                doc.at((*base, "env")),
            )
        )
    # every path the flavor names must stay inside the folder; data paths must exist
    for key in ("data", "code", "model_path", "python_model", "model_code_path"):
        value = params.get(key)
        if value is None:
            continue
        where = doc.at((*base, key))
        if not isinstance(value, str):
            problems.append(
                _err("EB102", f"{key} must be a path", "re-save the model with MLflow", where)
            )
            continue
        _check_path(root, value, where, problems, missing=_missing_file(value))
    for key, value in (("conda", conda), ("virtualenv", virtualenv)):
        if value is None:
            continue
        field_path = (*base, "env") if legacy else (*base, "env", key)
        _check_path(root, value, doc.at(field_path), problems, missing=None)
    artifacts = params.get("artifacts") or {}
    if isinstance(artifacts, dict):
        for name, spec in artifacts.items():
            rel = spec.get("path") if isinstance(spec, dict) else spec
            if not isinstance(rel, str):
                continue
            where = doc.at(
                (*base, "artifacts", str(name), "path")
                if isinstance(spec, dict)
                else (*base, "artifacts", str(name))
            )
            _check_path(
                root,
                rel,
                where,
                problems,
                missing=(
                    f"artifact {name!r} names {rel!r}, which is missing",
                    "restore the model's artifacts or re-save the model",
                ),
            )
    for key, value in params.items():
        # other flavors of pyfunc-style loaders also name data files, e.g. 'model_data'
        if (
            key.endswith("_path")
            and key not in ("model_path", "model_code_path")
            and isinstance(value, str)
        ):
            _check_path(root, value, doc.at((*base, key)), problems, missing=None)
    python_version = _str(params.get("python_version"))
    if isinstance(params.get("python_version"), float):  # python_version: 3.10 -> "3.10"
        python_version = doc.text((*base, "python_version")) or python_version
    if python_version is not None and not re.fullmatch(
        r"\d+\.\d+(\.\d+)?([a-z]+\d*)?", python_version
    ):
        problems.append(
            _err(
                "EB102",
                f"python_version {python_version!r} is not a version",
                "write it as 3.11.7",
                doc.at((*base, "python_version")),
            )
        )
        python_version = None
    return PyFunc(
        loader_module=_str(params.get("loader_module")),
        python_version=python_version,
        data=_str(params.get("data")),
        code=_str(params.get("code")),
        model_path=_str(params.get("model_path")),
        python_model=_str(params.get("python_model")),
        model_code_path=_str(params.get("model_code_path")),
        model_config=params.get("model_config"),
        artifacts=artifacts if isinstance(artifacts, dict) else {},
        env_conda=conda,
        env_virtualenv=virtualenv,
        env_legacy=legacy,
        streamable=params.get("streamable") if isinstance(params.get("streamable"), bool) else None,
        predict_fn=_str(params.get("predict_fn")),
    )


def _read_json(root: Path, rel: str, where: Location, problems: list[Finding]) -> Any:
    try:
        target = inside(root, rel, location=where)
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    if not target.is_file():
        problems.append(
            _err(
                "EB103", f"{rel} is missing", "restore the input example or re-log the model", where
            )
        )
        return None
    try:
        return json.loads(target.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        problems.append(
            _err(
                "EB106",
                f"{rel} is not valid JSON",
                "re-log the model with a fresh input_example",
                Location(file=rel, line=line),
            )
        )
        return None


def _read_input_example(
    doc: YamlDoc, root: Path, mlmodel: MLmodel, problems: list[Finding]
) -> InputExample | None:
    info = mlmodel.saved_input_example_info
    if info is None:
        return None
    rel = info.get("artifact_path")
    if not isinstance(rel, str):
        problems.append(
            _err(
                "EB102",
                "saved_input_example_info has no artifact_path",
                "re-log the model",
                doc.at(("saved_input_example_info",)),
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
        type=_str(info.get("type")),
        pandas_orient=_str(info.get("pandas_orient")),
        data=data,
        serving_file=serving if isinstance(serving, str) else None,
        serving_data=serving_data,
    )


# --------------------------------------------------------------------------------------
# input example against signature


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


def check_example(example: InputExample, signature: Signature) -> list[Finding]:
    """Compare the saved input example with the signature's inputs; each mismatch is a
    finding (EB120) naming the example file."""
    inputs = signature.inputs
    if inputs is None or example.data is None:
        return []
    out: list[Finding] = []
    loc = Location(file=example.file)
    hint = (
        "re-log the model with an input_example that matches its signature (or fix the signature)"
    )
    if isinstance(example.data, dict) and isinstance(example.data.get("params"), dict):
        known = {p.name: p for p in signature.params}
        for name, value in example.data["params"].items():
            param = known.get(str(name))
            if param is None:
                out.append(
                    _err(
                        "EB120",
                        f"param {name!r} of the input example is not in the signature",
                        hint,
                        loc,
                    )
                )
            elif param.shape is None and not _value_ok(param.type, value):
                out.append(
                    _err(
                        "EB120",
                        f"param {name!r} is {param.type.kind.value} in the signature, but the example holds {value!r}",
                        hint,
                        loc,
                    )
                )
    if inputs.kind == "columns":
        table = _columns_of(example)
        if table is None:
            if len(inputs.columns) == 1 or all(c.name is None for c in inputs.columns):
                return out
            return [
                _err(
                    "EB120",
                    "the input example is not a table, but the signature has columns",
                    hint,
                    loc,
                )
            ]
        names, rows = table
        if names is None:
            width = {len(r) for r in rows}
            if width and width != {len(inputs.columns)}:
                out.append(
                    _err(
                        "EB120",
                        f"the input example has {sorted(width)} columns, the signature {len(inputs.columns)}",
                        hint,
                        loc,
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
                        _err(
                            "EB120",
                            f"required column {col.name!r} is missing from the input example",
                            hint,
                            loc,
                        )
                    )
                continue
            i = index[col.name]
            bad = [r[i] for r in rows if i < len(r) and not _value_ok(col.type, r[i])]
            if bad:
                out.append(
                    _err(
                        "EB120",
                        f"column {col.name!r} is {col.type.kind.value} in the signature, but the example holds {bad[0]!r}",
                        hint,
                        loc,
                    )
                )
            if col.required and any(i < len(r) and r[i] is None for r in rows):
                out.append(
                    _err(
                        "EB120",
                        f"required column {col.name!r} has a null in the input example",
                        hint,
                        loc,
                    )
                )
        return out
    # tensors
    value = _tensor_of(example)
    if len(inputs.tensors) == 1:
        pairs = [(inputs.tensors[0], value)]
    elif isinstance(value, dict):
        pairs = [(t, value.get(t.name or "")) for t in inputs.tensors]
    else:
        return [
            _err(
                "EB120",
                "the signature has several named tensors, the input example is not a mapping",
                hint,
                loc,
            )
        ]
    for spec, tensor in pairs:
        label = f"tensor {spec.name!r}" if spec.name else "the input tensor"
        if tensor is None:
            out.append(_err("EB120", f"{label} is missing from the input example", hint, loc))
            continue
        shape = _shape(tensor)
        if len(shape) != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, shape, strict=False)
        ):
            out.append(
                _err(
                    "EB120",
                    f"{label} has shape {list(shape)}, the signature {list(spec.shape)}",
                    hint,
                    loc,
                )
            )
            continue
        leaves = _leaves(tensor)
        if spec.dtype.startswith(("int", "uint")) and any(
            (isinstance(v, float) and not v.is_integer()) or isinstance(v, str) for v in leaves
        ):
            out.append(
                _err(
                    "EB120",
                    f"{label} is {spec.dtype} in the signature, but the example holds non-integers",
                    hint,
                    loc,
                )
            )
        elif spec.dtype.startswith("float") and any(isinstance(v, str) for v in leaves):
            out.append(
                _err(
                    "EB120",
                    f"{label} is {spec.dtype} in the signature, but the example holds text",
                    hint,
                    loc,
                )
            )
    return out
