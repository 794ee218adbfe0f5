"""Build what render.py planned: a Docker image (docker SDK, via envbuild/_docker.py) or a
virtualenv (uv); then prove it with a smoke prediction on the model's input example.

The library never prints: build progress goes to the ``envbuild`` logger.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from envbuild import _docker
from envbuild._adapters import sandbox as _sandbox
from envbuild._adapters import uv as _uv
from envbuild._paths import inside
from envbuild.errors import FailedError, InputError, ToolError
from envbuild.findings import Finding, Location
from envbuild.output import write_atomic
from envbuild.read import ModelFolder, WorkspaceEnv
from envbuild.render import (
    HEALTH_PATH,
    BuildPlan,
    LockView,
    server_files,
    server_package,
    server_sha256,
)

log = logging.getLogger("envbuild")

CODES: dict[str, str] = {
    **_docker.CODES,
    "EB803": "downloading the wheelhouse for the target platform failed",
    "EB804": "installing the lock into the virtualenv failed",
    "EB805": "--output names a folder that is not empty and was not written by envbuild",
    "EB902": "no Python interpreter of the version the model needs on this machine",
}

# Every file in the context gets this mtime (2000-01-01), so the tar is byte-identical.
FIXED_MTIME = 946684800


# --------------------------------------------------------------------------------------
# the build context


def context_tar(plan: BuildPlan) -> bytes:
    """The build context as a deterministic tar: sorted paths, fixed mtimes, root owner,
    0644/0755 modes, directories listed before their files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for f in plan.files:
            parts = f.path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    _normalise(info)
                    tar.addfile(info)
            data = f.read()
            info = tarfile.TarInfo(f.path)
            info.size = len(data)
            info.mode = 0o755 if f.executable else 0o644
            _normalise(info)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _normalise(info: tarfile.TarInfo) -> None:
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.pax_headers = {}


def write_context(plan: BuildPlan, directory: Path) -> list[Path]:
    """Write the context into ``directory`` (created if needed). Refuse a non-empty folder
    that envbuild did not write, so --output never clobbers someone's files."""
    marker = directory / ".envbuild" / "requirements.lock"
    if directory.exists() and any(directory.iterdir()) and not marker.is_file():
        raise InputError(
            f"{directory} is not empty and does not hold an envbuild build context",
            hint="name an empty or new folder for --output",
            location=Location(file=str(directory)),
            code="EB805",
        )
    written = []
    for f in plan.files:
        target = inside(directory, f.path, location=Location(file=f.path))
        write_atomic(target, f.read(), mode=0o755 if f.executable else 0o644)
        os.utime(target, (FIXED_MTIME, FIXED_MTIME))
        written.append(target)
    return written


# --------------------------------------------------------------------------------------
# wheelhouse


def _platform_tags(platform: str, python_xy: str) -> list[str]:
    arch = "x86_64" if platform.endswith("amd64") else "aarch64"
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(39, 16, -1)]
    tags += [f"manylinux2014_{arch}", f"linux_{arch}"]
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    return tags


