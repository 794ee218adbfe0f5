"""The MLmodel file: flavors, the python_function flavor, and the paths they name (which
must stay inside the folder). Reading never imports or unpickles anything."""

from __future__ import annotations

import ntpath
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from envbuild._paths import inside
from envbuild._yaml import YamlDoc
from envbuild.codes import EB102, EB103, EB105
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.flavors import FLAVORS, recorded_version
from envbuild.read._common import jsonable, str_or_none
from envbuild.read.signature import SchemaError, Signature, parse_params, parse_schema

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

# flavor name -> (version field, distribution name), from the one flavor table
FLAVOR_LIBRARIES: dict[str, tuple[str | None, str | None]] = {
    name: (row.version_field, row.library) for name, row in FLAVORS.items()
}


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
            "params": jsonable(self.params),
        }


@dataclass(frozen=True, kw_only=True)
class PyFunc:
    loader_module: str | None
    python_version: str | None
    data: str | None = None
    code: str | None = None
    model_path: str | None = None
    python_model: str | None = None
    model_code_path: str | None = None  # the file MLflow loads, relative to the folder
    model_code_path_recorded: str | None = None  # as MLmodel records it (often absolute)
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
            "model_code_path_recorded": self.model_code_path_recorded,
            "model_config": jsonable(self.model_config),
            "artifacts": jsonable(self.artifacts),
            "env": {
                "conda": self.env_conda,
                "virtualenv": self.env_virtualenv,
                "legacy": self.env_legacy,
            },
            "streamable": self.streamable,
            "predict_fn": self.predict_fn,
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


