"""Render a model's build: a Dockerfile from templates/ plus the files of its build context.

Rendering is pure: it reads the model folder and the lock and returns a ``BuildPlan`` (text
and bytes); writing the context and calling Docker happen in build.py. Every value that
reaches a ``RUN`` line is validated or shell-quoted first, so no requirement string, index
URL or package name can add an instruction to the Dockerfile.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from envbuild import __version__
from envbuild._compat import StrEnum
from envbuild._paths import inside
from envbuild._redact import has_credentials, redact
from envbuild.contents import Contents, RefusedFiles, select
from envbuild.errors import InputError
from envbuild.findings import Finding, Location, Severity
from envbuild.infer.names import MLFLOW_FAMILY
from envbuild.read import CondaDep, ModelFolder, WorkspaceEnv

# Finding codes of the builder (render.py and build.py); the README table gathers them.
CODES: dict[str, str] = {
    "EB401": "a value bound for the Dockerfile is unsafe (newline, control character, bad syntax)",
    "EB402": "a lock line is not a pinned requirement envbuild can install with hashes",
    "EB403": "an index URL carries credentials and the engine has no BuildKit secrets",
    "EB404": "the environment names conda-only packages: the micromamba path is rendered",
    "EB405": "the lock pins CUDA builds: a CUDA runtime base image is rendered",
    "EB406": "the workspace environment's base image replaces the python:X.Y-slim default",
    "EB407": "a local --find-links directory is packed into the build context",
    "EB408": "a model file is a symbolic link or special file and is not copied",
    "EB409": "the server package envbuild copies into the image or venv is missing",
}

PORT = 8080
HEALTH_PATH = "/ping"  # the route the HEALTHCHECK and the smoke test probe
UID = 10001
MICROMAMBA_IMAGE = "mambaorg/micromamba:1.5.10-bookworm-slim"
CONDA_RUNTIME_IMAGE = "debian:bookworm-slim"
# CUDA X.Y -> the newest runtime image tag of that minor version (Ubuntu 22.04).
CUDA_IMAGES: dict[str, str] = {
    "11.7": "11.7.1",
    "11.8": "11.8.0",
    "12.0": "12.0.1",
    "12.1": "12.1.1",
    "12.2": "12.2.2",
    "12.3": "12.3.2",
    "12.4": "12.4.1",
    "12.5": "12.5.1",
    "12.6": "12.6.3",
    "12.8": "12.8.1",
    "12.9": "12.9.1",
    "13.0": "13.0.2",
}
# Python distributions whose wheels need a shared library the slim base lacks.
SYSTEM_PACKAGES: dict[str, tuple[str, ...]] = {
    "lightgbm": ("libgomp1",),
    "xgboost": ("libgomp1",),
    "catboost": ("libgomp1",),
    "opencv-python": ("libgl1", "libglib2.0-0"),
    "h2o": ("default-jre-headless",),
    "pyspark": ("default-jre-headless",),
}


class BuildKind(StrEnum):
    PIP = "pip"
    CONDA = "conda"
    CUDA = "cuda"


@dataclass(frozen=True, kw_only=True)
class ContextFile:
    """One file of the build context: its path inside the context (POSIX), its bytes or the
    host file to read them from, and whether it is executable."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    executable: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass(frozen=True, kw_only=True)
class Secret:
    """A BuildKit secret: ``id`` names it at build time, ``env`` is the variable uv reads,
    ``value`` never reaches the Dockerfile or the context."""

    id: str
    env: str
    value: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    kind: BuildKind
    dockerfile: str
    files: tuple[ContextFile, ...]  # sorted by path; the Dockerfile is one of them
    base_image: str
    python_version: str
    platform: str
    labels: tuple[tuple[str, str], ...]
    lock_sha256: str
    secrets: tuple[Secret, ...] = ()
    buildkit: bool = False
    buildable: bool = True  # False for the conda and CUDA paths on this engine
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "base_image": self.base_image,
            "python_version": self.python_version,
            "platform": self.platform,
            "labels": dict(self.labels),
            "lock_sha256": self.lock_sha256,
            "buildkit": self.buildkit,
            "secrets": [s.id for s in self.secrets],
            "files": [f.path for f in self.files],
        }


