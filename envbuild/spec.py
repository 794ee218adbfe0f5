"""The environment a model declares: conda.yaml, python_env.yaml, requirements.txt,
constraints.txt, and workspace-level (Azure-ML-style) environment files.

Every requirement remembers the file, field and line it came from. Readers collect every
problem in a file before raising, so a user sees them all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import canonicalize_name

from envbuild._compat import StrEnum
from envbuild._paths import inside, relative_to
from envbuild._redact import redact
from envbuild._yaml import YamlDoc, format_path, load_yaml
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Finding, Location, Severity


class ReqKind(StrEnum):
    NAMED = "named"  # name[extras] specifier ; marker   (or name @ url)
    URL = "url"  # a bare archive URL
    PATH = "path"  # a local file or folder
    VCS = "vcs"  # git+https://...
    EDITABLE = "editable"  # -e ...


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One requirement line with where it came from and, for inferred ones, why."""

    raw: str
    kind: ReqKind
    requirement: PkgRequirement | None
    location: Location
    reasons: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        return canonicalize_name(self.requirement.name) if self.requirement else None

    @property
    def pinned_version(self) -> str | None:
        """The version of an ``==`` pin (a single exact specifier), else None."""
        if self.requirement is None:
            return None
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requirement": self.raw,
            "kind": self.kind.value,
            "specifier": str(self.requirement.specifier) if self.requirement else None,
            "marker": str(self.requirement.marker)
            if self.requirement and self.requirement.marker
            else None,
            "file": self.location.file,
            "field": self.location.field,
            "line": self.location.line,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, kw_only=True)
class PipOption:
    """An option line: --index-url, --extra-index-url, --find-links, --trusted-host, ..."""

    option: str
    value: str | None
    location: Location

    def to_json(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "value": redact(self.value) if self.value else None,
            "file": self.location.file,
            "line": self.location.line,
        }


@dataclass(frozen=True, kw_only=True)
class CondaDep:
    """A conda match spec such as ``python=3.8.5``, ``numpy>=1.20,<2`` or
    ``conda-forge::pandas``."""

    raw: str
    name: str
    channel: str | None
    version: str | None  # the version part as written, conda syntax
    build: str | None
    location: Location

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.raw,
            "channel": self.channel,
            "version": self.version,
            "file": self.location.file,
            "line": self.location.line,
        }


@dataclass(frozen=True, kw_only=True)
class PythonPin:
    version: str  # as written: "3.8.12", "3.8", "3.10.*"
    location: Location


@dataclass(frozen=True, kw_only=True)
class EnvSpec:
    """The environment of a model: target Python, pip requirements, conda packages."""

    python: PythonPin | None = None
    python_pins: tuple[PythonPin, ...] = ()  # every place that names a Python, to compare
    requirements: tuple[Requirement, ...] = ()
    constraints: tuple[Requirement, ...] = ()
    build_dependencies: tuple[Requirement, ...] = ()
    conda: tuple[CondaDep, ...] = ()
    channels: tuple[str, ...] = ()
    options: tuple[PipOption, ...] = ()
    files: tuple[str, ...] = ()
    name: str | None = None

    def named(self) -> dict[str, list[Requirement]]:
        out: dict[str, list[Requirement]] = {}
        for req in self.requirements:
            if req.name:
                out.setdefault(req.name, []).append(req)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "python": self.python.version if self.python else None,
            "python_source": _loc_json(self.python.location) if self.python else None,
            "python_pins": [
                {"version": p.version, **_loc_json(p.location)} for p in self.python_pins
            ],
            "requirements": [r.to_json() for r in self.requirements],
            "constraints": [r.to_json() for r in self.constraints],
            "build_dependencies": [r.to_json() for r in self.build_dependencies],
            "conda": [c.to_json() for c in self.conda],
            "channels": list(self.channels),
            "options": [o.to_json() for o in self.options],
            "files": list(self.files),
        }


