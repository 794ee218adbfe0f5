"""The model's environment, all files together: which file wins (MLflow's precedence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envbuild._paths import inside
from envbuild.codes import EB103
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.read.conda_yaml import CondaFile, read_conda_yaml
from envbuild.read.env import EnvSpec, PythonPin
from envbuild.read.python_env import PythonEnvFile, read_python_env
from envbuild.read.requirements_txt import RequirementsFile, read_requirements


@dataclass(frozen=True, kw_only=True)
class ModelEnv:
    """Every environment file of a model folder, and the one EnvSpec built from them.

    Precedence follows MLflow: python_env.yaml (with its ``-r requirements.txt``) drives the
    pip path; without it requirements.txt; without that the conda file's pip list. The
    Python version comes from python_env.yaml, then conda.yaml, then MLmodel.
    """

    conda: CondaFile | None
    python_env: PythonEnvFile | None
    requirements: RequirementsFile | None
    constraints: RequirementsFile | None
    spec: EnvSpec
    problems: tuple[Finding, ...]


def read_model_env(
    root: Path,
    *,
    conda_path: str | None,
    virtualenv_path: str | None,
    mlmodel_python: PythonPin | None,
    field_prefix: str = "",
) -> ModelEnv:
    problems: list[Finding] = []
    conda = python_env = requirements = constraints = None
    names = {
        "conda": conda_path or "conda.yaml",
        "virtualenv": virtualenv_path or "python_env.yaml",
    }
    for kind, rel in names.items():
        declared = conda_path if kind == "conda" else virtualenv_path
        loc = (
            Location(file="MLmodel", field=f"{field_prefix}{kind}")
            if declared
            else Location(file=rel)
        )
        try:
            target = inside(root, rel, location=loc)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if not target.is_file():
            if declared:
                problems.append(
                    EB103.at(
                        loc,
                        f"the MLmodel names {rel} but the file is missing",
                        hint="restore the file or re-save the model with MLflow",
                    )
                )
            continue
        try:
            if kind == "conda":
                conda = read_conda_yaml(root, rel, location=loc)
                problems.extend(conda.problems)
            else:
                python_env = read_python_env(root, rel, location=loc)
                problems.extend(python_env.problems)
                problems.extend(python_env.dependencies.problems)
        except InputError as exc:
            problems.extend(exc.problems)
    for name in ("requirements.txt", "constraints.txt"):
        if (root / name).is_file():
            try:
                parsed = read_requirements(root, name)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            problems.extend(parsed.problems)
            if name == "requirements.txt":
                requirements = parsed
            else:
                constraints = parsed
    if python_env is not None:
        pip = python_env.dependencies
    elif requirements is not None:
        pip = requirements
    elif conda is not None:
        pip = conda.pip
    else:
        pip = RequirementsFile(file="", requirements=(), constraints=(), options=(), problems=())
    pins = tuple(
        p
        for p in (
            python_env.python if python_env else None,
            conda.python if conda else None,
            mlmodel_python,
        )
        if p is not None
    )
    cons = list(pip.constraints)
    if constraints is not None and pip is not constraints:
        known = {(c.location.file, c.location.line) for c in cons}
        cons.extend(
            c
            for c in (*constraints.requirements, *constraints.constraints)
            if (c.location.file, c.location.line) not in known
        )
    files = tuple(
        f
        for f in (
            conda.file if conda else None,
            python_env.file if python_env else None,
            requirements.file if requirements else None,
            constraints.file if constraints else None,
        )
        if f
    )
    spec = EnvSpec(
        name=conda.name if conda else None,
        python=pins[0] if pins else None,
        python_pins=pins,
        requirements=pip.requirements,
        constraints=tuple(cons),
        build_dependencies=python_env.build_dependencies if python_env else (),
        conda=tuple(d for d in conda.conda if d.name not in ("python", "pip")) if conda else (),
        channels=conda.channels if conda else (),
        options=pip.options,
        files=files,
    )
    return ModelEnv(
        conda=conda,
        python_env=python_env,
        requirements=requirements,
        constraints=constraints,
        spec=spec,
        problems=tuple(problems),
    )