@dataclass(frozen=True, kw_only=True)
class Pin:
    name: str
    version: str
    line: int


# --------------------------------------------------------------------------------------
# validation: what may reach the Dockerfile

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IMAGE_REF = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_PY_XY = re.compile(r"^3\.[0-9]{1,2}$")
_PLATFORM = re.compile(r"^linux/(amd64|arm64)$")
_PIN_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,-]+\])?==(?P<ver>\S+)"
)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def unsafe(what: str, value: str, why: str, location: Location | None = None) -> InputError:
    return InputError(
        f"{what} {redact(value)!r} cannot go into a Dockerfile: {why}",
        hint="fix the value; envbuild refuses anything that could add an instruction",
        location=location,
        code="EB401",
    )


def check_text(what: str, value: str, location: Location | None = None) -> str:
    if _CONTROL.search(value):
        raise unsafe(what, value, "it contains a newline or control character", location)
    return value


def check_image(value: str, what: str = "base image") -> str:
    check_text(what, value)
    if not _IMAGE_REF.match(value):
        raise unsafe(what, value, "not an image reference (name[:tag][@sha256:digest])")
    return value


def check_requirement(raw: str, location: Location | None = None) -> PkgRequirement:
    """A requirement line that may end up in the lock or an environment file: one line,
    a valid PEP 508 requirement."""
    check_text("requirement", raw, location)
    try:
        return PkgRequirement(raw.split(" --hash", 1)[0].strip())
    except InvalidRequirement as exc:
        raise unsafe("requirement", raw, f"not a valid requirement ({exc})", location) from None


def _quote(value: object) -> str:
    text = str(value)
    check_text("value", text)
    return shlex.quote(text)


def _label(value: object) -> str:
    text = check_text("label", str(value))
    return json.dumps(text)


def _envvalue(value: object) -> str:
    return json.dumps(check_text("environment value", str(value)))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=False,
    )
    env.filters["q"] = _quote
    env.filters["label"] = _label
    env.filters["envvalue"] = _envvalue
    return env