def download_wheelhouse(lock: LockView, directory: Path) -> list[Path]:
    """Download every locked wheel for the target Python and platform into ``directory``
    (pip download: --only-binary, --platform, --python-version; hashes checked)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock_file = directory / "requirements.lock"
    write_atomic(lock_file, lock.text)
    xy = lock.python_version
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
        "--only-binary", ":all:", "--python-version", xy, "--implementation", "cp",
        "--abi", f"cp{xy.replace('.', '')}", "--abi", "abi3", "--abi", "none",
        "--dest", str(directory), "-r", str(lock_file),
    ]  # fmt: skip
    for tag in _platform_tags(lock.platform, xy):
        argv += ["--platform", tag]
    argv += ["--platform", "any"]
    log.info("downloading the wheelhouse for Python %s on %s", xy, lock.platform)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    lock_file.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.splitlines() if ln.strip()][-3:]
        raise FailedError(
            "downloading the wheelhouse failed: " + (tail[-1] if tail else "pip download failed"),
            hint="every locked package needs a wheel for the target platform; "
            + " | ".join(tail[:-1]),
            code="EB803",
        )
    return sorted(directory.glob("*.whl"))


# --------------------------------------------------------------------------------------
# images


@dataclass(frozen=True, kw_only=True)
class BuiltImage:
    id: str
    tags: tuple[str, ...]  # applied only once the proof passed (or with --no-smoke)
    size: int
    layers: tuple[str, ...]
    seconds: float
    smoke: SmokeResult | None  # None: built with --no-smoke, not proven

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tag": self.tags[0] if self.tags else None,
            "tags": list(self.tags),
            "proven": self.smoke is not None and self.smoke.ok,
            "size": self.size,
            "layers": len(self.layers),
            "seconds": round(self.seconds, 2),
        }


def build_image(
    plan: BuildPlan,
    folder: ModelFolder,
    *,
    tags: Sequence[str] = (),
    smoke: bool = True,
    keep_failed: bool = False,
    network_mode: str | None = None,
    client: Any = None,
) -> BuiltImage:
    """Build ``plan`` untagged, prove it with ``smoke_image``, and only then give it
    ``tags``. When the proof fails (or is interrupted) the image is removed, or with
    ``keep_failed`` named ``NAME:TAG-failed``; a name that pointed at an older image keeps
    pointing there. Without ``smoke`` the tags are applied right after the build."""
    c = client or _docker.client()
    for name in tags:
        _docker.check_tag(name)
    start = time.monotonic()
    if plan.buildkit:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp:
            write_context(plan, Path(tmp))
            image_id = _docker.build_cli(
                Path(tmp),
                tag=None,
                secrets={s.id: s.value for s in plan.secrets},
                network_mode=network_mode,
            )
    else:
        image_id = _docker.build(c, context_tar(plan), tag=None, network_mode=network_mode)
    seconds = time.monotonic() - start
    info = _docker.inspect(c, image_id)
    smoked: SmokeResult | None = None
    if smoke:
        try:
            smoked = smoke_image(info.id, folder, client=c)
        except BaseException as exc:
            where = _set_aside(c, info.id, tags[0] if tags else None, keep=keep_failed)
            if isinstance(exc, FailedError):
                raise FailedError(
                    f"{exc.message}; {where}", hint=exc.hint, location=exc.location, code=exc.code
                ) from None
            raise
    for name in tags:
        _docker.add_tag(c, info.id, name)
    return BuiltImage(
        id=info.id, tags=tuple(tags), size=info.size, layers=info.layers, seconds=seconds,
        smoke=smoked,
    )  # fmt: skip


# The Dockerfile step that copies the model (block_runtime): a failed image is removed
# down to it, and the dependency layers below stay cached for the next build.
MODEL_STEP = " in /opt/envbuild/model"


def _set_aside(c: Any, image_id: str, name: str | None, *, keep: bool) -> str:
    """Dispose of an image whose proof failed; say what became of it."""
    short = image_id.removeprefix("sha256:")[:12]
    if keep:
        failed = _docker.failed_name(name, image_id)
        _docker.add_tag(c, image_id, failed)
        log.warning("the image that failed its smoke test is kept as %s", failed)
        return f"nothing was tagged; the image ({short}) is kept as {failed}"
    if _docker.discard_untagged(c, image_id, down_to=MODEL_STEP):
        return f"nothing was tagged; the image ({short}) was removed (--keep-failed keeps it)"
    return f"nothing was tagged; the image ({short}) stays: another name or container uses it"


# --------------------------------------------------------------------------------------
# smoke test


@dataclass(frozen=True, kw_only=True)
class SmokeCase:
    payload: bytes
    content_type: str
    source: str  # the file the payload came from
    expected: Any  # the stored predictions, or None
    expected_file: str | None


Proof = Literal["loaded", "matched stored predictions", "predicted (no stored predictions)"]


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    ok: bool
    source: str | None
    expected_file: str | None
    compared: bool
    predictions: Any
    seconds_to_health: float | None
    message: str
    # what confined the proof: the image smoke's container as the engine reports it; the
    # venv smoke's {"kind": "bwrap" | "process"} (envbuild/_sandbox.py)
    sandbox: Mapping[str, Any] | None = None

    @property
    def proof(self) -> Proof:
        """How much the smoke test showed: no input example (``source`` None) leaves the
        load alone, a prediction without stored predictions shows it answers."""
        if self.compared:
            return "matched stored predictions"
        if self.source is not None:
            return "predicted (no stored predictions)"
        return "loaded"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "proof": self.proof,
            "input": self.source,
            "expected": self.expected_file,
            "compared": self.compared,
            "seconds_to_health": round(self.seconds_to_health, 2)
            if self.seconds_to_health is not None
            else None,
            "message": self.message,
            "sandbox": dict(self.sandbox) if self.sandbox is not None else None,
        }

    @classmethod
    def no_example(
        cls,
        seconds_to_health: float | None,
        message: str,
        *,
        sandbox: Mapping[str, Any] | None = None,
    ) -> SmokeResult:
        """Passed on the model's load alone (proof "loaded"): it has no input example."""
        return cls(
            ok=True,
            source=None,
            expected_file=None,
            compared=False,
            predictions=None,
            seconds_to_health=seconds_to_health,
            message=message,
            sandbox=sandbox,
        )


