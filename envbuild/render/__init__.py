"""Render a model's build: a Dockerfile from templates/ plus the files of its build context.

Rendering is pure: it reads the model folder and the lock and returns a ``BuildPlan`` (text
and bytes); writing the context and calling Docker happen in build.py. Every value that
reaches a ``RUN`` line is validated or shell-quoted first (safety.py), so no requirement
string, index URL or package name can add an instruction to the Dockerfile.

``render()`` runs four steps: the inputs (target, pins, base image, context files), the
template context, the Dockerfile text, and the check of that text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from envbuild import __version__
from envbuild._adapters import uv as _uv
from envbuild.contents import RefusedFiles, select
from envbuild.errors import InputError
from envbuild.findings import Code, Finding, Severity, table
from envbuild.flavors import RUNTIME_ENV, SYSTEM_PACKAGES
from envbuild.read import EnvSpec, ModelFolder, WorkspaceEnv
from envbuild.render.base import (
    EB404,
    EB405,
    EB406,
    EB412,
    MICROMAMBA_IMAGE,
    Base,
    choose_base,
)
from envbuild.render.context import (
    EB407,
    EB408,
    IndexPlan,
    bytecode_script,
    conda_environment,
    find_links_files,
    model_files,
    server_files,
    server_package,
    server_sha256,
    split_index_options,
    uv_source,
    wheelhouse_files,
)
from envbuild.render.detect import (
    SYSTEM_CUDA,
    conda_only,
    cuda_version,
    system_packages,
    warm_imports,
)
from envbuild.render.lock import serving_runtime_only
from envbuild.render.plan import BuildKind, BuildPlan, ContextFile, Secret
from envbuild.render.safety import FILTERS, check_image, check_requirement, check_text, unsafe
from envbuild.render.sbom import SBOM_FILE, SBOM_LABEL, SBOM_PATH, sbom_json
from envbuild.render.source import EB411, SourceBuilds, refuse_source_builds, source_builds
from envbuild.resolve.lock import Lock, Pin
from envbuild.versions import is_minor, is_platform, minor_of

__all__ = [
    "CODES",
    "HEALTH_PATH",
    "PORT",
    "SYSTEM_CUDA",
    "SYSTEM_PACKAGES",
    "BuildKind",
    "BuildPlan",
    "ContextFile",
    "IndexPlan",
    "Pin",
    "Secret",
    "check_image",
    "check_requirement",
    "check_text",
    "conda_only",
    "cuda_version",
    "model_files",
    "render",
    "server_files",
    "server_package",
    "server_sha256",
    "serving_runtime_only",
    "split_index_options",
    "system_packages",
    "templates_dir",
    "unsafe",
    "warm_imports",
]

# Finding codes of the builder (render/ and build.py); the README table gathers them.
EB401 = Code(
    "EB401",
    Severity.ERROR,
    "a value bound for the Dockerfile is unsafe (newline, control character, bad syntax)",
)
EB402 = Code(
    "EB402",
    Severity.ERROR,
    "a lock line is not a pinned requirement envbuild can install with hashes",
)
EB403 = Code(
    "EB403",
    Severity.ERROR,
    "an index needs credentials and the build has no BuildKit to pass them as secrets",
)
EB409 = Code(
    "EB409", Severity.ERROR, "the server package envbuild copies into the image or venv is missing"
)
CODES: dict[str, str] = table(
    EB401, EB402, EB403, EB404, EB405, EB406, EB407, EB408, EB409, EB411, EB412
)

PORT = 8080
HEALTH_PATH = "/ping"  # the route the HEALTHCHECK and the smoke test probe
UID = 10001
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


# --------------------------------------------------------------------------------------
# templates


def templates_dir() -> Path:
    """The Dockerfile templates. Their home is the top-level templates/ folder; the wheel
    carries it inside the package as envbuild/templates (hatch force-include). So: the
    package's own templates/ when it has one (installed), else the one beside the package
    (a source checkout, editable installs included)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "templates"
    found = installed if installed.is_dir() else package.parent / "templates"
    if not (found / "Dockerfile.pip.j2").is_file():
        raise InputError(
            "envbuild's Dockerfile templates are missing",
            hint="reinstall envbuild; the wheel carries them as envbuild/templates",
            code="EB409",
        )
    return found


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=False,
    )
    env.filters.update(FILTERS)
    return env


