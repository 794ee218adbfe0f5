"""A workspace environment that replaces the model's own (``--env``): what it drops or
changes against the model's requirements, flavors and Python (EB33x)."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import ModelFolder, WorkspaceEnv
from envbuild.resolve.static import CONDA_TO_PYPI
from envbuild.resolve.target import version_of
from envbuild.versions import python_of, same_python

EB330 = Code(
    "EB330", Severity.ERROR, "the override drops the library of one of the model's flavors"
)
EB331 = Code("EB331", Severity.WARNING, "the override changes a requirement's major version")
EB332 = Code("EB332", Severity.WARNING, "the override drops a package the server needs (mlflow)")
EB333 = Code(
    "EB333", Severity.WARNING, "the override drops or changes another of the model's requirements"
)
EB334 = Code("EB334", Severity.WARNING, "the override names a different Python than the model")
CODES: dict[str, str] = table(EB330, EB331, EB332, EB333, EB334)


def override_findings(folder: ModelFolder, override: WorkspaceEnv) -> tuple[Finding, ...]:
    """What the override's environment drops or changes against the model's own."""
    model = folder.env.spec
    spec = override.spec
    file = override.file
    where = _pip_section(override)
    mine = {r.name: r for r in spec.requirements if r.name}
    conda_names = {canonicalize_name(CONDA_TO_PYPI.get(d.name, d.name)) for d in spec.conda}
    out: list[Finding] = []
    flavor_libs: dict[str, tuple[str, str | None]] = {}
    for flavor in folder.mlmodel.flavors:
        if flavor.library and flavor.name != "python_function":
            flavor_libs[canonicalize_name(flavor.library)] = (flavor.name, flavor.version)
    model_reqs = {r.name: r for r in model.requirements if r.name}
    for lib, (flavor_name, version) in sorted(flavor_libs.items()):
        if lib in mine:
            continue
        src = model_reqs.get(lib)
        trained = f", trained with {version}" if version else ""
        model_line = f" (the model requires {src.raw!r} at {src.location})" if src else ""
        also = (
            "; it is listed as a conda package, which the pip-only path ignores"
            if lib in conda_names
            else ""
        )
        out.append(
            EB330.at(
                where,
                f"{file} drops {lib}, the library of the model's {flavor_name} "
                f"flavor{trained}{model_line}{also}",
                hint=f"add '{src.raw if src else lib}' to the override's pip dependencies",
            )
        )
    serving = {"mlflow", "mlflow-skinny"}
    if not serving & set(mine):
        mlflow_src = next(
            (model_reqs[n] for n in ("mlflow", "mlflow-skinny") if n in model_reqs), None
        )
        model_line = (
            f" (the model requires {mlflow_src.raw!r} at {mlflow_src.location})"
            if mlflow_src
            else ""
        )
        out.append(
            EB332.at(
                where,
                f"{file} has no mlflow, which loads and serves the model{model_line}",
                hint="envbuild adds mlflow-skinny at the model's mlflow_version; add mlflow to "
                "the override to control the version yourself",
            )
        )
    for name, req in sorted(model_reqs.items()):
        if name in flavor_libs or name in serving or req.requirement is None:
            continue
        theirs = mine.get(name)
        if theirs is None:
            out.append(
                EB333.at(
                    where,
                    f"{file} drops {req.raw!r} ({req.location})",
                    hint=f"add '{req.raw}' to the override if the model needs it",
                )
            )
    for name, req in sorted(model_reqs.items()):
        theirs = mine.get(name)
        if theirs is None or theirs.requirement is None or req.pinned_version is None:
            continue
        model_v = version_of(req.pinned_version)
        if model_v is None:
            continue
        their_pin = version_of(theirs.pinned_version) if theirs.pinned_version else None
        spec_set = theirs.requirement.specifier
        if their_pin is not None and their_pin.major != model_v.major:
            code, what = EB331, f"major version {model_v.major} to {their_pin.major}"
        elif not spec_set.contains(model_v, prereleases=True):
            code, what = EB333, f"version: {theirs.raw!r} excludes {model_v}"
        else:
            continue
        out.append(
            code.at(
                theirs.location,
                f"{file} changes {name}'s {what} ({theirs.location}; the model "
                f"requires {req.raw!r} at {req.location})",
                hint=f"use the model's pin '{req.raw}' unless the model was re-validated",
            )
        )
    if spec.python is not None and model.python is not None:
        a, b = python_of(spec.python.version), python_of(model.python.version)
        if a is not None and b is not None and not same_python(a, b):
            out.append(
                EB334.at(
                    spec.python.location,
                    f"{file} names Python {a}, the model {b} ({model.python.location})",
                    hint="serve on the Python the model was saved with, or re-validate it",
                )
            )
    return tuple(out)


def _pip_section(override: WorkspaceEnv) -> Location:
    """Where requirements are added to an override: its ``pip:`` list."""
    try:
        lines = Path(override.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*-?\s*pip:\s*$", line):
            return Location(file=override.file, field="conda_file.dependencies.pip", line=i + 1)
    return Location(file=override.file, field="conda_file")
