"""python_env.yaml, MLflow's virtualenv environment file."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from envbuild._yaml import load_yaml
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.read._common import bad_shape, read_in
from envbuild.read.env import PipOption, PythonPin, Requirement
from envbuild.read.requirements_txt import RequirementsFile, parse_requirements_text


@dataclass(frozen=True, kw_only=True)
class PythonEnvFile:
    file: str
    python: PythonPin | None
    build_dependencies: tuple[Requirement, ...]
    dependencies: RequirementsFile
    problems: tuple[Finding, ...]


def read_python_env(
    root: Path, relative: str, *, location: Location | None = None
) -> PythonEnvFile:
    path, rel, text = read_in(
        root,
        relative,
        location,
        hint="add python_env.yaml or fix the MLmodel's env.virtualenv field",
    )
    doc = load_yaml(text, file=rel)
    data = doc.data if doc.data is not None else {}
    problems: list[Finding] = []
    if not isinstance(data, dict):
        raise InputError(
            "python_env.yaml must be a mapping with python, build_dependencies, dependencies",
            location=doc.at(()),
            code="EB102",
        )
    python = None
    if "python" in data and data["python"] is not None:
        value = str(data["python"])
        if isinstance(data["python"], float):  # python: 3.10 is the float 3.1 to YAML
            value = doc.text(("python",)) or value
        if not re.fullmatch(r"\d+(\.\d+){0,2}(\.\*)?", value):
            problems.append(bad_shape(doc, ("python",), f"is not a Python version: {value!r}"))
        else:
            python = PythonPin(version=value, location=doc.at(("python",)))
    lists: dict[str, RequirementsFile] = {}
    for key in ("build_dependencies", "dependencies"):
        items = data.get(key) or []
        reqs: list[Requirement] = []
        cons: list[Requirement] = []
        opts: list[PipOption] = []
        if not isinstance(items, list):
            problems.append(bad_shape(doc, (key,), "must be a list of requirement lines"))
            items = []
        for j, line in enumerate(items):
            loc = doc.at((key, j))
            if not isinstance(line, str | int | float):
                problems.append(bad_shape(doc, (key, j), "must be a requirement string"))
                continue
            sub = parse_requirements_text(str(line), file=rel, root=root, base=path.parent)
            reqs.extend(
                r if r.location.file != rel else replace(r, location=loc) for r in sub.requirements
            )
            cons.extend(sub.constraints)
            opts.extend(
                o if o.location.file != rel else replace(o, location=loc) for o in sub.options
            )
            problems.extend(
                p if p.location.file != rel else replace(p, location=loc) for p in sub.problems
            )
        lists[key] = RequirementsFile(
            file=rel,
            requirements=tuple(reqs),
            constraints=tuple(cons),
            options=tuple(opts),
            problems=(),
        )
    return PythonEnvFile(
        file=rel,
        python=python,
        build_dependencies=lists["build_dependencies"].requirements,
        dependencies=lists["dependencies"],
        problems=tuple(problems),
    )