# --------------------------------------------------------------------------------------
# step 1: the inputs


@dataclass(frozen=True, kw_only=True)
class _Target:
    """The checked command line and lock target, the lock's pins and index options, and
    the environment spec the image installs."""

    command_line: str
    python_xy: str
    platform: str
    pins: tuple[Pin, ...]
    spec: EnvSpec
    index: IndexPlan


def _target(
    folder: ModelFolder,
    lock: Lock,
    *,
    command: str,
    override: WorkspaceEnv | None,
    wheelhouse: bool,
    credentials: Sequence[str] = (),
) -> _Target:
    command_line = check_text("command", command)
    python_xy = lock.python_version
    if not is_minor(python_xy):
        raise unsafe("Python version", python_xy, "expected X.Y such as 3.11")
    if not is_platform(lock.platform):
        raise unsafe("platform", lock.platform, "expected linux/amd64 or linux/arm64")
    spec = override.spec if override is not None else folder.env.spec
    for req in spec.requirements:
        check_text("requirement", req.raw, req.location)
    return _Target(
        command_line=command_line,
        python_xy=python_xy,
        platform=lock.platform,
        pins=lock.pins,
        spec=spec,
        index=split_index_options(lock.text, wheelhouse=wheelhouse, credentials=credentials),
    )


@dataclass(frozen=True, kw_only=True)
class _Context:
    """The build context's files (without the Dockerfile) and how the image installs."""

    files: tuple[ContextFile, ...]
    install_args: tuple[tuple[str, ...], ...]
    links: bool
    uv_from: str
    staged: bool
    source: SourceBuilds | None  # the builder stage for pins with no wheel for the target
    findings: tuple[Finding, ...]


def _context(
    folder: ModelFolder,
    lock: Lock,
    target: _Target,
    base: Base,
    *,
    wheelhouse: Sequence[Path],
    uv_binary: Path | None,
    uv_requirement: str | None,
    exclude: Sequence[str],
    allow_files: Sequence[str],
    lock_sha256: str,
) -> _Context:
    index = target.index
    selection = select(folder, exclude=exclude, allow_files=allow_files)
    if selection.blocking():
        raise RefusedFiles(selection.blocking())
    findings: list[Finding] = list(selection.findings())
    files: list[ContextFile] = []
    mfiles, mfind = model_files(folder.path, selection)
    files.extend(mfiles)
    findings.extend(mfind)
    files.extend(server_files())
    files.append(ContextFile(path=".envbuild/requirements.lock", data=index.lock_text.encode()))
    files.append(bytecode_script())
    install_args: list[tuple[str, ...]] = []
    packed = 0
    if wheelhouse:
        install_args.extend((("--no-index",), ("--find-links", "/tmp/envbuild/wheels")))
        files.extend(wheelhouse_files(wheelhouse))
    else:
        install_args.extend(
            tuple(index.install_args[i : i + 2]) for i in range(0, len(index.install_args), 2)
        )
        if index.find_links:
            links, lfind, packed = find_links_files(index.find_links, target.pins)
            files.extend(links)
            findings.extend(lfind)
            if packed:
                install_args.append(("--find-links", "/tmp/envbuild/links"))
    if lock.source_builds and (wheelhouse or base.kind is not BuildKind.PIP):
        raise refuse_source_builds(
            lock,
            "--wheelhouse installs downloaded wheels only"
            if wheelhouse
            else f"the {base.kind.value} path has no builder stage to compile them",
        )
    source = source_builds(
        lock,
        index.lock_text,
        install_args=install_args,
        secrets=index.secrets,
    )
    if source is not None:
        files.extend(source.files)
    uv = uv_source(
        kind=base.kind,
        staged=bool(wheelhouse) or packed > 0 or base.kind is not BuildKind.PIP or bool(source),
        platform=target.platform,
        uv_binary=uv_binary,
        uv_requirement=uv_requirement,
    )
    files.append(uv.file)
    if base.kind is BuildKind.CONDA:
        files.append(
            ContextFile(
                path=".envbuild/environment.yml",
                data=conda_environment(base.conda, target.spec.channels, target.python_xy).encode(),
            )
        )
    return _Context(
        files=tuple(files),
        install_args=tuple(install_args),
        links=packed > 0,
        uv_from=uv.origin,
        staged=uv.staged,
        source=source,
        findings=tuple(findings),
    )