def _loc_json(loc: Location) -> dict[str, Any]:
    return {"file": loc.file, "field": loc.field, "line": loc.line}


# --------------------------------------------------------------------------------------
# requirements.txt lines

_OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
    "-r": "-r",
    "--requirement": "-r",
    "-c": "-c",
    "--constraint": "-c",
    "-e": "-e",
    "--editable": "-e",
    "--hash": "--hash",
    "--config-settings": "--config-settings",
}
_FLAG_OPTIONS = {"--pre", "--no-index", "--prefer-binary", "--require-hashes", "--use-feature"}
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|tgz|zip|tar\.bz2)$", re.IGNORECASE)
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join backslash continuations, strip comments; yield (first line number, text)."""
    buf = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        stripped = re.sub(r"(^|\s+)#.*$", "", buf).strip()
        buf = ""
        if stripped:
            yield start, stripped
    if buf.strip():
        yield start, re.sub(r"(^|\s+)#.*$", "", buf).strip()


@dataclass(frozen=True)
class ParsedLine:
    requirement: Requirement | None = None
    option: PipOption | None = None
    problem: Finding | None = None


def parse_line(text: str, location: Location) -> ParsedLine:
    """Parse one requirements line (pip's file format) into a requirement or an option."""
    text = text.strip()
    if text.startswith("-"):
        head, _, rest = text.partition(" ")
        if "=" in head and head.startswith("--"):
            head, _, eq_value = head.partition("=")
            rest = (eq_value + " " + rest).strip()
        rest = rest.strip()
        if head in _FLAG_OPTIONS:
            return ParsedLine(option=PipOption(option=head, value=rest or None, location=location))
        if head in _OPTIONS_WITH_VALUE:
            option = _OPTIONS_WITH_VALUE[head]
            if not rest:
                return ParsedLine(problem=_bad_line(text, location, f"option {head} needs a value"))
            if option == "-e":
                return ParsedLine(
                    requirement=Requirement(
                        raw=text,
                        kind=ReqKind.EDITABLE,
                        requirement=_name_from_url(rest),
                        location=location,
                    )
                )
            return ParsedLine(option=PipOption(option=option, value=rest, location=location))
        return ParsedLine(problem=_bad_line(text, location, f"unknown option {head}"))
    # strip per-requirement options such as --hash=sha256:...
    req_text = re.split(r"\s+--", text, maxsplit=1)[0].strip()
    if _VCS.match(req_text):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.VCS, requirement=_name_from_url(req_text), location=location
            )
        )
    if _URL.match(req_text):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.URL, requirement=_name_from_url(req_text), location=location
            )
        )
    if req_text.startswith((".", "/", "~")) or (
        _ARCHIVE.search(req_text) and not re.match(r"^[A-Za-z0-9._-]+\s*@", req_text)
    ):
        return ParsedLine(
            requirement=Requirement(
                raw=text, kind=ReqKind.PATH, requirement=None, location=location
            )
        )
    try:
        parsed = PkgRequirement(req_text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        return ParsedLine(problem=_bad_line(text, location, reason))
    empty = [str(s) for s in parsed.specifier if not s.version.strip()]
    if empty:
        return ParsedLine(
            problem=_bad_line(text, location, f"specifier {empty[0]!r} has no version")
        )
    return ParsedLine(
        requirement=Requirement(
            raw=req_text, kind=ReqKind.NAMED, requirement=parsed, location=location
        )
    )


def _name_from_url(url: str) -> PkgRequirement | None:
    match = re.search(r"#egg=([A-Za-z0-9._-]+)", url)
    if match:
        try:
            return PkgRequirement(match.group(1))
        except InvalidRequirement:
            return None
    wheel = re.search(r"([A-Za-z0-9_.]+)-([0-9][^-/]*)(-[^/]*)?\.whl$", url)
    if wheel:
        try:
            return PkgRequirement(f"{wheel.group(1)}=={wheel.group(2)}")
        except InvalidRequirement:
            return None
    return None


def _bad_line(text: str, location: Location, reason: str) -> Finding:
    return Finding(
        code="EB110",
        severity=Severity.ERROR,
        message=f"invalid requirement {redact(text)!r}: {reason}",
        hint="write a PEP 508 requirement such as 'numpy>=1.24,<2' or a pip option line",
        location=location,
    )


@dataclass(frozen=True, kw_only=True)
class RequirementsFile:
    file: str
    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...]
    options: tuple[PipOption, ...]
    problems: tuple[Finding, ...]


