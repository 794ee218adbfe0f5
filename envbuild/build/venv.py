"""The virtualenv: an interpreter of the model's Python (PATH, then pyenv), the lock
installed with hashes (uv), the server beside it, and the stamp that lets a matching venv
be reused."""

from __future__ import annotations

import ctypes.util
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._adapters import uv as _uv
from envbuild._adapters.run import run
from envbuild.build.smoke import SmokeResult
from envbuild.errors import FailedError, InputError, ToolError
from envbuild.findings import Code, Finding, Location, Severity
from envbuild.flavors import SYSTEM_PACKAGES as _SYSTEM
from envbuild.output import write_atomic
from envbuild.render import server_files, server_sha256, system_packages
from envbuild.resolve.lock import Lock
from envbuild.versions import is_minor

log = logging.getLogger("envbuild")

_VERSION_SCRIPT = "import sys; print('%d.%d' % sys.version_info[:2])"


def _version_of(exe: Path) -> str | None:
    done = run([exe, "-c", _VERSION_SCRIPT], timeout=20)
    return done.stdout.strip() if done.ok else None


def pyenv_versions() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        done = run(["pyenv", "root"])
        root = done.stdout.strip() if done.ok else None
    path = Path(root or Path.home() / ".pyenv") / "versions"
    return path if path.is_dir() else None


def find_python(want: str | None, python_xy: str) -> tuple[Path, str]:
    """An interpreter for ``want`` (a path, or X.Y) or else the model's X.Y: PATH first
    (pyenv shims skipped: they may point elsewhere), then pyenv's versions folder."""
    if want and (os.sep in want or Path(want).is_file()):
        exe = Path(want)
        version = _version_of(exe) if exe.is_file() else None
        if version is None:
            raise ToolError(
                f"{want} is not a working Python interpreter",
                hint="pass --python X.Y or the path of a python executable",
                code="EB902",
            )
        return exe, version
    xy = want or python_xy
    if not is_minor(xy):
        raise InputError(f"--python {xy!r} is neither a path nor X.Y", code="EB902")
    candidates: list[Path] = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d and "shims" not in Path(d).parts:
            candidates.append(Path(d) / f"python{xy}")
    versions = pyenv_versions()
    if versions is not None:

        def key(p: Path) -> tuple[int, ...]:
            return tuple(int(x) for x in re.findall(r"\d+", p.name)[:3])

        found = [
            p for p in versions.glob(f"{xy}.*") if re.fullmatch(rf"{re.escape(xy)}\.\d+", p.name)
        ]
        for p in sorted(found, key=key, reverse=True):
            candidates.append(p / "bin" / f"python{xy}")
    for exe in candidates:
        if exe.is_file() and _version_of(exe) == xy:
            return exe, xy
    raise ToolError(
        f"no Python {xy} on this machine (looked in PATH and {versions or 'pyenv versions'})",
        hint=f"install it (e.g. `pyenv install {xy}`) or pass --python PATH|X.Y",
        code="EB902",
    )


STAMP = ".envbuild-venv.json"


@dataclass(frozen=True, kw_only=True)
class VenvResult:
    path: Path
    python: str
    lock_sha256: str
    reused: bool
    seconds: float
    smoke: SmokeResult | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "python": self.python,
            "lock_sha256": self.lock_sha256,
            "reused": self.reused,
            "seconds": round(self.seconds, 2),
            "smoke": self.smoke.to_json() if self.smoke else None,
        }