def parse_mlmodel(doc: YamlDoc, root: Path, problems: list[Finding]) -> MLmodel:
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
            EB102.at(
                doc.at(("flavors",)),
                "MLmodel has no 'flavors' mapping",
                hint="re-save the model with MLflow",
            )
        )
        flavors_raw = {}
    flavors: list[Flavor] = []
    pyfunc: PyFunc | None = None
    for name, params in flavors_raw.items():
        name = str(name)
        if not isinstance(params, dict):
            problems.append(
                EB102.at(
                    doc.at(("flavors", name)),
                    f"flavor {name!r} must be a mapping",
                    hint="re-save the model with MLflow",
                )
            )
            continue
        library, version_field, version = None, None, None
        if name in FLAVORS:
            version_field, library = FLAVOR_LIBRARIES[name]
            recorded = recorded_version(name, params)
            version = recorded[1] if recorded else None
        else:
            for key in sorted(params):
                if str(key).endswith("_version") and key != "python_version":
                    version_field, version = str(key), str_or_none(params[key])
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
                EB105.at(
                    doc.at(("signature",)),
                    "signature must be a mapping",
                    hint="re-save the model with MLflow",
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
                except SchemaError as exc:
                    problems.append(
                        EB105.at(
                            doc.at(("signature", key)),
                            f"invalid signature {key}: {exc}",
                            hint="re-log the model with mlflow.models.infer_signature",
                        )
                    )
                    parts[key] = None
            signature = Signature(
                inputs=parts["inputs"], outputs=parts["outputs"], params=parts["params"] or ()
            )
    size = data.get("model_size_bytes")
    info = data.get("saved_input_example_info")
    return MLmodel(
        artifact_path=str_or_none(data.get("artifact_path")),
        flavors=tuple(flavors),
        pyfunc=pyfunc,
        model_uuid=str_or_none(data.get("model_uuid")),
        model_id=str_or_none(data.get("model_id")),
        run_id=str_or_none(data.get("run_id")),
        utc_time_created=str_or_none(data.get("utc_time_created")),
        mlflow_version=str_or_none(data.get("mlflow_version")),
        signature=signature,
        saved_input_example_info=info if isinstance(info, dict) else None,
        model_size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        metadata=data.get("metadata"),
        databricks_runtime=str_or_none(data.get("databricks_runtime")),
        resources=data.get("resources"),
        env_vars=tuple(str(v) for v in data.get("env_vars") or () if v is not None)
        if isinstance(data.get("env_vars"), list)
        else (),
        prompts=tuple(str(v) for v in data.get("prompts") or ())
        if isinstance(data.get("prompts"), list)
        else (),
        extra={str(k): v for k, v in data.items() if str(k) not in KNOWN_FIELDS},
    )


def loaded_code_path(value: str) -> str:
    """The file MLflow loads for a ``model_code_path``: the file of that name inside the
    model folder (``os.path.join(model_path, os.path.basename(model_code_path))`` in
    mlflow/pyfunc/model.py and mlflow/langchain/model.py). MLflow records the author's
    absolute path by design; a relative value is kept as written, so ``..`` and symbolic
    links out of the folder are still refused (EB104)."""
    if os.path.isabs(value) or PurePosixPath(value).is_absolute() or ntpath.isabs(value):
        return ntpath.basename(value)  # either separator: a model saved on Windows too
    return value


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
        problems.append(EB103.at(where, missing[0], hint=missing[1]))


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
        if key == "model_code_path":  # langchain before MLflow 2.15 kept it here
            _check_code_path(root, value, doc.at(("flavors", name, key)), problems)
            continue
        _check_path(
            root,
            value,
            doc.at(("flavors", name, key)),
            problems,
            missing=_missing_file(value) if key in _FLAVOR_DATA_KEYS else None,
        )
        if key in _FLAVOR_DATA_KEYS:
            where = doc.at(("flavors", name, key))
            for gap in _saved_model_gaps(root, value):
                problems.append(
                    EB103.at(
                        where,
                        gap,
                        hint="copy the SavedModel's variables.data-* files too (a file of "
                        "4 MiB and more left out of a copy, or Git LFS content never "
                        "pulled), or re-save the model",
                    )
                )


_SHARD = re.compile(r"^variables\.data-(\d{5})-of-(\d{5})$")


def _saved_model_gaps(root: Path, value: str) -> list[str]:
    """A TensorFlow SavedModel under the flavor's data folder whose variables.index is
    there but not the variables.data-* shards it indexes: TensorFlow cannot restore its
    weights, so the load fails. One message per incomplete variables folder."""
    try:
        base = inside(root, value, location=Location(file=MLMODEL))
    except InputError:
        return []  # _check_path reported it
    if not base.is_dir():
        return []
    gaps = []
    for index in sorted(base.glob("**/variables/variables.index"))[:20]:
        folder = index.parent
        shards = {m.groups() for f in folder.iterdir() if (m := _SHARD.match(f.name))}
        totals = {int(total) for _, total in shards}
        total = max(totals, default=1)
        want = {f"variables.data-{i:05d}-of-{total:05d}" for i in range(total)}
        have = {f"variables.data-{i}-of-{t}" for i, t in shards}
        absent = sorted(want - have)
        if absent:
            rel = index.parent.relative_to(root).as_posix()
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            gaps.append(
                f"{rel}/variables.index is there but not {absent[0]}{more}: the SavedModel's "
                "weights are missing"
            )
    return gaps


def _check_code_path(root: Path, value: str, where: Location, problems: list[Finding]) -> None:
    """models-from-code: the file MLflow loads (loaded_code_path) must be in the folder."""
    loaded = loaded_code_path(value)
    _check_path(
        root,
        loaded,
        where,
        problems,
        missing=(
            f"names {value!r}; MLflow loads {loaded!r} from the model folder, which is missing"
            if loaded != value
            else _missing_file(value)[0],
            "restore the model's files or re-save the model",
        ),
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
                    EB102.at(
                        doc.at((*base, "env", key)),
                        f"env.{key} must be a file name",
                        hint="re-save the model with MLflow",
                    )
                )
        conda = env.get("conda") if isinstance(env.get("conda"), str) else None
        virtualenv = env.get("virtualenv") if isinstance(env.get("virtualenv"), str) else None
    elif env is not None:
        problems.append(
            EB102.at(
                doc.at((*base, "env")),
                "env must be a file name or {conda:, virtualenv:}",
                hint="re-save the model with MLflow",
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
                EB102.at(where, f"{key} must be a path", hint="re-save the model with MLflow")
            )
            continue
        if key == "model_code_path":
            _check_code_path(root, value, where, problems)
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
    code_path = params.get("model_code_path")
    python_version = str_or_none(params.get("python_version"))
    if isinstance(params.get("python_version"), float):  # python_version: 3.10 -> "3.10"
        python_version = doc.text((*base, "python_version")) or python_version
    if python_version is not None and not re.fullmatch(
        r"\d+\.\d+(\.\d+)?([a-z]+\d*)?", python_version
    ):
        problems.append(
            EB102.at(
                doc.at((*base, "python_version")),
                f"python_version {python_version!r} is not a version",
                hint="write it as 3.11.7",
            )
        )
        python_version = None
    return PyFunc(
        loader_module=str_or_none(params.get("loader_module")),
        python_version=python_version,
        data=str_or_none(params.get("data")),
        code=str_or_none(params.get("code")),
        model_path=str_or_none(params.get("model_path")),
        python_model=str_or_none(params.get("python_model")),
        model_code_path=loaded_code_path(code_path) if isinstance(code_path, str) else None,
        model_code_path_recorded=code_path if isinstance(code_path, str) else None,
        model_config=params.get("model_config"),
        artifacts=artifacts if isinstance(artifacts, dict) else {},
        env_conda=conda,
        env_virtualenv=virtualenv,
        env_legacy=legacy,
        streamable=params.get("streamable") if isinstance(params.get("streamable"), bool) else None,
        predict_fn=str_or_none(params.get("predict_fn")),
    )