_SERVING_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def smoke_case(folder: ModelFolder) -> SmokeCase | None:
    """What to POST and what to expect: expected_predictions.json names its input; else
    the serving input example; else the input example wrapped by its type."""
    root = folder.path
    expected: Any = None
    expected_file: str | None = None
    source: str | None = None
    exp_path = root / "expected_predictions.json"
    if exp_path.is_file():
        try:
            doc = json.loads(exp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"expected_predictions.json is not JSON: {exc}",
                location=Location(file="expected_predictions.json"),
                code="EB802",
            ) from None
        if isinstance(doc, dict) and "predictions" in doc:
            expected, expected_file = doc["predictions"], "expected_predictions.json"
            source = str(doc["input"]) if doc.get("input") else None
    example = folder.input_example
    if source is None and example is not None:
        source = example.serving_file or example.file
    if source is None:
        return None
    path = inside(root, source, location=Location(file="expected_predictions.json"))
    if not path.is_file():
        return None
    if source.endswith(".csv"):
        return SmokeCase(
            payload=path.read_bytes(),
            content_type="text/csv",
            source=source,
            expected=expected,
            expected_file=expected_file,
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not (isinstance(data, dict) and any(k in data for k in _SERVING_KEYS)):
        orient = example.pandas_orient if example else None
        kind = example.type if example else None
        if kind == "dataframe":
            data = {"dataframe_records" if orient == "records" else "dataframe_split": data}
        else:
            data = {"inputs": data}
    return SmokeCase(
        payload=json.dumps(data).encode(),
        content_type="application/json",
        source=source,
        expected=expected,
        expected_file=expected_file,
    )


def compare(expected: Any, actual: Any, *, rel: float = 1e-5, abs_: float = 1e-6) -> str | None:
    """None when ``actual`` matches ``expected`` (numbers within tolerance), else where it
    first differs."""

    def walk(e: Any, a: Any, where: str) -> str | None:
        if isinstance(e, bool) or isinstance(a, bool):
            return None if e == a else f"{where}: expected {e!r}, got {a!r}"
        if isinstance(e, int | float) and isinstance(a, int | float):
            if isinstance(e, float) and isinstance(a, float) and math.isnan(e) and math.isnan(a):
                return None
            ok = math.isclose(float(e), float(a), rel_tol=rel, abs_tol=abs_)
            return None if ok else f"{where}: expected {e!r}, got {a!r}"
        if isinstance(e, list) and isinstance(a, list):
            if len(e) != len(a):
                return f"{where}: expected {len(e)} items, got {len(a)}"
            for i, (x, y) in enumerate(zip(e, a, strict=True)):
                diff = walk(x, y, f"{where}[{i}]")
                if diff:
                    return diff
            return None
        if isinstance(e, dict) and isinstance(a, dict):
            if set(e) != set(a):
                return f"{where}: expected keys {sorted(e)}, got {sorted(a)}"
            for k in e:
                diff = walk(e[k], a[k], f"{where}.{k}")
                if diff:
                    return diff
            return None
        return None if e == a else f"{where}: expected {e!r}, got {a!r}"

    return walk(expected, actual, "predictions")


def check_response(case: SmokeCase | None, status: int, body: bytes) -> tuple[bool, Any, str]:
    if status != 200:
        return False, None, f"/invocations answered HTTP {status}: {body[:300]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return False, None, f"/invocations answered non-JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or "predictions" not in doc:
        return False, None, "/invocations answered without a 'predictions' field"
    predictions = doc["predictions"]
    if case is not None and case.expected is not None:
        diff = compare(case.expected, predictions)
        if diff:
            return False, predictions, f"predictions differ from {case.expected_file}: {diff}"
        return True, predictions, f"predictions match {case.expected_file}"
    return True, predictions, "a valid response (no stored predictions to compare)"


_SMOKE_CLIENT = Path(__file__).parent / "_scripts" / "smoke_client.py"
_ARG_CHUNK = 96_000  # base64 characters per argv item (Linux: 128 KiB per item)
_EXEC_ARGS = 8  # items per exec, well under ARG_MAX (2 MiB with the environment)
_IMAGE_PYTHON = "/opt/envbuild/venv/bin/python"
GIB = 1024**3
_APPEND = (
    "import base64, sys\n"
    "with open(sys.argv[1], 'ab') as f: f.write(base64.b64decode(''.join(sys.argv[2:])))"
)


def sandbox_for(folder: ModelFolder) -> _docker.Sandbox:
    """The smoke container's confinement: a random uid in 100000-199999 with group 0 (as
    OpenShift assigns one: the image must not depend on its own user), and memory of
    2 GiB or 1 GiB plus three times the model folder's size when that is more."""
    import secrets

    size = sum(p.stat().st_size for p in folder.path.rglob("*") if p.is_file())
    return _docker.Sandbox(
        user=f"{100000 + secrets.randbelow(100000)}:0", memory=max(2 * GIB, GIB + 3 * size)
    )


def smoke_image(
    image: str,
    folder: ModelFolder,
    *,
    client: Any = None,
    timeout: float = 180,
    sandbox: _docker.Sandbox | None = None,
) -> SmokeResult:
    """Run ``image`` in the sandbox (``sandbox_for``), wait for /ping, POST the input
    example to /invocations, compare, and always remove the container. The client runs
    inside the container through ``docker exec`` with the image's own interpreter: there is
    no network to publish a port on, and no host path is involved. Failure raises
    FailedError with the log tail."""
    c = client or _docker.client()
    case = smoke_case(folder)
    box = sandbox or sandbox_for(folder)
    start = time.monotonic()
    running = _docker.run_sandboxed(c, image, box, labels={"io.envbuild.smoke": image})
    try:
        applied = _docker.confinement(running)
        log.info(
            "smoke: container as user %s, network %s, read-only, no capabilities",
            applied["user"],
            applied["network"],
        )
        payload_file = "-"
        chunks: list[str] = []
        if case is not None:
            encoded = base64.b64encode(case.payload).decode("ascii")
            chunks = [encoded[i : i + _ARG_CHUNK] for i in range(0, len(encoded), _ARG_CHUNK)]
            if len(chunks) > _EXEC_ARGS:  # too long for one command line: stage it in /tmp
                payload_file = "/tmp/.envbuild-smoke-payload"
                staged, chunks = chunks[:-_EXEC_ARGS], chunks[-_EXEC_ARGS:]
                for i in range(0, len(staged), _EXEC_ARGS):
                    done = _docker.exec_in(
                        running, [_IMAGE_PYTHON, "-I", "-c", _APPEND, payload_file,
                                  *staged[i : i + _EXEC_ARGS]],
                    )  # fmt: skip
                    if done.exit_code != 0:
                        raise _smoke_failure(running, _exec_problem(running, done), start)
        exec_at = time.monotonic()
        remaining = max(1.0, timeout - (exec_at - start))
        done = _docker.exec_in(
            running,
            [_IMAGE_PYTHON, "-I", "-c", _SMOKE_CLIENT.read_text(encoding="utf-8"),
             HEALTH_PATH, f"{remaining:.1f}", case.content_type if case else "", payload_file,
             *chunks],
        )  # fmt: skip
        reply = _client_reply(done)
        if reply is None:
            raise _smoke_failure(running, _exec_problem(running, done), start)
        if reply["healthy_after"] is None:
            raise _smoke_failure(running, "the container never answered /ping", start)
        # from the container's start: until the client started, then what it measured
        healthy_after = exec_at - start + float(reply["healthy_after"])
        log.info("smoke: /ping answered after %.1f s", healthy_after)
        if case is None:
            return SmokeResult.no_example(
                healthy_after,
                "healthy; the model has no input example to predict on",
                sandbox=applied,
            )
        if reply["error"]:
            raise _smoke_failure(running, str(reply["error"]), start)
        body = base64.b64decode(str(reply["body"]))
        ok, predictions, message = check_response(case, int(reply["status"]), body)
        if not ok:
            raise _smoke_failure(running, message, start)
        log.info("smoke: %s", message)
        return SmokeResult(
            ok=True,
            source=case.source,
            expected_file=case.expected_file,
            compared=case.expected is not None,
            predictions=predictions,
            seconds_to_health=healthy_after,
            message=message,
            sandbox=applied,
        )
    finally:
        _docker.remove(running)


def _client_reply(done: _docker.Exec) -> dict[str, Any] | None:
    if done.exit_code != 0:
        return None
    try:
        doc = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return doc if isinstance(doc, dict) else None


def _exec_problem(running: _docker.Running, done: _docker.Exec) -> str:
    # a server that dies takes the client with it, a moment before the engine says so
    deadline = time.monotonic() + 3
    while (state := _docker.status(running)) not in ("exited", "dead"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if state in ("exited", "dead"):
        return f"the container {state} (exit code {_docker.exit_code(running)})"
    err = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    return f"the smoke client in the container failed ({done.exit_code}): " + (
        " | ".join(err) or "no output"
    )


def _smoke_failure(running: _docker.Running, message: str, start: float) -> FailedError:
    tail = _docker.logs_tail(running).strip().splitlines()[-15:]
    return FailedError(
        f"smoke test failed after {time.monotonic() - start:.1f} s: {message}",
        hint="container log tail:\n    " + "\n    ".join(tail or ["(empty)"]),
        code="EB802",
    )


# --------------------------------------------------------------------------------------
# virtualenvs

_VERSION_SCRIPT = "import sys; print('%d.%d' % sys.version_info[:2])"


def _version_of(exe: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(exe), "-c", _VERSION_SCRIPT], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def pyenv_versions() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = done.stdout.strip() if done.returncode == 0 else None
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
    if not re.fullmatch(r"3\.\d{1,2}", xy):
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


def install_venv(lock: LockView, path: Path, *, python: Path) -> None:
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
    uv = _uv.uv_bin()
    env = _uv.clean_env({"VIRTUAL_ENV": str(path)})
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [uv, "venv", "--no-config", "--clear", "--python", str(python), str(path)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        raise FailedError(f"uv venv failed: {done.stderr.strip()[-300:]}", code="EB804")
    lock_file = path / ".envbuild" / "requirements.lock"
    write_atomic(lock_file, lock.text)
    log.info("installing the lock into %s", path)
    done = subprocess.run(
        [uv, "pip", "install", "--no-config", "--python", str(path / "bin" / "python"),
         "--require-hashes", "--no-deps", "-r", str(lock_file)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.splitlines() if ln.strip()][-4:]
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


def smoke_venv(path: Path, folder: ModelFolder, *, timeout: float = 600) -> SmokeResult:
    """Load the model in the venv's own interpreter, in the sandbox (envbuild/_sandbox.py),
    and predict on the input example; with no input example, only load it. The venv is
    writable (the imports write its bytecode, see install_venv), the model folder is not."""
    case = smoke_case(folder)
    root = path.resolve()
    python = root / "bin" / "python"
    model_dir = folder.path.resolve()
    argv = [str(python), "-m", server_package()]
    argv += (
        ["load"]
        if case is None
        else ["predict", "--input", "-", "--content-type", case.content_type]
    )
    with _sandbox.Sandbox(
        writable=[root], readable=_sandbox.interpreter_roots(python), readonly=[model_dir]
    ) as box:
        ran = box.run(
            argv,
            stdin=case.payload if case is not None else None,
            env={
                "ENVBUILD_MODEL_DIR": str(model_dir),
                # inside the sandbox's temp dir: nothing reaches ~/.mlflow or ./mlruns
                "MLFLOW_TRACKING_URI": (box.tmp / "mlruns").as_uri(),
                "MLFLOW_DISABLE_ENV_CREATION": "true",
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            },
            timeout=timeout,
        )
    what = "loading the model" if case is None else "smoke prediction"
    log.info("smoke: %s in the venv ran under the %s sandbox", what, ran.sandbox)
    if ran.timed_out:
        raise FailedError(
            f"{what} in the venv did not finish within {timeout:.0f} s",
            hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
            code="EB802",
        )
    if case is None:
        if ran.returncode != 0:
            raise FailedError(
                "the model did not load in the venv",
                hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
                code="EB802",
            )
        return SmokeResult.no_example(
            ran.seconds,
            "loaded; the model has no input example to predict on",
            sandbox={"kind": ran.sandbox},
        )
    if ran.returncode == 2:  # the server answered 4xx: the payload was refused
        ok, predictions, message = check_response(case, 400, ran.stdout)
        raise FailedError(f"smoke prediction in the venv: {message}", code="EB802")
    if ran.returncode != 0:
        raise FailedError(
            "smoke prediction in the venv failed",
            hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
            code="EB802",
        )
    lines = ran.stdout.strip().splitlines()
    ok, predictions, message = check_response(case, 200, lines[-1] if lines else b"")
    if not ok:
        raise FailedError(f"smoke prediction in the venv: {message}", code="EB802")
    return SmokeResult(
        ok=True,
        source=case.source,
        expected_file=case.expected_file,
        compared=case.expected is not None,
        predictions=predictions,
        seconds_to_health=ran.seconds,
        message=message,
        sandbox={"kind": ran.sandbox},
    )


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


# --------------------------------------------------------------------------------------
# the lock, from the resolver


def host_platform() -> str:
    import platform

    return "linux/arm64" if platform.machine().lower() in ("aarch64", "arm64") else "linux/amd64"


def lock_for(
    folder: ModelFolder,
    *,
    python_version: str | None,
    platform: str,
    override: WorkspaceEnv | None = None,
    find_links: Sequence[Path] = (),
    command: str = "envbuild image",
) -> tuple[list[Finding], LockView | None]:
    """Resolve the model's environment (or the override's) for the target with the
    resolver and return its findings and the lock as rendering sees it."""
    from envbuild import resolve as resolver

    target, target_findings = resolver.target_for(
        folder,
        python_version=python_version,
        platform=platform,
        env=override.spec if override is not None else None,
    )
    resolution = resolver.resolve(
        folder, target, override=override, find_links=find_links, command=command
    )
    findings = [*target_findings, *resolution.findings]
    lock = resolution.lock
    if lock is None:
        return findings, None
    return findings, LockView(
        text=lock.text,
        sha256=lock.sha256,
        python_version=_xy(target),
        platform=platform,
    )


def _xy(target: Any) -> str:
    return f"{target.python.major}.{target.python.minor}"


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
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            doc = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        log.debug("uv hashes from %s: %s", url, exc)
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
