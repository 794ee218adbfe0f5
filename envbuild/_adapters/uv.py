"""The small adapter around the uv binary (the ``uv`` package's ``find_uv_bin``).

Only this module knows uv's command line, its environment variables and the shape of its
``pip compile`` output and failure messages; the resolver sees :class:`CompileResult`,
parsed pins and the facts of a failure (:func:`parse_failure`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from envbuild._adapters.run import Ran, run
from envbuild.errors import ToolError

log = logging.getLogger("envbuild")

INPUT_NAME = "requirements.in"
CONSTRAINTS_NAME = "constraints.in"

# platform names envbuild accepts -> the --python-platform value uv takes
UV_PLATFORMS = {
    "linux/amd64": "x86_64-manylinux_2_28",
    "linux/arm64": "aarch64-manylinux_2_28",
}

# uv's wheels declare Requires-Python >=3.8, but only their binary is used: a base image
# of an older Python has its pip fetch uv with --ignore-requires-python (uv itself creates
# and fills venvs of Python 3.7 and 3.6)
WHEEL_REQUIRES_PYTHON = (3, 8)

# uv must never try to download a managed interpreter (slow, and not what we asked):
# the target Python is given with --python-version and need not be installed.
_BASE_ENV = {"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
# uv ships its own CA roots; pip trusts the system's. Trust the system store too (a
# company proxy or a private index with its own CA), unless the user said otherwise.
_DEFAULT_ENV = {"UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1"}


_BIN_LOCK = threading.Lock()


@functools.cache
def _uv_bin_cached() -> str:
    return _find_uv_bin()


def uv_bin() -> str:
    # find_uv_bin reads sysconfig, which is not safe to initialise from several threads at
    # once (envbuild check runs models in parallel): find it once, under a lock.
    with _BIN_LOCK:
        return _uv_bin_cached()


def _find_uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - uv is a dependency of envbuild
        raise ToolError(
            "the uv package is not installed",
            hint="pip install uv (envbuild depends on it)",
            code="EB900",
        ) from None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:  # pragma: no cover
        raise ToolError(
            "the uv package is installed but its binary is missing",
            hint="reinstall uv: pip install --force-reinstall uv",
            code="EB900",
        ) from None


def uv_version() -> str:
    return run([uv_bin(), "--version"]).stdout.strip()


def create_venv(path: Path, *, python: Path) -> Ran:
    """``uv venv --clear`` at ``path`` for the interpreter ``python``."""
    env = clean_env({"VIRTUAL_ENV": str(path)})
    env.pop("PYTHONPATH", None)
    return run([uv_bin(), "venv", "--no-config", "--clear", "--python", python, path], env=env)


def install_lock(venv: Path, lock_file: Path) -> Ran:
    """``uv pip install`` a hashed lock into the venv at ``venv``, exactly (no deps)."""
    env = clean_env({"VIRTUAL_ENV": str(venv)})
    env.pop("PYTHONPATH", None)
    return run(
        [uv_bin(), "pip", "install", "--no-config", "--python", venv / "bin" / "python",
         "--require-hashes", "--no-deps", "-r", lock_file],
        env=env,
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CompileRequest:
    requirements: Sequence[str]  # one requirement line each (already validated)
    constraints: Sequence[str] = ()
    python_version: str
    platform: str  # uv's --python-platform value
    index_url: str | None = None  # may hold credentials: passed through the environment
    extra_index_urls: Sequence[str] = ()
    find_links: Sequence[str] = ()
    no_index: bool = False
    offline: bool = False
    pre: bool = False
    resolution: str = "highest"  # highest | lowest-direct
    generate_hashes: bool = True
    no_deps: bool = False  # the requirements as given, none of their dependencies
    only_binary: Sequence[str] = ()
    no_binary: Sequence[str] = ()
    exclude_newer: str | None = None  # ignore files uploaded after this date (RFC 3339)
    torch_backend: str | None = None  # uv's --torch-backend (cpu: the PyTorch CPU index)


@dataclass(frozen=True, kw_only=True)
class CompileResult:
    ok: bool
    stdout: str
    stderr: str
    returncode: int
    seconds: float


def compile_requirements(req: CompileRequest, *, timeout: float = 600) -> CompileResult:
    """Run ``uv pip compile`` for ``req`` in a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="envbuild-uv-") as tmp:
        folder = Path(tmp)
        (folder / INPUT_NAME).write_text("".join(f"{r}\n" for r in req.requirements))
        args = [
            uv_bin(),
            "pip",
            "compile",
            INPUT_NAME,
            "--python-version",
            req.python_version,
            "--python-platform",
            req.platform,
            "--python",
            sys.executable,
            "--no-header",
            "--annotation-style",
            "split",
            "--color",
            "never",
            "--resolution",
            req.resolution,
        ]
        if req.generate_hashes:
            args.append("--generate-hashes")
        args.append("--emit-index-annotation")  # "# from URL": which index gave each pin
        if req.no_deps:
            args.append("--no-deps")
        if req.constraints:
            (folder / CONSTRAINTS_NAME).write_text("".join(f"{c}\n" for c in req.constraints))
            args += ["--constraint", CONSTRAINTS_NAME]
        env: dict[str, str] = {**_DEFAULT_ENV, **os.environ, **_BASE_ENV}
        for key in ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX"):
            env.pop(key, None)
        if req.index_url:
            env["UV_INDEX_URL"] = req.index_url
        if req.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(req.extra_index_urls)
        for link in req.find_links:
            args += ["--find-links", link]
        if req.no_index:
            args.append("--no-index")
        if req.offline:
            args.append("--offline")
        if req.pre:
            args += ["--prerelease", "allow"]
        for name in req.only_binary:
            args += ["--only-binary", name]
        for name in req.no_binary:
            args += ["--no-binary", name]
        if req.exclude_newer:
            args += ["--exclude-newer", req.exclude_newer]
        if req.torch_backend:
            args += ["--torch-backend", req.torch_backend]
        log.debug("running uv pip compile (python %s, %s)", req.python_version, req.platform)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                args,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ToolError(
                f"uv pip compile did not finish within {timeout:.0f}s",
                hint="check the network and the index URLs, or resolve offline with "
                "--offline --find-links DIR",
                code="EB901",
            ) from None
        except OSError as exc:
            raise ToolError(
                f"cannot run uv: {exc.strerror}", hint="reinstall uv", code="EB900"
            ) from None
        seconds = time.perf_counter() - start
    return CompileResult(
        ok=proc.returncode == 0,
        stdout=proc.stdout,
        stderr=proc.stderr,
        returncode=proc.returncode,
        seconds=seconds,
    )


