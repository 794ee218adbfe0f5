"""conda.yaml: channels, conda match specs and the pip: list."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from envbuild._yaml import YamlDoc, load_yaml
from envbuild.codes import EB112
from envbuild.errors import InputError
from envbuild.findings import Finding, Location
from envbuild.read._common import bad_shape, read_in
from envbuild.read.env import CondaDep, PipOption, PythonPin, Requirement
from envbuild.read.requirements_txt import RequirementsFile, parse_requirements_text

_CONDA_SPEC = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_./:-]+)::)?(?P<name>[A-Za-z0-9_.\-]+)"
    r"\s*(?P<version>(?:[=<>!~].*?|[0-9][^\s]*?))?(?:\s+(?P<build>\S+))?$"
)


def parse_conda_spec(text: str, location: Location) -> CondaDep | Finding:
    match = _CONDA_SPEC.match(text.strip())
    if not match:
        return EB112.at(
            location,
            f"invalid conda match spec {text!r}",
            hint="write it as name, name=1.2, name>=1.2,<2 or channel::name",
        )
    version = match.group("version")
    build = match.group("build")
    if version is not None and not re.search(r"[0-9*]", version):
        return EB112.at(
            location,
            f"invalid conda match spec {text!r}: no version after the operator",
            hint="write it as name, name=1.2, name>=1.2,<2 or channel::name",
        )
    if version and "=" in version[1:] and version.startswith("=") and not version.startswith("=="):
        # name=1.2=py39_0: version then build string
        parts = version[1:].split("=", 1)
        version = "=" + parts[0]
        build = build or parts[1]
    return CondaDep(
        raw=text.strip(),
        name=match.group("name").lower(),
        channel=match.group("channel"),
        version=version.strip() if version else None,
        build=build,
        location=location,
    )


def conda_python_version(dep: CondaDep) -> str | None:
    if not dep.version:
        return None
    return dep.version.lstrip("=<>!~ ").split(",")[0] or None


@dataclass(frozen=True, kw_only=True)
class CondaFile:
    file: str
    name: str | None
    channels: tuple[str, ...]
    conda: tuple[CondaDep, ...]
    python: PythonPin | None
    pip: RequirementsFile
    problems: tuple[Finding, ...]


def read_conda_yaml(root: Path, relative: str, *, location: Location | None = None) -> CondaFile:
    path, rel, text = read_in(
        root,
        relative,
        location,
        hint="add the conda environment file or fix the MLmodel's env field",
    )
    doc = load_yaml(text, file=rel)
    return parse_conda_doc(doc, root=root, base=path.parent)


def parse_conda_doc(doc: YamlDoc, *, root: Path | None, base: Path | None) -> CondaFile:
    problems: list[Finding] = []
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            "a conda environment file must be a mapping with 'dependencies'",
            hint="see https://docs.conda.io/projects/conda/en/latest/user-guide/tasks/manage-environments.html",
            location=doc.at(()),
            code="EB102",
        )
    name = data.get("name")
    channels_raw = data.get("channels") or []
    channels: list[str] = []
    if not isinstance(channels_raw, list):
        problems.append(bad_shape(doc, ("channels",), "must be a list of channel names"))
    else:
        channels = [str(c) for c in channels_raw if c is not None]
    deps_raw = data.get("dependencies") or []
    conda: list[CondaDep] = []
    python: PythonPin | None = None
    pip_reqs: list[Requirement] = []
    pip_cons: list[Requirement] = []
    pip_opts: list[PipOption] = []
    if not isinstance(deps_raw, list):
        problems.append(bad_shape(doc, ("dependencies",), "must be a list"))
        deps_raw = []
    for i, dep in enumerate(deps_raw):
        path: tuple[str | int, ...] = ("dependencies", i)
        if isinstance(dep, dict):
            for key, value in dep.items():
                if key != "pip":
                    problems.append(
                        bad_shape(
                            doc, (*path, str(key)), "unknown nested section (only 'pip' is allowed)"
                        )
                    )
                    continue
                if not isinstance(value, list):
                    problems.append(
                        bad_shape(doc, (*path, "pip"), "must be a list of requirement lines")
                    )
                    continue
                for j, line in enumerate(value):
                    lpath = (*path, "pip", j)
                    loc = doc.at(lpath)
                    if not isinstance(line, str | int | float):
                        problems.append(bad_shape(doc, lpath, "must be a requirement string"))
                        continue
                    text = str(line)
                    sub = parse_requirements_text(text, file=doc.file, root=root, base=base)
                    for r in sub.requirements:
                        pip_reqs.append(replace(r, location=loc))
                    for r in sub.constraints:
                        pip_cons.append(r)
                    for o in sub.options:
                        pip_opts.append(replace(o, location=loc))
                    for p in sub.problems:
                        problems.append(
                            replace(p, location=loc) if p.location.file == doc.file else p
                        )
        elif isinstance(dep, str | int | float):
            parsed = parse_conda_spec(str(dep), doc.at(path))
            if isinstance(parsed, Finding):
                problems.append(parsed)
                continue
            if parsed.name == "python":
                version = conda_python_version(parsed)
                if version:
                    python = PythonPin(version=version, location=parsed.location)
            conda.append(parsed)
        else:
            problems.append(bad_shape(doc, path, "must be a match spec string or a 'pip:' list"))
    return CondaFile(
        file=doc.file,
        name=str(name) if name is not None else None,
        channels=tuple(channels),
        conda=tuple(conda),
        python=python,
        pip=RequirementsFile(
            file=doc.file,
            requirements=tuple(pip_reqs),
            constraints=tuple(pip_cons),
            options=tuple(pip_opts),
            problems=(),
        ),
        problems=tuple(problems),
    )