def templates_dir() -> Path:
    """templates/ inside the installed wheel (envbuild/templates), else at the top of a
    source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "Dockerfile.pip.j2").is_file():
            return candidate
    raise InputError(
        "envbuild's Dockerfile templates are missing",
        hint="reinstall envbuild; the wheel carries them as envbuild/templates",
        code="EB409",
    )


# --------------------------------------------------------------------------------------
# the lock


@dataclass(frozen=True, kw_only=True)
class LockView:
    """What rendering needs from a lock: its text, hash and target."""

    text: str
    sha256: str
    python_version: str  # X.Y
    platform: str  # linux/amd64 | linux/arm64


def parse_lock(text: str, *, file: str = "requirements.lock") -> tuple[list[Pin], list[str]]:
    """Pins and option lines of a hashed requirements lock; refuse anything else."""
    pins: list[Pin] = []
    options: list[str] = []
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        if buf.strip():
            logical.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        logical.append((start, buf.strip()))
    for number, line in logical:
        loc = Location(file=file, line=number)
        check_text("lock line", line, loc)
        if line.startswith("-"):
            options.append(line)
            continue
        m = _PIN_LINE.match(line)
        if not m:
            raise InputError(
                f"lock line {line[:80]!r} is not a pinned requirement (name==version --hash=...)",
                hint="regenerate the lock with `envbuild lock`",
                location=loc,
                code="EB402",
            )
        req = check_requirement(line, loc)
        if "--hash=" not in line:
            raise InputError(
                f"lock line for {req.name} has no --hash",
                hint="regenerate the lock with `envbuild lock` (it writes hashes)",
                location=loc,
                code="EB402",
            )
        pins.append(Pin(name=canonicalize_name(m["name"]), version=m["ver"], line=number))
    return pins, options


_VIA = re.compile(r"^\s*#\s*via\s+(?P<via>.+)$")
_DIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def serving_runtime_only(text: str) -> tuple[str, ...]:
    """The locked distributions that only MLflow needs (mlflow-skinny, databricks-sdk,
    opentelemetry, ...): MLflow and the closure of its requirements, minus whatever the
    model's own requirements (and the serving stack's pandas and numpy) also need.

    Read from the lock's ``# via`` comments (``envbuild lock`` writes them); a lock
    without them gives ``()``, so everything is treated as the model's own."""
    parents: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _PIN_LINE.match(line)
        if m:
            current = canonicalize_name(m["name"])
            parents[current] = set()
            continue
        v = _VIA.match(line)
        if v and current is not None:
            parents[current].update(p.strip() for p in v["via"].split(","))
    if not any(parents.values()):
        return ()
    children: dict[str, set[str]] = {name: set() for name in parents}
    roots: set[str] = set()
    for name, via in parents.items():
        for parent in via:
            key = canonicalize_name(parent) if _DIST_NAME.match(parent) else ""
            if key in children:
                children[key].add(name)
            else:  # a file reference (requirements.txt:3) or the serving stack
                roots.add(name)

    def closure(start: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(start)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(children.get(name, ()))
        return seen

    runtime = closure(n for n in parents if n in MLFLOW_FAMILY)
    model = closure(roots - MLFLOW_FAMILY)
    return tuple(sorted(runtime - model))


def warm_imports(folder: ModelFolder) -> tuple[str, ...]:
    """The modules whose import at build time writes the deferred runtime's bytecode:
    those the server imports at start, and the model flavor's pyfunc loader."""
    from envbuild.serve.protocol import MLFLOW_MODULES

    loader = folder.mlmodel.pyfunc.loader_module if folder.mlmodel.pyfunc else None
    modules = list(MLFLOW_MODULES)
    if loader and _MODULE.match(loader) and loader not in modules:
        modules.append(loader)
    return tuple(modules)


@dataclass(frozen=True, kw_only=True)
class IndexPlan:
    """The lock's index options split into what may appear in the context and what must
    travel as a secret."""

    lock_text: str  # the lock as copied into the context: index/link options removed
    install_args: tuple[str, ...]
    secrets: tuple[Secret, ...]
    find_links: tuple[Path, ...]  # local directories whose wheels go into the context


def split_index_options(text: str, *, wheelhouse: bool) -> IndexPlan:
    """Move index options out of the lock: public URLs become quoted uv arguments, URLs
    with credentials become secrets, local --find-links directories are packed."""
    kept: list[str] = []
    args: list[str] = []
    secrets: list[Secret] = []
    links: list[Path] = []
    lines = text.splitlines(keepends=True)
    for line in lines:
        stripped = line.strip()
        parts = stripped.split(None, 1) if stripped.startswith("-") else []
        if parts and "=" in parts[0]:
            parts = parts[0].split("=", 1)
        opt = parts[0] if parts else ""
        value = parts[1].strip() if len(parts) > 1 else ""
        if opt in ("-i", "--index-url", "--extra-index-url"):
            if wheelhouse:
                continue
            env = "UV_DEFAULT_INDEX" if opt in ("-i", "--index-url") else "UV_INDEX"
            if has_credentials(value):
                secrets.append(Secret(id=f"envbuild_index_{len(secrets)}", env=env, value=value))
            else:
                flag = "--default-index" if env == "UV_DEFAULT_INDEX" else "--index"
                args.extend((flag, check_text("index URL", value)))
            continue
        if opt in ("-f", "--find-links"):
            if has_credentials(value):
                secrets.append(
                    Secret(id=f"envbuild_links_{len(secrets)}", env="UV_FIND_LINKS", value=value)
                )
            elif "://" in value and not value.startswith("file://"):
                args.extend(("--find-links", check_text("find-links URL", value)))
            else:
                links.append(Path(value[7:] if value.startswith("file://") else value))
            continue
        if opt in ("--trusted-host",):
            continue
        kept.append(line)
    return IndexPlan(
        lock_text="".join(kept),
        install_args=tuple(args),
        secrets=tuple(secrets),
        find_links=tuple(links),
    )


# --------------------------------------------------------------------------------------
# detection: CUDA, conda-only packages, system packages


def cuda_version(pins: Iterable[Pin]) -> tuple[str, tuple[str, ...]] | None:
    """The CUDA X.Y the lock's builds need, and the pins that say so."""
    evidence: list[str] = []
    found: str | None = None
    for pin in pins:
        local = pin.version.partition("+")[2]
        m = re.fullmatch(r"cu(\d+)(\d)", local)
        if m and pin.name in ("torch", "torchvision", "torchaudio", "tensorflow", "jax", "jaxlib"):
            found = found or f"{m[1]}.{m[2]}"
            evidence.append(f"{pin.name}=={pin.version}")
    if found is None:
        for pin in pins:
            if re.fullmatch(r"nvidia-cuda-runtime(-cu1\d)?", pin.name):
                try:
                    v = Version(pin.version)
                except InvalidVersion:
                    continue
                found = f"{v.major}.{v.minor}"
                evidence.append(f"{pin.name}=={pin.version}")
        if found is None and any(re.fullmatch(r"nvidia-.*-cu1[12]", p.name) for p in pins):
            major = "12" if any(p.name.endswith("-cu12") for p in pins) else "11"
            found = "12.1" if major == "12" else "11.8"
            evidence.extend(
                f"{p.name}=={p.version}" for p in pins if re.fullmatch(r"nvidia-.*-cu1[12]", p.name)
            )
    return (found, tuple(evidence[:3])) if found else None


def conda_only(deps: Sequence[CondaDep]) -> tuple[CondaDep, ...]:
    return tuple(d for d in deps if d.name not in ("python", "pip"))


def system_packages(pins: Iterable[Pin]) -> tuple[str, ...]:
    out: set[str] = set()
    for pin in pins:
        out.update(SYSTEM_PACKAGES.get(pin.name, ()))
    for name in out:
        if not _APT_NAME.match(name):  # pragma: no cover - the table is ours
            raise unsafe("system package", name, "not a Debian package name")
    return tuple(sorted(out))


# --------------------------------------------------------------------------------------
# context pieces


def model_files(
    folder: Path, selection: Contents | None = None
) -> tuple[list[ContextFile], list[Finding]]:
    """The model folder's files, sorted, under ``model/`` in the context: those
    ``selection`` includes (contents.select), or without one every regular file."""
    out: list[ContextFile] = []
    findings: list[Finding] = []
    root = folder.resolve()
    wanted = selection.paths() if selection is not None else None
    paths = sorted(root / rel for rel in wanted) if wanted is not None else sorted(root.rglob("*"))
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if any(part in ("__pycache__", ".git") for part in PurePosixPath(rel).parts):
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            target = inside(root, rel, location=Location(file=rel))
            if path.is_symlink() and target.is_file():
                out.append(ContextFile(path=f"model/{rel}", source=target))
                continue
            if not path.is_dir():
                findings.append(
                    Finding(
                        code="EB408",
                        severity=Severity.WARNING,
                        message=f"{rel} is not a regular file; not copied into the image",
                        location=Location(file=rel),
                    )
                )
            continue
        if path.is_file():
            check_text("model file name", rel, Location(file=rel))
            out.append(ContextFile(path=f"model/{rel}", source=path))
    return out, findings


def server_package() -> str:
    from envbuild import serving

    return str(getattr(serving, "SERVE_PACKAGE", "envbuild_serve"))


def server_files() -> list[ContextFile]:
    """The in-image server: envbuild/serve/ (pure Python, relative imports only) copied
    under ``.envbuild/server/<SERVE_PACKAGE>/``."""
    serve = Path(__file__).resolve().parent / "serve"
    files = sorted(p for p in serve.rglob("*.py") if "__pycache__" not in p.parts)
    if not any(p.name == "__main__.py" for p in files):
        raise InputError(
            f"the server package {serve} is missing or has no __main__.py",
            hint="reinstall envbuild (the wheel carries envbuild/serve)",
            code="EB409",
        )
    package = server_package()
    return [
        ContextFile(
            path=f".envbuild/server/{package}/{p.relative_to(serve).as_posix()}",
            source=p,
        )
        for p in files
    ]


def server_sha256(files: Iterable[ContextFile]) -> str:
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f.path.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def _conda_environment(deps: Sequence[CondaDep], channels: Sequence[str], python_xy: str) -> str:
    lines = ["# envbuild: the conda part of the model's environment", "channels:"]
    for ch in channels or ("conda-forge",):
        check_text("conda channel", ch)
        if not re.fullmatch(r"[A-Za-z0-9_./:-]+", ch):
            raise unsafe("conda channel", ch, "not a channel name or URL")
        lines.append(f"  - {ch}")
    lines.append("dependencies:")
    lines.append(f"  - python={python_xy}")
    lines.append("  - pip")
    for dep in sorted(deps, key=lambda d: d.name):
        check_text("conda dependency", dep.raw, dep.location)
        if not re.fullmatch(r"[A-Za-z0-9_.:/=<>!*,|+ -]+", dep.raw):
            raise unsafe("conda dependency", dep.raw, "not a conda match spec", dep.location)
        lines.append(f"  - {json.dumps(dep.raw)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# render


def _flavor_summary(folder: ModelFolder) -> str:
    names = [f.name for f in folder.mlmodel.flavors if f.name != "python_function"]
    loader = folder.mlmodel.pyfunc.loader_module if folder.mlmodel.pyfunc else None
    parts = names or ["python_function"]
    return ", ".join(parts) + (f"; loader {loader}" if loader else "")


def render(
    folder: ModelFolder,
    lock: LockView,
    *,
    command: str,
    tag: str | None = None,
    base_image: str | None = None,
    override: WorkspaceEnv | None = None,
    wheelhouse: Sequence[Path] = (),
    buildkit: bool = False,
    uv_binary: Path | None = None,
    uv_requirement: str | None = None,
    source: str | None = None,
    created: str | None = None,
    model_labels: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
) -> BuildPlan:
    """Render the Dockerfile and list the build context for ``folder`` installed from
    ``lock``. ``wheelhouse`` lists downloaded wheels to install with ``--no-index``.
    ``model_labels`` (``ModelSource.labels()``: where the model came from, its registered
    name, version and run id) are added to the image labels. ``exclude`` and
    ``allow_files`` shape which model files are copied (contents.select); a secret-looking
    file or an LFS pointer the model needs refuses the render (RefusedFiles, exit 1)."""
    findings: list[Finding] = []
    command_line = check_text("command", command)
    python_xy = lock.python_version
    if not _PY_XY.match(python_xy):
        raise unsafe("Python version", python_xy, "expected X.Y such as 3.11")
    if not _PLATFORM.match(lock.platform):
        raise unsafe("platform", lock.platform, "expected linux/amd64 or linux/arm64")
    pins, _ = parse_lock(lock.text)
    spec = override.spec if override is not None else folder.env.spec
    for req in spec.requirements:
        check_text("requirement", req.raw, req.location)
    index = split_index_options(lock.text, wheelhouse=bool(wheelhouse))

    cuda = cuda_version(pins)
    conda = conda_only(spec.conda)
    kind = BuildKind.PIP
    default_base = f"python:{python_xy}-slim"
    python_source = "only-system"
    if conda:
        kind = BuildKind.CONDA
        default_base = CONDA_RUNTIME_IMAGE
        findings.append(
            Finding(
                code="EB404",
                severity=Severity.INFO,
                message="conda-only packages "
                + ", ".join(sorted(d.name for d in conda))
                + ": rendering the micromamba path (needs a conda channel to build)",
                location=conda[0].location,
            )
        )
    elif cuda:
        kind = BuildKind.CUDA
        tag_version = CUDA_IMAGES.get(cuda[0], f"{cuda[0]}.0")
        default_base = f"nvidia/cuda:{tag_version}-runtime-ubuntu22.04"
        python_source = "only-managed"
        findings.append(
            Finding(
                code="EB405",
                severity=Severity.INFO,
                message=f"CUDA {cuda[0]} builds in the lock ({', '.join(cuda[1])}): "
                f"base image {default_base}",
            )
        )
    chosen = base_image or (override.image if override is not None else None) or default_base
    check_image(chosen)
    if override is not None and override.image and not base_image:
        findings.append(
            Finding(
                code="EB406",
                severity=Severity.INFO,
                message=f"base image {override.image} from {override.file}",
                location=Location(file=override.file, field="image"),
            )
        )
    if chosen != default_base and kind is BuildKind.PIP:
        # a base of the user's choosing may not carry the model's Python: let uv fetch one
        python_source = "system"

    if index.secrets and not buildkit:
        raise InputError(
            "the lock names an index URL with credentials; this engine has no BuildKit, "
            "so they could only travel inside a layer",
            hint="use --wheelhouse (wheels are downloaded on this machine) or an engine with "
            "BuildKit (docker buildx)",
            code="EB403",
        )

    selection = select(folder, exclude=exclude, allow_files=allow_files)
    if selection.blocking():
        raise RefusedFiles(selection.blocking())
    findings.extend(selection.findings())
    files: list[ContextFile] = []
    mfiles, mfind = model_files(folder.path, selection)
    files.extend(mfiles)
    findings.extend(mfind)
    files.extend(server_files())
    files.append(ContextFile(path=".envbuild/requirements.lock", data=index.lock_text.encode()))
    files.append(
        ContextFile(
            path=".envbuild/bytecode.py", source=Path(__file__).parent / "_scripts" / "bytecode.py"
        )
    )
    install_args: list[tuple[str, ...]] = []
    packed = 0
    if wheelhouse:
        install_args.extend((("--no-index",), ("--find-links", "/tmp/envbuild/wheels")))
        for wheel in sorted(wheelhouse, key=lambda p: p.name):
            check_text("wheel file name", wheel.name)
            files.append(ContextFile(path=f".envbuild/wheels/{wheel.name}", source=wheel))
    else:
        install_args.extend(
            tuple(index.install_args[i : i + 2]) for i in range(0, len(index.install_args), 2)
        )
        if index.find_links:
            wanted = {(p.name, p.version.split("+")[0]) for p in pins}
            for directory in index.find_links:
                here = 0
                for wheel in sorted(directory.glob("*.whl")) if directory.is_dir() else ():
                    try:
                        name, version, _, _ = parse_wheel_filename(wheel.name)
                    except InvalidWheelFilename:
                        continue  # not a wheel uv would install either
                    if (name, version.public) in wanted:
                        files.append(
                            ContextFile(path=f".envbuild/links/{wheel.name}", source=wheel)
                        )
                        here += 1
                packed += here
                findings.append(
                    Finding(
                        code="EB407",
                        severity=Severity.INFO,
                        message=f"--find-links {directory}: {here} wheel(s) packed into the context",
                    )
                )
            if packed:
                install_args.append(("--find-links", "/tmp/envbuild/links"))
    # uv comes from the context (a stage of its own keeps it out of the image) or is
    # fetched, hash-pinned, by the base image's pip and removed in the same step.
    staged = bool(wheelhouse) or packed > 0 or kind is not BuildKind.PIP
    if uv_requirement is not None and not (staged and uv_binary is not None):
        check_requirement(uv_requirement)
        uv_from = "pip"
        files.append(ContextFile(path=".envbuild/uv.txt", data=(uv_requirement + "\n").encode()))
    elif uv_binary is not None:
        uv_from = "context"
        staged = True
        files.append(ContextFile(path=".envbuild/uv", source=uv_binary, executable=True))
    else:
        raise InputError(
            f"no uv for {lock.platform}: this machine's uv runs on another platform and "
            "uv's hashes could not be fetched",
            hint="run envbuild on the target platform, or with access to the package index",
            code="EB409",
        )
    if kind is not BuildKind.PIP and uv_from != "context":
        raise InputError(
            f"the {kind.value} path needs this machine's uv binary for the target platform",
            hint="run envbuild on the target platform",
            code="EB409",
        )
    if kind is BuildKind.CONDA:
        files.append(
            ContextFile(
                path=".envbuild/environment.yml",
                data=_conda_environment(conda, spec.channels, python_xy).encode(),
            )
        )

    m = folder.mlmodel
    model_name = folder.path.resolve().name
    labels = {
        "org.opencontainers.image.title": tag.split(":")[0] if tag else model_name,
        "org.opencontainers.image.description": f"MLflow model {model_name} served by envbuild",
        "org.opencontainers.image.version": tag.rsplit(":", 1)[1]
        if tag and ":" in tag.rsplit("/", 1)[-1]
        else "latest",
        "org.opencontainers.image.base.name": chosen,
        "org.opencontainers.image.source": source or "",
        "org.opencontainers.image.revision": m.run_id or "",
        "org.opencontainers.image.vendor": "envbuild",
        "io.envbuild.version": __version__,
        "io.envbuild.command": command_line,
        "io.envbuild.model.run-id": m.run_id or "",
        "io.envbuild.model.uuid": m.model_uuid or "",
        "io.envbuild.model.mlflow-version": m.mlflow_version or "",
        "io.envbuild.lock.sha256": lock.sha256,
        "io.envbuild.python": python_xy,
        "io.envbuild.platform": lock.platform,
        "io.envbuild.kind": kind.value,
    }
    if created:
        labels["org.opencontainers.image.created"] = created
    labels.update(model_labels or {})
    label_items = tuple(sorted((k, v) for k, v in labels.items() if v != "" or k.startswith("io.")))
    context: dict[str, Any] = {
        "envbuild_version": __version__,
        "command_line": command_line,
        "model_name": model_name,
        "flavor_summary": _flavor_summary(folder),
        "python_xy": python_xy,
        "platform": lock.platform,
        "base_image": chosen,
        "labels": label_items,
        "buildkit": buildkit,
        "secrets": [{"id": s.id, "env": s.env} for s in index.secrets],
        "install_args": install_args,
        "wheelhouse": bool(wheelhouse),
        "links": packed > 0,
        "uv_from": uv_from,
        "staged": staged,
        "python_source": python_source,
        "system_packages": system_packages(pins),
        "runtime_env": _runtime_env(folder),
        "bytecode_defer": serving_runtime_only(lock.text),
        "bytecode_warm": warm_imports(folder),
        "port": PORT,
        "health_path": HEALTH_PATH,
        "uid": UID,
        "entrypoint": ["/opt/envbuild/venv/bin/python", "-m", server_package()],
        "conda_only": [d.name for d in conda],
        "micromamba_image": MICROMAMBA_IMAGE,
        "cuda_version": cuda[0] if cuda else "",
        "cuda_evidence": list(cuda[1]) if cuda else [],
    }
    for key, _value in context["runtime_env"]:
        if not _ENV_NAME.match(key):
            raise unsafe("environment variable name", key, "not NAME_LIKE_THIS")
    template = _environment().get_template(f"Dockerfile.{kind.value}.j2")
    dockerfile = template.render(**context)
    for raw_line in dockerfile.splitlines():
        check_text("Dockerfile line", raw_line)
    files.append(ContextFile(path="Dockerfile", data=dockerfile.encode()))
    files.sort(key=lambda f: f.path)
    return BuildPlan(
        kind=kind,
        dockerfile=dockerfile,
        files=tuple(files),
        base_image=chosen,
        python_version=python_xy,
        platform=lock.platform,
        labels=label_items,
        lock_sha256=lock.sha256,
        secrets=index.secrets,
        buildkit=buildkit,
        buildable=kind is BuildKind.PIP,
        findings=tuple(findings),
    )


def _runtime_env(folder: ModelFolder) -> list[tuple[str, str]]:
    """Environment the server needs: where the model is, MLflow quiet and offline."""
    env = {
        "ENVBUILD_MODEL_DIR": "/opt/envbuild/model",
        "MLFLOW_TRACKING_URI": "file:///tmp/mlruns",
        "MLFLOW_DISABLE_ENV_CREATION": "true",
        # The image exists to load this one model (MLflow 3 refuses pickled artifacts
        # otherwise); `envbuild check` scans its pickles before anyone builds.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    return sorted(env.items())