def _labels(
    folder: ModelFolder,
    lock: Lock,
    target: _Target,
    base: Base,
    *,
    tag: str | None,
    source: str | None,
    created: str | None,
    model_labels: Mapping[str, str] | None,
) -> tuple[tuple[str, str], ...]:
    m = folder.mlmodel
    model_name = folder.path.resolve().name
    labels = {
        "org.opencontainers.image.title": tag.split(":")[0] if tag else model_name,
        "org.opencontainers.image.description": f"MLflow model {model_name} served by envbuild",
        "org.opencontainers.image.version": tag.rsplit(":", 1)[1]
        if tag and ":" in tag.rsplit("/", 1)[-1]
        else "latest",
        "org.opencontainers.image.base.name": base.image,
        "org.opencontainers.image.source": source or "",
        "org.opencontainers.image.revision": m.run_id or "",
        "org.opencontainers.image.vendor": "envbuild",
        "io.envbuild.version": __version__,
        "io.envbuild.command": target.command_line,
        "io.envbuild.model.run-id": m.run_id or "",
        "io.envbuild.model.uuid": m.model_uuid or "",
        "io.envbuild.model.mlflow-version": m.mlflow_version or "",
        "io.envbuild.lock.sha256": lock.sha256,
        "io.envbuild.python": target.python_xy,
        "io.envbuild.platform": target.platform,
        "io.envbuild.kind": base.kind.value,
        SBOM_LABEL: SBOM_PATH,
    }
    if created:
        labels["org.opencontainers.image.created"] = created
    labels.update(model_labels or {})
    return tuple(sorted((k, v) for k, v in labels.items() if v != "" or k.startswith("io.")))


# --------------------------------------------------------------------------------------
# step 2: the template context


def _flavor_summary(folder: ModelFolder) -> str:
    names = [f.name for f in folder.mlmodel.flavors if f.name != "python_function"]
    loader = folder.mlmodel.pyfunc.loader_module if folder.mlmodel.pyfunc else None
    parts = names or ["python_function"]
    return ", ".join(parts) + (f"; loader {loader}" if loader else "")


