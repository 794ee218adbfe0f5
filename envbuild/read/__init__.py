"""Stage "read": a model folder -> ModelFolder. Reads the MLmodel file, its flavors,
signature, input example and environment files; never network, subprocesses, imports
or unpickling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._yaml import load_yaml
from envbuild.codes import EB114
from envbuild.contents import LFS_HINT, lfs_finding, lfs_pointer_at, parse_lfs_pointer
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Finding, Location, Severity, unique
from envbuild.read._common import jsonable
from envbuild.read.conda_yaml import (
    CondaFile,
    conda_python_version,
    parse_conda_doc,
    parse_conda_spec,
    read_conda_yaml,
)
from envbuild.read.env import (
    CondaDep,
    EnvFrom,
    EnvSpec,
    PipOption,
    PythonPin,
    ReqKind,
    Requirement,
)
from envbuild.read.example import InputExample, check_example, read_input_example
from envbuild.read.mlmodel import (
    FLAVOR_LIBRARIES,
    MLMODEL,
    Flavor,
    MLmodel,
    PyFunc,
    parse_mlmodel,
)
from envbuild.read.model_env import ModelEnv, read_model_env
from envbuild.read.python_env import PythonEnvFile, read_python_env
from envbuild.read.requirements_txt import (
    ParsedLine,
    RequirementsFile,
    parse_line,
    parse_requirements_text,
    read_requirements,
)
from envbuild.read.signature import (
    ColSpec,
    ColType,
    DataType,
    ParamSpec,
    Schema,
    Signature,
    TensorSpec,
    parse_params,
    parse_schema,
)
from envbuild.read.workspace import WorkspaceEnv, read_workspace_env

__all__ = [
    "FLAVOR_LIBRARIES",
    "MLMODEL",
    "ColSpec",
    "ColType",
    "CondaDep",
    "CondaFile",
    "DataType",
    "EnvFrom",
    "EnvSpec",
    "Flavor",
    "InputExample",
    "MLmodel",
    "ModelEnv",
    "ModelFolder",
    "ParamSpec",
    "ParsedLine",
    "PipOption",
    "PyFunc",
    "PythonEnvFile",
    "PythonPin",
    "ReqKind",
    "Requirement",
    "RequirementsFile",
    "Schema",
    "Signature",
    "TensorSpec",
    "WorkspaceEnv",
    "check_example",
    "conda_python_version",
    "parse_conda_doc",
    "parse_conda_spec",
    "parse_line",
    "parse_params",
    "parse_requirements_text",
    "parse_schema",
    "read_conda_yaml",
    "read_model",
    "read_model_env",
    "read_python_env",
    "read_requirements",
    "read_workspace_env",
]


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
                "metadata": jsonable(m.metadata),
                "databricks_runtime": m.databricks_runtime,
                "resources": jsonable(m.resources),
                "env_vars": list(m.env_vars),
                "prompts": list(m.prompts),
                "saved_input_example_info": jsonable(m.saved_input_example_info),
                "extra": jsonable(m.extra),
            },
            "flavors": [f.to_json() for f in m.flavors],
            "python_function": m.pyfunc.to_json() if m.pyfunc else None,
            "python_version": self.python_version,
            "signature": m.signature.to_json() if m.signature else None,
            "input_example": self.input_example.to_json() if self.input_example else None,
            "environment": {
                **self.env.spec.to_json(),
                "followed": self.env.followed,
                "why": self.env.why,
            },
            "findings": [f.to_json() for f in self.findings],
        }


# folders a model is never found in, when looking below the folder given
_NOT_SEARCHED = {"node_modules", "site-packages", "__pycache__", "mlruns", "venv", "env"}


def nested_models(root: Path, *, depth: int = 4, limit: int = 2000) -> list[Path]:
    """The model folders (holding MLmodel) below ``root``, at most ``depth`` levels down,
    hidden folders, virtualenvs and mlruns/ left out, at most ``limit`` folders looked at."""
    out: list[Path] = []
    level, seen = [root], 0
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            for child in children:
                if child.name.startswith(".") or child.name in _NOT_SEARCHED:
                    continue
                seen += 1
                if seen > limit:
                    return out
                if (child / MLMODEL).is_file():
                    out.append(child)  # a model's own subfolders are its files
                elif not (child / "pyvenv.cfg").is_file():
                    below.append(child)
        level = below
    return out


def read_model(path: str | Path, *, env_from: EnvFrom | str = EnvFrom.AUTO) -> ModelFolder:
    """Read a model folder. Raises ProblemsError (exit 2) listing every input problem;
    returns the folder with non-fatal findings otherwise. ``env_from`` chooses the
    environment file followed (read/model_env.py)."""
    try:
        env_from = EnvFrom(env_from)
    except ValueError:
        raise InputError(
            f"--env-from {env_from!r} is not one of {', '.join(e.value for e in EnvFrom)}",
            location=Location(field="--env-from"),
            code="EB100",
        ) from None
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
    found: list[Finding] = []
    if not mlmodel_path.is_file():
        nested = nested_models(root)
        if len(nested) != 1:
            shown = ", ".join(str(n) for n in nested[:5]) + (", ..." if len(nested) > 5 else "")
            hint = (
                f"pass one of the model folders below it: {shown}"
                if nested
                else "pass the folder MLflow saved (mlflow.<flavor>.save_model) or downloaded"
            )
            raise InputError(
                f"no MLmodel file in {root}",
                hint=hint,
                location=Location(file=MLMODEL),
                code="EB100",
            )
        given, root = root, nested[0]
        mlmodel_path = root / MLMODEL
        rel = root.relative_to(given).as_posix()
        found.append(
            EB114.at(
                Location(file=f"{rel}/{MLMODEL}"),
                f"{given} holds no MLmodel; the one model below it is {rel}/: envbuild reads "
                f"that folder, and nothing else of {given} is read or packaged",
                hint=f"pass {root} to say so",
            )
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
    findings: list[Finding] = list(found)
    mlmodel = parse_mlmodel(doc, root, problems)
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
        env_from=env_from,
        mlmodel=mlmodel,
    )
    problems.extend(p for p in env.problems if p.severity is Severity.ERROR)
    findings.extend(p for p in env.problems if p.severity is not Severity.ERROR)
    example = read_input_example(doc, root, mlmodel, problems)
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
