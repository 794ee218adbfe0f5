"""A workspace (Azure-ML-style) environment file: a base image plus a conda file, or a
build context."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild._yaml import YamlDoc, load_yaml
from envbuild.codes import EB102
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Finding, Location
from envbuild.read._common import bad_shape, read_text
from envbuild.read.conda_yaml import CondaFile, parse_conda_doc, read_conda_yaml
from envbuild.read.env import EnvSpec


@dataclass(frozen=True, kw_only=True)
class WorkspaceEnv:
    """An Azure-ML-style environment: a base image plus a conda file, or a build context."""

    file: str
    name: str | None
    version: str | None
    image: str | None
    spec: EnvSpec
    build_path: str | None = None
    dockerfile_path: str | None = None
    inference_config: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "version": self.version,
            "image": self.image,
            "build": {"path": self.build_path, "dockerfile_path": self.dockerfile_path}
            if self.build_path
            else None,
            "inference_config": self.inference_config,
            "environment": self.spec.to_json(),
        }


_IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)
_WORKSPACE_KEYS = {
    "$schema",
    "name",
    "version",
    "image",
    "conda_file",
    "build",
    "inference_config",
    "description",
    "tags",
    "os_type",
    "properties",
    "datastore",
    "intellectual_property",
}


def read_workspace_env(path: Path) -> WorkspaceEnv:
    """Read an Azure ML environment YAML (``image`` + ``conda_file``, or ``build``)."""
    file = path.name
    if not path.is_file():
        raise InputError(
            "no such file",
            hint="pass the path of an environment YAML",
            location=Location(file=str(path)),
            code="EB103",
        )
    base = path.parent
    doc = load_yaml(read_text(path, str(path)), file=str(path))
    data = doc.data
    if not isinstance(data, dict):
        raise InputError(
            "an environment file must be a mapping with 'image' and 'conda_file'",
            location=doc.at(()),
            code="EB102",
        )
    problems: list[Finding] = []
    for key in data:
        if str(key) not in _WORKSPACE_KEYS:
            problems.append(
                EB102.at(
                    doc.at((str(key),)),
                    f"unknown key {key!r} in a workspace environment",
                    hint="known keys: " + ", ".join(sorted(_WORKSPACE_KEYS - {"$schema"})),
                )
            )
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not _IMAGE_REF.match(image)):
        problems.append(bad_shape(doc, ("image",), f"is not an image reference: {image!r}"))
        image = None
    build = data.get("build") or {}
    if not isinstance(build, dict):
        problems.append(
            bad_shape(doc, ("build",), "must be a mapping with 'path' and 'dockerfile_path'")
        )
        build = {}
    if "image" not in data and not build:
        problems.append(bad_shape(doc, (), "needs 'image' (with 'conda_file') or 'build'"))
    spec = EnvSpec(name=str(data.get("name")) if data.get("name") else None, files=(file,))
    conda_file = data.get("conda_file")
    if conda_file is not None:
        if isinstance(conda_file, dict):
            # an inline conda specification
            inline = YamlDoc(
                file=doc.file,
                data=conda_file,
                lines={k[1:]: v for k, v in doc.lines.items() if k[:1] == ("conda_file",)},
            )
            parsed = parse_conda_doc(inline, root=base, base=base)
            problems.extend(parsed.problems)
            spec = _spec_from_conda(parsed, name=spec.name)
        elif isinstance(conda_file, str):
            try:
                parsed = read_conda_yaml(base, conda_file, location=doc.at(("conda_file",)))
            except InputError as exc:
                problems.extend(exc.problems)
            else:
                problems.extend(parsed.problems)
                spec = _spec_from_conda(parsed, name=spec.name)
        else:
            problems.append(
                bad_shape(doc, ("conda_file",), "must be a path or an inline conda spec")
            )
    inference = data.get("inference_config") or {}
    if not isinstance(inference, dict):
        problems.append(bad_shape(doc, ("inference_config",), "must be a mapping"))
        inference = {}
    if problems:
        raise ProblemsError(problems)
    return WorkspaceEnv(
        file=str(path),
        name=str(data["name"]) if data.get("name") is not None else None,
        version=str(data["version"]) if data.get("version") is not None else None,
        image=image,
        spec=spec,
        build_path=str(build["path"]) if build.get("path") else None,
        dockerfile_path=str(build["dockerfile_path"]) if build.get("dockerfile_path") else None,
        inference_config=inference,
        description=str(data["description"]) if data.get("description") else None,
    )


def _spec_from_conda(conda: CondaFile, *, name: str | None = None) -> EnvSpec:
    return EnvSpec(
        name=name or conda.name,
        python=conda.python,
        python_pins=(conda.python,) if conda.python else (),
        requirements=conda.pip.requirements,
        constraints=conda.pip.constraints,
        conda=tuple(d for d in conda.conda if d.name not in ("python", "pip")),
        channels=conda.channels,
        options=conda.pip.options,
        files=(conda.file,),
    )