# --------------------------------------------------------------------------------------
# output of a successful compile


@dataclass(frozen=True, kw_only=True)
class CompiledPin:
    name: str  # as uv printed it (normalised)
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # package names, or "-r requirements.in" / "-c constraints.in"
    index: str | None = None  # where uv took it from (--emit-index-annotation's "# from")


_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>\S+)")


def parse_compiled(text: str) -> tuple[CompiledPin, ...]:
    """Parse ``uv pip compile --generate-hashes --annotation-style split
    --emit-index-annotation`` output."""
    pins: list[CompiledPin] = []
    name = version = None
    hashes: list[str] = []
    via: list[str] = []
    index: str | None = None
    in_via = False

    def flush() -> None:
        if name is not None and version is not None:
            pins.append(
                CompiledPin(
                    name=name, version=version, hashes=tuple(hashes), via=tuple(via), index=index
                )
            )

    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip().rstrip("\\").strip()
        if not stripped:
            continue
        if not raw.startswith((" ", "\t")) and not stripped.startswith(("#", "-")):
            match = _PIN.match(stripped)
            if match:
                flush()
                name, version = match.group("name"), match.group("version")
                hashes, via, index, in_via = [], [], None, False
            continue
        if stripped.startswith("--hash="):
            hashes.append(stripped.removeprefix("--hash="))
        elif stripped.startswith("# from "):
            index, in_via = stripped.removeprefix("# from ").strip(), False
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            if rest:
                via.append(rest)
                in_via = False
            else:
                in_via = True
        elif stripped.startswith("#") and in_via:
            via.append(stripped.lstrip("#").strip())
    flush()
    return tuple(pins)


def error_text(stderr: str) -> str:
    """The part of uv's stderr that explains a failed resolution, without warnings about
    interpreters, progress lines or box-drawing decoration."""
    lines = stderr.splitlines()
    out: list[str] = []
    keep = False
    for line in lines:
        bare = re.sub("^[\\s\u00d7\u2570\u2500\u25b6\u2502]+", "", line)
        if line.startswith("warning:"):
            keep = False
            continue
        if line.startswith(("error:", "  \u00d7", "\u00d7")) or keep or line.startswith("hint:"):
            keep = True
            out.append(line)
            continue
        if bare.startswith("cause:"):
            out.append(line)
    return "\n".join(out).strip()


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_OPS = r"(?:===|==|!=|<=|>=|~=|<|>)"
_TOKEN = re.compile(
    rf"(?P<name>{_NAME})(?:\[[^\]]*\])?(?:\{{[^}}]*\}})?"
    rf"(?P<spec>{_OPS}[^\s,]+(?:,{_OPS}[^\s,]+)*)?"
)


@dataclass(frozen=True)
class Edge:
    src: str  # canonical name
    src_text: str
    dst: str  # canonical name, or "python"
    dst_text: str


@dataclass(frozen=True)
class Explained:
    """What uv's derivation of a failed resolution states, as names and requirement text."""

    text: str  # one line, whitespace collapsed
    required: tuple[tuple[str, str], ...]  # (name, text) the user requires
    edges: tuple[Edge, ...]
    python_needs: tuple[tuple[str, str, str], ...]  # (pkg name, pkg text, "Python>=3.11")
    missing: tuple[tuple[str, str], ...]  # (name, text) not found / no such version
    no_wheels: tuple[tuple[str, str], ...]
    yanked: tuple[tuple[str, str], ...]


