"""The model's environment, all files together: which file envbuild follows, as MLflow
does, and what it reports when the files disagree or are missing.

MLflow builds a model's environment along two paths (mlflow/utils/virtualenv.py,
``_get_python_env``; mlflow/pyfunc/__init__.py): its virtualenv manager (the default of
``mlflow models serve`` and ``build-docker``) installs python_env.yaml, whose dependencies
are ``-r requirements.txt``; without python_env.yaml it takes requirements.txt and the
Python of conda.yaml, without requirements.txt conda.yaml's pip list. Its conda manager,
and Azure ML, build from conda.yaml. ``--env-from`` (EnvFrom) chooses; ``auto`` follows the
virtualenv path unless conda.yaml alone agrees with the library versions MLmodel records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import canonicalize_name

from envbuild._paths import inside
from envbuild.codes import EB100, EB103, EB108, EB113
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Finding, Location, Severity
from envbuild.read.conda_yaml import CondaFile, read_conda_yaml
from envbuild.read.env import EnvFrom, EnvSpec, PythonPin, ReqKind, Requirement
from envbuild.read.mlmodel import MLmodel
from envbuild.read.python_env import PythonEnvFile, read_python_env
from envbuild.read.requirements_txt import RequirementsFile, read_requirements

_VIRTUALENV_WHY = (
    "MLflow's virtualenv environment manager (mlflow models serve, build-docker) installs "
    "python_env.yaml and requirements.txt"
)
_CONDA_WHY = "MLflow's conda environment manager and Azure ML build from conda.yaml"


@dataclass(frozen=True, kw_only=True)
class ModelEnv:
    """Every environment file of a model folder, and the one EnvSpec built from them.

    ``followed`` is the file the requirements come from (python_env.yaml,
    requirements.txt, conda.yaml, or MLmodel when derived from the flavors) and ``why``
    says why; the Python comes from that file first, then the others, then MLmodel.
    """

    conda: CondaFile | None
    python_env: PythonEnvFile | None
    requirements: RequirementsFile | None
    constraints: RequirementsFile | None
    spec: EnvSpec
    problems: tuple[Finding, ...]
    followed: str = ""
    why: str = ""


def read_model_env(
    root: Path,
    *,
    conda_path: str | None,
    virtualenv_path: str | None,
    mlmodel_python: PythonPin | None,
    field_prefix: str = "",
    env_from: EnvFrom = EnvFrom.AUTO,
    mlmodel: MLmodel | None = None,
) -> ModelEnv:
    problems: list[Finding] = []
    missing: list[tuple[str, Location]] = []  # declared by the MLmodel, not in the folder
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
                missing.append((rel, loc))
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
    virtualenv = python_env.dependencies if python_env is not None else requirements
    followed, why, pip = _choose(conda, python_env, virtualenv, env_from, mlmodel, problems)
    problems.extend(_missing_findings(missing, followed))
    if pip is None:
        pip = RequirementsFile(
            file="MLmodel" if followed == "MLmodel" else "",
            requirements=derived_requirements(mlmodel) if followed == "MLmodel" else (),
            constraints=(),
            options=(),
            problems=(),
        )
    first = conda.python if conda is not None and followed == conda.file else None
    pins = tuple(
        p
        for p in (
            first,
            python_env.python if python_env else None,
            conda.python if conda and first is None else None,
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
        followed=followed,
        why=why,
    )


def _choose(
    conda: CondaFile | None,
    python_env: PythonEnvFile | None,
    virtualenv: RequirementsFile | None,
    env_from: EnvFrom,
    mlmodel: MLmodel | None,
    problems: list[Finding],
) -> tuple[str, str, RequirementsFile | None]:
    """(the file followed, why, its pip requirements); EB113 for each disagreement."""
    venv_file = python_env.file if python_env is not None else virtualenv.file if virtualenv else ""
    if env_from is EnvFrom.CONDA:
        if conda is None:
            raise ProblemsError(
                [
                    EB100.at(
                        Location(field="--env-from"),
                        "--env-from conda, but the model folder has no conda.yaml",
                        hint="use --env-from auto or requirements",
                    )
                ]
            )
    elif env_from is EnvFrom.REQUIREMENTS and virtualenv is None:
        raise ProblemsError(
            [
                EB100.at(
                    Location(field="--env-from"),
                    "--env-from requirements, but the model folder has neither "
                    "python_env.yaml nor requirements.txt",
                    hint="use --env-from auto or conda",
                )
            ]
        )
    if conda is None and virtualenv is None:
        return "MLmodel", "no environment file: derived from the MLmodel's flavors", None
    if conda is None or virtualenv is None:
        if virtualenv is not None:
            return venv_file, _VIRTUALENV_WHY, virtualenv
        assert conda is not None
        return conda.file, "the folder has no python_env.yaml or requirements.txt", conda.pip
    disagreements = _disagreements(virtualenv.requirements, conda.pip.requirements)
    recorded = _recorded(mlmodel)
    if env_from is EnvFrom.CONDA:
        followed, why = conda.file, f"--env-from conda ({_CONDA_WHY})"
    elif env_from is EnvFrom.REQUIREMENTS:
        followed, why = venv_file, f"--env-from requirements ({_VIRTUALENV_WHY})"
    else:
        conda_agrees = [
            name
            for name, ours, theirs in disagreements
            if name in recorded
            # a clear contradiction: one other pin, not a line left out or a file that
            # contradicts itself (resolve reports that one, EB302)
            and _pins(theirs) == recorded[name][1]
            and _pins(ours) not in (None, recorded[name][1])
        ]
        venv_agrees = [
            name
            for name, ours, theirs in disagreements
            if name in recorded
            and _pins(ours) == recorded[name][1]
            and _pins(theirs) not in (None, recorded[name][1])
        ]
        if len(conda_agrees) > len(venv_agrees):
            name = conda_agrees[0]
            field, version = recorded[name]
            followed, why = (
                conda.file,
                (f"it agrees with MLmodel's {field} {version}, the version that saved the model"),
            )
        else:
            followed, why = venv_file, _VIRTUALENV_WHY
    for name, ours, theirs in disagreements:
        at = (theirs + ours) if followed == conda.file else (ours + theirs)
        problems.append(
            EB113.at(
                at[0].location,
                f"{_lines(name, ours, venv_file)} but {_lines(name, theirs, conda.file)}; envbuild "
                f"follows {followed}: {why}",
                hint="make the files agree (re-save the model), or choose with --env-from "
                f"conda|requirements ({_CONDA_WHY}; {_VIRTUALENV_WHY})",
            )
        )
    return followed, why, conda.pip if followed == conda.file else virtualenv


Side = tuple[Requirement, ...]


def _disagreements(
    venv: Sequence[Requirement], conda: Sequence[Requirement]
) -> list[tuple[str, Side, Side]]:
    """(name, the virtualenv side's lines, conda.yaml's lines) for every distribution the
    two name differently or only one of them names."""

    def by_name(reqs: Sequence[Requirement]) -> dict[str, list[Requirement]]:
        out: dict[str, list[Requirement]] = {}
        for r in reqs:
            if r.name:
                out.setdefault(r.name, []).append(r)
        return out

    a, b = by_name(venv), by_name(conda)
    out = []
    for name in sorted(set(a) | set(b)):
        ours, theirs = tuple(a.get(name, ())), tuple(b.get(name, ()))
        if {_key(r) for r in ours} != {_key(r) for r in theirs}:
            out.append((name, ours, theirs))
    return out


def _key(req: Requirement) -> str:
    r = req.requirement
    if r is None:
        return req.raw
    return f"{sorted(r.extras)}{r.specifier}{r.marker or ''}{r.url or ''}"


def _pins(side: Side) -> str | None:
    versions = {r.pinned_version for r in side}
    return versions.pop() if len(versions) == 1 else None


def _lines(name: str, side: Side, file: str) -> str:
    if not side:
        return f"{file} does not list {name}"
    shown = ", ".join(
        f"{r.location.file}" + (f":{r.location.line}" if r.location.line else "") + f" {r.raw!r}"
        for r in side
    )
    return f"{shown} (via {file})" if side[0].location.file != file else shown


def _recorded(mlmodel: MLmodel | None) -> dict[str, tuple[str, str]]:
    """{distribution: (MLmodel field, version)} the flavors record."""
    out: dict[str, tuple[str, str]] = {}
    for flavor in mlmodel.flavors if mlmodel else ():
        if flavor.library and flavor.version and flavor.version_field:
            name = canonicalize_name(flavor.library)
            out[name] = (f"flavors.{flavor.name}.{flavor.version_field}", flavor.version)
    return out


def _missing_findings(
    missing: list[tuple[str, Location]],
    followed: str,
) -> list[Finding]:
    """A file the MLmodel names but the folder lacks: MLflow falls back to the others, so
    envbuild warns and does the same; with no environment file at all, EB108."""
    if followed == "MLmodel":
        named = " and ".join(rel for rel, _ in missing)
        return [
            EB108.at(
                missing[0][1] if missing else Location(file="MLmodel"),
                "the model folder has no conda.yaml, python_env.yaml or requirements.txt"
                + (f" (the MLmodel names {named})" if named else "")
                + "; envbuild derived the environment from the MLmodel's flavors and "
                "mlflow_version",
                hint="restore the model's environment files, or write them with envbuild "
                "infer --python <the training environment's python>",
            )
        ]
    return [
        EB103.at(
            loc,
            f"the MLmodel names {rel} but the file is missing; like MLflow, envbuild takes "
            f"the environment from {followed}",
            hint="restore the file or re-save the model with MLflow",
            severity=Severity.WARNING,
        )
        for rel, loc in missing
    ]


def derived_requirements(mlmodel: MLmodel | None) -> tuple[Requirement, ...]:
    """What the MLmodel itself says the model needs, when no environment file does: each
    flavor's library at its recorded version, scikit-learn for the sklearn-API model
    classes of xgboost and lightgbm, cloudpickle for cloudpickled models, and MLflow at
    ``mlflow_version`` (what MLflow writes into requirements.txt)."""
    if mlmodel is None:
        return ()
    out: list[tuple[str, Location]] = []
    if mlmodel.mlflow_version:
        out.append(
            (f"mlflow=={mlmodel.mlflow_version}", Location(file="MLmodel", field="mlflow_version"))
        )
    for flavor in mlmodel.flavors:
        where = f"flavors.{flavor.name}"
        if flavor.library:
            pin = f"=={flavor.version}" if flavor.version else ""
            out.append(
                (
                    f"{flavor.library}{pin}",
                    Location(file="MLmodel", field=f"{where}.{flavor.version_field}"),
                )
            )
        model_class = flavor.params.get("model_class")
        if isinstance(model_class, str) and model_class.split(".")[1:2] == ["sklearn"]:
            out.append(("scikit-learn", Location(file="MLmodel", field=f"{where}.model_class")))
        cp = flavor.params.get("cloudpickle_version")
        if flavor.params.get("serialization_format") == "cloudpickle" or cp:
            out.append(
                (
                    f"cloudpickle=={cp}" if cp else "cloudpickle",
                    Location(file="MLmodel", field=where),
                )
            )
    reqs: list[Requirement] = []
    seen: set[str] = set()
    for raw, loc in out:
        try:
            parsed = PkgRequirement(raw)
        except InvalidRequirement:  # a recorded version that is not PEP 440: unpinned
            raw = raw.split("==")[0]
            parsed = PkgRequirement(raw)
        name = canonicalize_name(parsed.name)
        if name in seen:
            continue
        seen.add(name)
        reqs.append(
            Requirement(
                raw=raw,
                kind=ReqKind.NAMED,
                requirement=parsed,
                location=loc,
                reasons=("derived from the MLmodel (no environment file)",),
            )
        )
    return tuple(reqs)