def model_fingerprint(folder: Path) -> str:
    """Cheap identity of the model's files (path, size, mtime): weights are not re-read."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            st = p.stat()
            h.update(
                f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
            )
    return h.hexdigest()


def read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((path / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def stamp_matches(path: Path, expected: Mapping[str, Any]) -> bool:
    doc = read_stamp(path)
    return (
        doc is not None
        and all(doc.get(k) == v for k, v in expected.items())
        and (path / "bin" / "python").exists()
    )


def write_stamp(path: Path, doc: Mapping[str, Any]) -> None:
    write_atomic(path / STAMP, json.dumps(dict(doc), indent=2, sort_keys=True) + "\n")


def _server_dir(path: Path) -> Path:
    return path / "envbuild-server"


def install_venv(lock: Lock, path: Path, *, python: Path) -> None:
    """Create (or recreate) the venv at ``path`` for ``python`` and install the lock with
    hashes; copy the server beside it, importable through a .pth file.

    No bytecode is compiled up front (uv's default, and prepare-env's): a venv is
    writable, so the smoke prediction's imports write it for everything loading and
    predicting needs, and any other module writes its own on first import. Compiling all
    of it took ~11 s of a 19 s cold `envbuild venv` on 2 cores."""
    if path.exists() and any(path.iterdir()) and not (path / "pyvenv.cfg").is_file():
        raise InputError(
            f"{path} exists and is not a virtualenv",
            hint="name a new folder or an existing venv for --path",
            location=Location(file=str(path)),
            code="EB805",
        )
    done = _uv.create_venv(path, python=python)
    if not done.ok:
        raise FailedError(f"uv venv failed: {done.stderr.strip()[-300:]}", code="EB804")
    lock_file = path / ".envbuild" / "requirements.lock"
    write_atomic(lock_file, lock.text)
    log.info("installing the lock into %s", path)
    done = _uv.install_lock(path, lock_file)
    if not done.ok:
        tail = done.tail()
        raise FailedError(
            "installing the lock failed: " + (tail[-1] if tail else "uv pip install failed"),
            hint=" | ".join(tail[:-1]) or "see `uv pip install` output with -v",
            code="EB804",
        )
    copy_server(path)


def copy_server(path: Path) -> str:
    files = server_files()
    target = _server_dir(path)
    if target.exists():
        shutil.rmtree(target)
    for f in files:
        rel = f.path.removeprefix(".envbuild/server/")
        write_atomic(target / rel, f.read())
    site = next((path / "lib").glob("python3*/site-packages"), None)
    if site is None:
        raise FailedError(f"{path} has no site-packages", code="EB804")
    write_atomic(site / "envbuild_server.pth", str(target) + "\n")
    return server_sha256(files)


EB808 = Code(
    "EB808",
    Severity.WARNING,
    "this machine lacks a system library or program a locked package needs at run time "
    "(an image installs it with apt-get; a venv uses the host's)",
)


def _java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and os.access(Path(home, "bin", "java"), os.X_OK)))


# Debian package (render.detect.system_packages) -> how to find it on the venv's host. Not
# here: libnss-wrapper, which only an image's arbitrary UID needs (a login user has a name).
HOST_PROBES: dict[str, Any] = {
    "libgomp1": lambda: ctypes.util.find_library("gomp") is not None,
    "libgl1": lambda: ctypes.util.find_library("GL") is not None,
    "libglib2.0-0": lambda: ctypes.util.find_library("glib-2.0") is not None,
    "default-jre-headless": _java,
}
_WHAT = {"default-jre-headless": "a Java runtime (java on PATH or JAVA_HOME)"}


def host_findings(lock: Lock) -> list[Finding]:
    """EB808 for each system package the lock's libraries need that this machine lacks:
    the image path installs them (EB233); a venv runs on the host's, so its load would fail
    with the library's own error (lightgbm: libgomp.so.1; pyspark: no java)."""
    out = []
    for package in system_packages(lock.pins):
        probe = HOST_PROBES.get(package)
        if probe is None or probe():
            continue
        needs = sorted(p.name for p in lock.pins if package in _SYSTEM.get(p.name, ()))
        out.append(
            EB808.at(
                Location(file="requirements.lock"),
                f"{', '.join(needs)} needs {_WHAT.get(package, package)} at run time, and "
                f"this machine has none: the venv's model will not load",
                hint=f"install it (Debian/Ubuntu: apt-get install {package}), or use "
                "envbuild image, which installs it",
            )
        )
    return out