def _runtime_env(folder: ModelFolder, pins: Sequence[Pin]) -> list[tuple[str, str]]:
    """Environment the server needs: where the model is, MLflow quiet and offline, and what
    a locked library's runtime needs (Spark's driver on loopback)."""
    env = {
        **{k: v for pin in pins for k, v in RUNTIME_ENV.get(pin.name, ())},
        "ENVBUILD_MODEL_DIR": "/opt/envbuild/model",
        "MLFLOW_TRACKING_URI": "file:///tmp/mlruns",
        "MLFLOW_DISABLE_ENV_CREATION": "true",
        # The image exists to load this one model (MLflow 3 refuses pickled artifacts
        # otherwise); `envbuild check` scans its pickles before anyone builds.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    return sorted(env.items())


def _template_context(
    folder: ModelFolder,
    lock: Lock,
    target: _Target,
    base: Base,
    context: _Context,
    labels: tuple[tuple[str, str], ...],
    *,
    buildkit: bool,
    wheelhouse: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "envbuild_version": __version__,
        "command_line": target.command_line,
        "model_name": folder.path.resolve().name,
        "flavor_summary": _flavor_summary(folder),
        "python_xy": target.python_xy,
        "platform": target.platform,
        "base_image": base.image,
        "labels": labels,
        "buildkit": buildkit,
        "secrets": [{"id": s.id, "env": s.env} for s in target.index.secrets],
        "install_args": list(context.install_args),
        "wheelhouse": wheelhouse,
        "links": context.links,
        "uv_from": context.uv_from,
        "uv_ignores_python": (minor_of(target.python_xy) or (0, 0)) < _uv.WHEEL_REQUIRES_PYTHON,
        "staged": context.staged,
        "source_builds": list(context.source.names) if context.source else [],
        "source_pins": context.source.describe(lock) if context.source else "",
        "builder_args": list(context.source.pip_args) if context.source else [],
        "builder_secrets": list(context.source.pip_secrets) if context.source else [],
        "python_source": base.python_source,
        "system_packages": system_packages(target.pins),
        "runtime_env": _runtime_env(folder, target.pins),
        "bytecode_defer": serving_runtime_only(lock.pins),
        "bytecode_warm": warm_imports(folder),
        "sbom_file": SBOM_FILE,
        "sbom_path": SBOM_PATH,
        "port": PORT,
        "health_path": HEALTH_PATH,
        "uid": UID,
        "entrypoint": ["/opt/envbuild/venv/bin/python", "-m", server_package()],
        "conda_only": [d.name for d in base.conda],
        "micromamba_image": MICROMAMBA_IMAGE,
        "cuda_version": base.cuda[0] if base.cuda else "",
        "cuda_evidence": list(base.cuda[1]) if base.cuda else [],
        "cuda_reason": base.cuda_reason,
    }
    for key, _value in values["runtime_env"]:
        if not _ENV_NAME.match(key):
            raise unsafe("environment variable name", key, "not NAME_LIKE_THIS")
    return values


# --------------------------------------------------------------------------------------
# steps 3 and 4: the text, and its check


def _dockerfile(kind: BuildKind, values: Mapping[str, Any]) -> str:
    return _environment().get_template(f"Dockerfile.{kind.value}.j2").render(**values)


def _check_dockerfile(dockerfile: str) -> str:
    """The rendered text, line by line: a value that slipped past the filters and would
    start an instruction of its own is refused here."""
    for raw_line in dockerfile.splitlines():
        check_text("Dockerfile line", raw_line)
    return dockerfile


def render(
    folder: ModelFolder,
    lock: Lock,
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
    gpu: bool = False,
    credentials: Sequence[str] = (),
) -> BuildPlan:
    """Render the Dockerfile and list the build context for ``folder`` installed from
    ``lock``. ``wheelhouse`` lists downloaded wheels to install with ``--no-index``.
    ``model_labels`` (``ModelSource.labels()``: where the model came from, its registered
    name, version and run id) are added to the image labels. ``exclude`` and
    ``allow_files`` shape which model files are copied (contents.select); a secret-looking
    file or an LFS pointer the model needs refuses the render (RefusedFiles, exit 1).
    ``gpu`` renders NVIDIA's CUDA runtime base (detect.py: CUDA wheels alone do not)."""
    target = _target(
        folder,
        lock,
        command=command,
        override=override,
        wheelhouse=bool(wheelhouse),
        credentials=credentials,
    )
    base = choose_base(
        target.pins,
        target.python_xy,
        target.spec.conda,
        base_image=base_image,
        override=override,
        gpu=gpu,
    )
    if target.index.secrets and not buildkit:
        raise InputError(
            "the lock names an index that needs credentials; this build has no BuildKit, "
            "so they could only travel inside a layer",
            hint="use --wheelhouse (wheels are downloaded on this machine), or build with "
            "BuildKit (--builder auto finds a Docker CLI that has it: docker buildx, or "
            "Debian's docker.io with DOCKER_BUILDKIT=1)",
            code="EB403",
        )
    context = _context(
        folder,
        lock,
        target,
        base,
        wheelhouse=wheelhouse,
        uv_binary=uv_binary,
        uv_requirement=uv_requirement,
        exclude=exclude,
        allow_files=allow_files,
        lock_sha256=lock.sha256,
    )
    labels = _labels(
        folder,
        lock,
        target,
        base,
        tag=tag,
        source=source,
        created=created,
        model_labels=model_labels,
    )
    values = _template_context(
        folder, lock, target, base, context, labels, buildkit=buildkit, wheelhouse=bool(wheelhouse)
    )
    dockerfile = _check_dockerfile(_dockerfile(base.kind, values))
    sbom = ContextFile(path=SBOM_FILE, data=sbom_json(folder, lock, base_image=base.image).encode())
    files = sorted(
        (*context.files, sbom, ContextFile(path="Dockerfile", data=dockerfile.encode())),
        key=lambda f: f.path,
    )
    return BuildPlan(
        kind=base.kind,
        dockerfile=dockerfile,
        files=tuple(files),
        base_image=base.image,
        python_version=target.python_xy,
        platform=target.platform,
        labels=labels,
        lock_sha256=lock.sha256,
        secrets=target.index.secrets,
        buildkit=buildkit,
        buildable=base.kind is BuildKind.PIP,
        findings=(*base.findings, *context.findings),
    )