def read_requirements(
    root: Path,
    relative: str,
    *,
    location: Location | None = None,
    _seen: frozenset[str] = frozenset(),
) -> RequirementsFile:
    """Read a requirements file inside ``root``, following ``-r``/``-c`` inside ``root``."""
    path, rel, text = _read_in(
        root, relative, location, hint="add the file or remove the reference to it"
    )
    return parse_requirements_text(text, file=rel, root=root, base=path.parent, seen=_seen | {rel})


def parse_requirements_text(
    text: str,
    *,
    file: str,
    root: Path | None = None,
    base: Path | None = None,
    seen: frozenset[str] = frozenset(),
    field_prefix: Sequence[str | int] = (),
    line_of: Sequence[int | None] | None = None,
) -> RequirementsFile:
    reqs: list[Requirement] = []
    cons: list[Requirement] = []
    opts: list[PipOption] = []
    problems: list[Finding] = []
    for line_no, line in _logical_lines(text):
        loc = Location(file=file, line=line_no)
        parsed = parse_line(line, loc)
        if parsed.problem:
            problems.append(parsed.problem)
        elif parsed.requirement:
            reqs.append(parsed.requirement)
        elif parsed.option:
            opt = parsed.option
            if opt.option in ("-r", "-c") and opt.value and root is not None and base is not None:
                nested = _nested(root, base, opt, seen)
                if isinstance(nested, Finding):
                    problems.append(nested)
                    continue
                if nested is None:
                    continue
                if opt.option == "-r":
                    reqs.extend(nested.requirements)
                    cons.extend(nested.constraints)
                else:
                    cons.extend(nested.requirements)
                    cons.extend(nested.constraints)
                opts.extend(nested.options)
                problems.extend(nested.problems)
            else:
                opts.append(opt)
    return RequirementsFile(
        file=file,
        requirements=tuple(reqs),
        constraints=tuple(cons),
        options=tuple(opts),
        problems=tuple(problems),
    )


def _nested(
    root: Path, base: Path, opt: PipOption, seen: frozenset[str]
) -> RequirementsFile | Finding | None:
    assert opt.value is not None
    if _URL.match(opt.value):
        return Finding(
            code="EB111",
            severity=Severity.ERROR,
            message=f"{opt.option} {redact(opt.value)}: remote requirement files are not read",
            hint="copy the file into the model folder and reference it by relative path",
            location=opt.location,
        )
    try:
        target = inside(base, opt.value, location=opt.location)
        inside(root, relative_to(root, target), location=opt.location)
    except InputError as exc:
        return exc.problems[0]
    rel = relative_to(root, target)
    if rel in seen:
        return None  # include cycle: already read
    try:
        return read_requirements(root, rel, location=opt.location, _seen=seen)
    except InputError as exc:
        return exc.problems[0]


def _read_in(
    root: Path, relative: str, location: Location | None, *, hint: str
) -> tuple[Path, str, str]:
    """A file named by the model folder: inside it (path safety), existing, UTF-8 text."""
    path = inside(root, relative, location=location or Location(file=relative))
    rel = relative_to(root, path)
    if not path.is_file():
        raise InputError(
            f"{rel} does not exist",
            hint=hint,
            location=location or Location(file=rel),
            code="EB103",
        )
    return path, rel, _read_text(path, rel)


