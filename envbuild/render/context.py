"""The files of the build context besides the Dockerfile: the model's files, the in-image
server, the lock without its index options (URLs with credentials become BuildKit secrets),
the wheels of local --find-links directories, uv, and the conda environment."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from envbuild._paths import inside
from envbuild._redact import has_credentials, strip_credentials
from envbuild.contents import Contents
from envbuild.credentials import for_url, plain
from envbuild.errors import InputError
from envbuild.findings import Code, Finding, Location, Severity
from envbuild.read import CondaDep
from envbuild.render.plan import BuildKind, ContextFile, Secret
from envbuild.render.safety import check_requirement, check_text, unsafe
from envbuild.resolve.lock import Pin

EB407 = Code(
    "EB407", Severity.INFO, "a local --find-links directory is packed into the build context"
)
EB408 = Code(
    "EB408", Severity.WARNING, "a model file is a symbolic link or special file and is not copied"
)


# envbuild/, whose serve/ and _scripts/ are copied into the context
_PACKAGE = Path(__file__).resolve().parents[1]


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
                    EB408.at(
                        Location(file=rel),
                        f"{rel} is not a regular file; not copied into the image",
                    )
                )
            continue
        if path.is_file():
            check_text("model file name", rel, Location(file=rel))
            out.append(_without_credentials(path, f"model/{rel}"))
    return out, findings


# the environment files (requirements.txt, conda.yaml, python_env.yaml, -r includes) may
# name an index with its password: the copy in the image has the URLs without it
_ENV_SUFFIXES = (".txt", ".in", ".yaml", ".yml", ".toml", ".cfg")
_HTTP_URL = re.compile(r"https?://[^\s'\"]+", re.I)  # not git+ssh://git@host: no secret


def _without_credentials(path: Path, dest: str) -> ContextFile:
    if path.suffix.lower() not in _ENV_SUFFIXES or path.stat().st_size > 1 << 20:
        return ContextFile(path=dest, source=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ContextFile(path=dest, source=path)
    stripped = _HTTP_URL.sub(lambda m: strip_credentials(m.group(0)), text)
    if stripped == text:
        return ContextFile(path=dest, source=path)
    return ContextFile(path=dest, data=stripped.encode("utf-8"))


def server_package() -> str:
    from envbuild import serving

    return str(getattr(serving, "SERVE_PACKAGE", "envbuild_serve"))


def server_files() -> list[ContextFile]:
    """The in-image server: envbuild/serve/ (pure Python, relative imports only) copied
    under ``.envbuild/server/<SERVE_PACKAGE>/``."""
    serve = _PACKAGE / "serve"
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


@dataclass(frozen=True, kw_only=True)
class IndexPlan:
    """The lock's index options split into what may appear in the context and what must
    travel as a secret."""

    lock_text: str  # the lock as copied into the context: index/link options removed
    install_args: tuple[str, ...]
    secrets: tuple[Secret, ...]
    find_links: tuple[Path, ...]  # local directories whose wheels go into the context
    indexes: tuple[str, ...] = ()  # the index URLs (without credentials), for the SBOM


def split_index_options(
    text: str, *, wheelhouse: bool, credentials: Sequence[str] = ()
) -> IndexPlan:
    """Move index options out of the lock: public URLs become quoted uv arguments, URLs
    with credentials (in the lock, or found in ``credentials`` for the same index: see
    envbuild/credentials.py) become secrets, local --find-links directories are packed."""
    kept: list[str] = []
    args: list[str] = []
    secrets: list[Secret] = []
    links: list[Path] = []
    indexes: list[str] = []
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
            indexes.append(plain(value))
            env = "UV_DEFAULT_INDEX" if opt in ("-i", "--index-url") else "UV_INDEX"
            if found := _with_credentials(value, credentials):
                secrets.append(Secret(id=f"envbuild_index_{len(secrets)}", env=env, value=found))
            else:
                flag = "--default-index" if env == "UV_DEFAULT_INDEX" else "--index"
                args.extend((flag, check_text("index URL", plain(value))))
            continue
        if opt in ("-f", "--find-links"):
            if found := _with_credentials(value, credentials):
                secrets.append(
                    Secret(id=f"envbuild_links_{len(secrets)}", env="UV_FIND_LINKS", value=found)
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
        indexes=tuple(indexes),
    )


def conda_environment(deps: Sequence[CondaDep], channels: Sequence[str], python_xy: str) -> str:
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


def bytecode_script() -> ContextFile:
    """The script that compiles the venv's bytecode at build time."""
    return ContextFile(path=".envbuild/bytecode.py", source=_PACKAGE / "_scripts" / "bytecode.py")