def _tokens_text(m: re.Match[str]) -> tuple[str, str]:
    return canonicalize_name(m.group("name")), m.group(0)


def parse_failure(stderr: str) -> Explained:
    """Pull the facts out of uv's derivation text."""
    body = error_text(stderr)
    lines = [
        re.sub("^\\s*(?:cause:|hint:|error:|\u2570\u2500\u25b6|\u00d7)\\s*", "", ln)
        for ln in body.splitlines()
    ]
    text = re.sub(r"\s+", " ", " ".join(lines)).strip()
    text = re.sub(
        r"\{[^}]*\}", "", text
    )  # uv's marker annotations: numpy{python_full_version < '3.12'}
    required: list[tuple[str, str]] = []
    for m in re.finditer(r"you require ", text):
        pos = m.end()
        while True:
            tm = _TOKEN.match(text, pos)
            if tm is None:
                break
            name, token = _tokens_text(tm)
            required.append((name, token.rstrip(".")))
            sep = re.compile(r",? and |, (?!we )").match(text, tm.end())
            if sep is None:
                break
            pos = sep.end()
    edges: list[Edge] = []
    python_needs: list[tuple[str, str, str]] = []
    for m in re.finditer(
        rf"depends? on (?P<dst>Python{_OPS}[^\s,]+(?:,{_OPS}[^\s,]+)*|{_TOKEN.pattern})", text
    ):
        before = text[: m.start()]
        srcs = list(_TOKEN.finditer(before))
        src = next(
            (s for s in reversed(srcs) if s.group("name") not in ("all", "of", "versions")),
            None,
        )
        if src is None:
            continue
        src_name, src_text = _tokens_text(src)
        dst_text = m.group("dst").rstrip(".,")
        if dst_text.startswith("Python"):
            python_needs.append((src_name, src_text, dst_text))
            continue
        dm = _TOKEN.match(dst_text)
        if dm:
            edges.append(Edge(src_name, src_text, canonicalize_name(dm.group("name")), dst_text))
    missing: list[tuple[str, str]] = []
    for m in re.finditer(
        rf"({_NAME}) was not found in the (?:package registry|cache|provided package locations)",
        text,
    ):
        missing.append((canonicalize_name(m.group(1)), m.group(1)))
    for m in re.finditer(r"there is no version of (\S+?)(?= and|,|$)", text):
        tm = _TOKEN.match(m.group(1))
        if tm:
            missing.append(_tokens_text(tm))
    no_wheels = []
    for m in re.finditer(
        r"(\S+) has no (?:usable wheels|wheels with a matching (?:platform|Python ABI|Python implementation) tag|wheels are available)",
        text,
    ):
        tm = _TOKEN.match(m.group(1))
        if tm:
            no_wheels.append(_tokens_text(tm))
    yanked = []
    for m in re.finditer(r"(\S+) was yanked", text):
        tm = _TOKEN.match(m.group(1))
        if tm:
            yanked.append(_tokens_text(tm))
    return Explained(
        text=text,
        required=tuple(dict.fromkeys(required)),
        edges=tuple(dict.fromkeys(edges)),
        python_needs=tuple(dict.fromkeys(python_needs)),
        missing=tuple(dict.fromkeys(missing)),
        no_wheels=tuple(dict.fromkeys(no_wheels)),
        yanked=tuple(dict.fromkeys(yanked)),
    )


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment uv runs with."""
    return {**_DEFAULT_ENV, **os.environ, **_BASE_ENV, **(extra or {})}


def uv_requirement() -> str | None:
    """``uv==<this machine's version>`` with the sha256 of every file PyPI has for it, for
    the build's pip to fetch uv hash-checked. None when the index cannot be reached."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        uv_version = version("uv")
    except PackageNotFoundError:
        return None
    url = "https://pypi.org/simple/uv/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    doc: dict[str, Any] | None = None
    for attempt in range(3):  # a proxy's or the index's passing hiccup is not "no uv"
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                doc = json.loads(resp.read())
            break
        except (OSError, ValueError) as exc:
            log.debug("uv hashes from %s (attempt %d): %s", url, attempt + 1, exc)
            if attempt < 2:
                time.sleep(attempt + 1)
    if not isinstance(doc, dict):
        return None
    prefix = f"uv-{uv_version}-"
    hashes = sorted(
        {
            str(f["hashes"]["sha256"])
            for f in doc.get("files", [])
            if str(f.get("filename", "")).startswith(prefix)
            and str(f.get("filename", "")).endswith(".whl")
            and f.get("hashes", {}).get("sha256")
        }
    )
    if not hashes:
        return None
    return f"uv=={uv_version} " + " ".join(f"--hash=sha256:{h}" for h in hashes)