def _read_text(path: Path, rel: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {rel}: {exc.strerror}", location=Location(file=rel), code="EB103"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start})",
            hint="save the file as UTF-8",
            location=Location(file=rel),
            code="EB101",
        ) from None


# --------------------------------------------------------------------------------------
# conda.yaml

_CONDA_SPEC = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_./:-]+)::)?(?P<name>[A-Za-z0-9_.\-]+)"
    r"\s*(?P<version>(?:[=<>!~].*?|[0-9][^\s]*?))?(?:\s+(?P<build>\S+))?$"
)


def parse_conda_spec(text: str, location: Location) -> CondaDep | Finding:
    match = _CONDA_SPEC.match(text.strip())
    if not match:
        return Finding(
            code="EB112",
            severity=Severity.ERROR,
            message=f"invalid conda match spec {text!r}",
            hint="write it as name, name=1.2, name>=1.2,<2 or channel::name",
            location=location,
        )
    version = match.group("version")
    build = match.group("build")
    if version is not None and not re.search(r"[0-9*]", version):
        return Finding(
            code="EB112",
            severity=Severity.ERROR,
            message=f"invalid conda match spec {text!r}: no version after the operator",
            hint="write it as name, name=1.2, name>=1.2,<2 or channel::name",
            location=location,
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
    path, rel, text = _read_in(
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
        problems.append(_shape(doc, ("channels",), "must be a list of channel names"))
    else:
        channels = [str(c) for c in channels_raw if c is not None]
    deps_raw = data.get("dependencies") or []
    conda: list[CondaDep] = []
    python: PythonPin | None = None
    pip_reqs: list[Requirement] = []
    pip_cons: list[Requirement] = []
    pip_opts: list[PipOption] = []
    if not isinstance(deps_raw, list):
        problems.append(_shape(doc, ("dependencies",), "must be a list"))
        deps_raw = []
    for i, dep in enumerate(deps_raw):
        path: tuple[str | int, ...] = ("dependencies", i)
        if isinstance(dep, dict):
            for key, value in dep.items():
                if key != "pip":
                    problems.append(
                        _shape(
                            doc, (*path, str(key)), "unknown nested section (only 'pip' is allowed)"
                        )
                    )
                    continue
                if not isinstance(value, list):
                    problems.append(
                        _shape(doc, (*path, "pip"), "must be a list of requirement lines")
                    )
                    continue
                for j, line in enumerate(value):
                    lpath = (*path, "pip", j)
                    loc = doc.at(lpath)
                    if not isinstance(line, str | int | float):
                        problems.append(_shape(doc, lpath, "must be a requirement string"))
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
            problems.append(_shape(doc, path, "must be a match spec string or a 'pip:' list"))
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


def _shape(doc: YamlDoc, path: Sequence[str | int], what: str) -> Finding:
    return Finding(
        code="EB102",
        severity=Severity.ERROR,
        message=f"{format_path(path)} {what}",
        hint="fix the file's structure",
        location=doc.at(path),
    )


# --------------------------------------------------------------------------------------
# python_env.yaml


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
    path, rel, text = _read_in(
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
            problems.append(_shape(doc, ("python",), f"is not a Python version: {value!r}"))
        else:
            python = PythonPin(version=value, location=doc.at(("python",)))
    lists: dict[str, RequirementsFile] = {}
    for key in ("build_dependencies", "dependencies"):
        items = data.get(key) or []
        reqs: list[Requirement] = []
        cons: list[Requirement] = []
        opts: list[PipOption] = []
        if not isinstance(items, list):
            problems.append(_shape(doc, (key,), "must be a list of requirement lines"))
            items = []
        for j, line in enumerate(items):
            loc = doc.at((key, j))
            if not isinstance(line, str | int | float):
                problems.append(_shape(doc, (key, j), "must be a requirement string"))
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


# --------------------------------------------------------------------------------------
# workspace (Azure ML style) environment


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
    doc = load_yaml(_read_text(path, str(path)), file=str(path))
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
                Finding(
                    code="EB102",
                    severity=Severity.ERROR,
                    message=f"unknown key {key!r} in a workspace environment",
                    hint="known keys: " + ", ".join(sorted(_WORKSPACE_KEYS - {"$schema"})),
                    location=doc.at((str(key),)),
                )
            )
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not _IMAGE_REF.match(image)):
        problems.append(_shape(doc, ("image",), f"is not an image reference: {image!r}"))
        image = None
    build = data.get("build") or {}
    if not isinstance(build, dict):
        problems.append(
            _shape(doc, ("build",), "must be a mapping with 'path' and 'dockerfile_path'")
        )
        build = {}
    if "image" not in data and not build:
        problems.append(_shape(doc, (), "needs 'image' (with 'conda_file') or 'build'"))
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
            problems.append(_shape(doc, ("conda_file",), "must be a path or an inline conda spec"))
    inference = data.get("inference_config") or {}
    if not isinstance(inference, dict):
        problems.append(_shape(doc, ("inference_config",), "must be a mapping"))
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


# --------------------------------------------------------------------------------------
# the model's environment, all files together


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
                    Finding(
                        code="EB103",
                        severity=Severity.ERROR,
                        message=f"the MLmodel names {rel} but the file is missing",
                        hint="restore the file or re-save the model with MLflow",
                        location=loc,
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


# --------------------------------------------------------------------------------------
# writers: EnvSpec -> conda.yaml, python_env.yaml, requirements.txt (text; callers write)


def _option_line(option: PipOption) -> str:
    return f"{option.option} {option.value}" if option.value else option.option


def render_requirements(spec: EnvSpec, header: str, *, reasons: bool = True) -> str:
    """requirements.txt: the header, option lines, then one requirement per line, each
    followed by ``# via`` comment lines naming why it is there (pip-tools style)."""
    lines = [header.rstrip("\n")]
    lines.extend(_option_line(o) for o in spec.options)
    for req in spec.requirements:
        lines.append(req.raw)
        if reasons:
            lines.extend(f"    # via {r}" for r in req.reasons)
    return "\n".join(lines) + "\n"


def _yaml_doc(header: str, data: dict[str, Any]) -> str:
    import yaml

    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)
    return header.rstrip("\n") + "\n" + body


def render_python_env(
    spec: EnvSpec, header: str, *, requirements_file: str | None = "requirements.txt"
) -> str:
    """python_env.yaml (MLflow's virtualenv environment file). With ``requirements_file``
    its dependencies are ``-r <file>`` as MLflow writes them; otherwise inline."""
    deps = (
        [f"-r {requirements_file}"]
        if requirements_file
        else [*(_option_line(o) for o in spec.options), *(r.raw for r in spec.requirements)]
    )
    data: dict[str, Any] = {}
    if spec.python is not None:
        data["python"] = spec.python.version
    data["build_dependencies"] = [r.raw for r in spec.build_dependencies]
    data["dependencies"] = deps
    return _yaml_doc(header, data)


def render_conda_yaml(spec: EnvSpec, header: str) -> str:
    """conda.yaml: channels, python and pip from conda, the other conda packages, then the
    pip requirements (with their option lines) in the ``pip:`` section."""
    deps: list[Any] = []
    if spec.python is not None:
        deps.append(f"python={spec.python.version}")
    pip_pin = next(
        (r.pinned_version for r in spec.build_dependencies if r.name == "pip" and r.pinned_version),
        None,
    )
    deps.append(f"pip<={pip_pin}" if pip_pin else "pip")
    deps.extend(c.raw for c in spec.conda if c.name not in ("python", "pip"))
    deps.append(
        {"pip": [*(_option_line(o) for o in spec.options), *(r.raw for r in spec.requirements)]}
    )
    data: dict[str, Any] = {
        "name": spec.name or "mlflow-env",
        "channels": list(spec.channels) or ["conda-forge"],
        "dependencies": deps,
    }
    return _yaml_doc(header, data)