def wheelhouse_files(wheelhouse: Sequence[Path]) -> list[ContextFile]:
    """Downloaded wheels, installed with ``--no-index`` from ``/tmp/envbuild/wheels``."""
    files = []
    for wheel in sorted(wheelhouse, key=lambda p: p.name):
        check_text("wheel file name", wheel.name)
        files.append(ContextFile(path=f".envbuild/wheels/{wheel.name}", source=wheel))
    return files


def find_links_files(
    directories: Sequence[Path], pins: Sequence[Pin]
) -> tuple[list[ContextFile], list[Finding], int]:
    """The wheels of local --find-links directories that the lock pins, with one EB407 per
    directory, and how many were packed."""
    files: list[ContextFile] = []
    findings: list[Finding] = []
    packed = 0
    wanted = {(p.name, str(p.version).split("+")[0]) for p in pins}
    for directory in directories:
        here = 0
        for wheel in sorted(directory.glob("*.whl")) if directory.is_dir() else ():
            try:
                name, version, _, _ = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue  # not a wheel uv would install either
            if (name, version.public) in wanted:
                files.append(ContextFile(path=f".envbuild/links/{wheel.name}", source=wheel))
                here += 1
        packed += here
        findings.append(
            EB407.at(
                Location(), f"--find-links {directory}: {here} wheel(s) packed into the context"
            )
        )
    return files, findings, packed


@dataclass(frozen=True, kw_only=True)
class UvSource:
    """Where the image gets uv: ``pip`` (hash-pinned requirement) or ``context`` (this
    machine's binary), and whether a stage of its own keeps it out of the image."""

    origin: str
    staged: bool
    file: ContextFile


def uv_source(
    *,
    kind: BuildKind,
    staged: bool,
    platform: str,
    uv_binary: Path | None,
    uv_requirement: str | None,
) -> UvSource:
    """uv comes from the context (a stage of its own keeps it out of the image) or is
    fetched, hash-pinned, by the base image's pip and removed in the same step."""
    if uv_requirement is not None and not (staged and uv_binary is not None):
        check_requirement(uv_requirement)
        source = UvSource(
            origin="pip",
            staged=staged,
            file=ContextFile(path=".envbuild/uv.txt", data=(uv_requirement + "\n").encode()),
        )
    elif uv_binary is not None:
        source = UvSource(
            origin="context",
            staged=True,
            file=ContextFile(path=".envbuild/uv", source=uv_binary, executable=True),
        )
    else:
        raise InputError(
            f"no uv for {platform}: this machine's uv runs on another platform and "
            "uv's hashes could not be fetched",
            hint="run envbuild on the target platform, or with access to the package index",
            code="EB409",
        )
    if kind is not BuildKind.PIP and source.origin != "context":
        raise InputError(
            f"the {kind.value} path needs this machine's uv binary for the target platform",
            hint="run envbuild on the target platform",
            code="EB409",
        )
    return source


def _with_credentials(value: str, credentials: Sequence[str]) -> str | None:
    """The URL with credentials for this index line: its own literal ones, else the first
    source's (None: the build is given the URL as it is, without any)."""
    if has_credentials(value) and "${" not in value:
        return value
    return for_url(value, credentials)
