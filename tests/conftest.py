"""Shared fixtures (the example model folders, hostile copies), the gates that skip what
this machine cannot run, and CI's rule that a skip is a failure. Plain helpers (ROOT,
EXAMPLES, DATA, run_envbuild, require_python) are in tests/helpers.py, which test modules
import (conftest itself is not importable under --import-mode=importlib)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXAMPLES


@pytest.fixture
def copy_model(tmp_path: Path) -> Callable[[str | Path], Path]:
    """Copy a model folder (an example name, or a path) into tmp_path and return it."""

    def _copy(name_or_path: str | Path) -> Path:
        src = Path(name_or_path)
        if not src.is_absolute():
            src = EXAMPLES / str(name_or_path)
        dst = tmp_path / src.name
        shutil.copytree(src, dst, symlinks=True)
        return dst

    return _copy


@functools.cache
def docker_problem() -> str | None:
    """Why no Docker engine answers (None: one does). Asked once per session, in a child:
    docker-py leaves a socket open when the ping fails (a ResourceWarning, an error here)."""
    where = os.environ.get("DOCKER_HOST", "the default socket")
    ping = "import docker; docker.from_env(timeout=5).ping()"
    try:
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", ping],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"no Docker engine answers at {where} (no reply in 30 s)"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"no Docker engine answers at {where} ({last[:200]})"
    return None


@functools.cache
def uv_problem() -> str | None:
    """Why uv cannot be found (None: it can)."""
    from envbuild.errors import EnvbuildError

    try:
        from envbuild._adapters.uv import uv_bin

        uv_bin()
    except (ImportError, EnvbuildError) as exc:
        return f"uv is not available ({exc})"
    return None


# BuildKit's layer and cache-mount store, kept across modules up to this many bytes (the
# oldest goes first): later modules reuse layers, and the suite's disk use stays bounded.
BUILD_CACHE_KEPT = 6 * 1024**3


# The platform of the images a module builds, where it is not the engine's own: a module
# that sets IMAGE_PLATFORM (tests/integration/test_arm64.py) runs beside the other Docker
# modules, on a worker of its own, since each module's cleanup below removes only images
# and containers labelled with its own platform.
HOST_PLATFORM = "linux/amd64"


@functools.cache
def _module_source(path: str) -> str:
    """The source of the test module at ``path`` (relative to the root; "" if it is not a
    file), read once: the scheduler sees node ids only, so it reads markers from there."""
    from tests.helpers import ROOT

    file = ROOT / path
    return file.read_text() if file.is_file() else ""


def _image_platform(path: str) -> str | None:
    """IMAGE_PLATFORM as the module at ``path`` sets it."""
    for line in _module_source(path).splitlines():
        if line.startswith("IMAGE_PLATFORM = "):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


@pytest.fixture(scope="module", autouse=True)
def _leave_no_images(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module that builds images removes, when it ends, every image envbuild built in it
    (by its io.envbuild.command label) for its platform (io.envbuild.platform: its
    IMAGE_PLATFORM, else HOST_PLATFORM) and their containers, and trims the build cache to
    BUILD_CACHE_KEPT (a module of another platform builds with the classic builder and
    leaves the cache alone). Without this a full run keeps every image
    the suite built (tens of GB) and fills a small CI disk half-way through the run."""
    module = request.module
    _DISK.append((module.__name__, shutil.disk_usage(tempfile.gettempdir()).free))
    uses_docker = any(
        item.module is module and item.get_closest_marker("docker")
        for item in request.session.items
        if isinstance(item, pytest.Function)
    )
    if not uses_docker or docker_problem():
        yield
        return
    import docker

    c = docker.from_env(timeout=120)
    platform = getattr(module, "IMAGE_PLATFORM", HOST_PLATFORM)
    # every image envbuild builds for this platform, and its containers
    built = {"label": ["io.envbuild.command", f"io.envbuild.platform={platform}"]}
    images = {i.id for i in c.images.list(all=True, filters=built)}
    containers = {k.id for k in c.containers.list(all=True, filters=built)}
    try:
        yield
    finally:
        for k in c.containers.list(all=True, filters=built):
            if k.id not in containers:
                _quietly(k.remove, force=True, v=True)
        for i in c.images.list(all=True, filters=built):  # with their untagged parents
            if i.id not in images:
                _quietly(c.images.remove, i.id, force=True)
        if platform == HOST_PLATFORM:
            _quietly(c.api.prune_builds, keep_storage=BUILD_CACHE_KEPT, all=True)
        c.close()


_DISK: list[tuple[str, int]] = []  # (module, free bytes where tmp_path lives) at each start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The free disk at the start and the lowest seen at a module's start: a run that
    fails for want of space says so (tmp_path, the hypothesis database and builds fail
    with errors that name no disk)."""
    if not _DISK:
        return
    gb = 1024**3
    low_module, low = min(_DISK, key=lambda m: m[1])
    end = shutil.disk_usage(tempfile.gettempdir()).free
    terminalreporter.write_line(
        f"disk: {_DISK[0][1] / gb:.1f} GB free at the start, {end / gb:.1f} GB at the end, "
        f"lowest {low / gb:.1f} GB (before {low_module})"
    )


def _quietly(fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    import contextlib

    import docker.errors

    # already gone, or still in use by an image a test kept on purpose
    with contextlib.suppress(docker.errors.DockerException):
        fn(*args, **kwargs)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, with the reason, what this machine cannot run (before any fixture builds):
    a local `pytest` without Docker is not a wall of failures. In CI the skip fails."""
    if item.get_closest_marker("docker") and (problem := docker_problem()):
        pytest.skip(problem)
    if item.get_closest_marker("venv") and (problem := uv_problem()):
        pytest.skip(problem)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: the Docker, venv and network tests must run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    # one skip may pass: arm64 emulation on a machine that cannot register qemu with
    # binfmt_misc (tests/integration/test_arm64.py says why in its reason)
    skipped = [
        r
        for r in (reporter.stats.get("skipped", []) if reporter else [])
        if "arm64 emulation unavailable: " not in str(getattr(r, "longrepr", ""))
    ]
    if reporter is not None and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips fail CI", red=True)
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (the README's `-n 3`): each module runs whole on one worker, so its
    module-scoped fixtures (a built image, the corpus-wide check) are made once; and every
    module that uses Docker for the engine's own platform runs on one worker, one after the
    other, since _leave_no_images removes, when a module ends, every envbuild image of its
    platform built since it started, which would include another worker's. A module of
    another platform (IMAGE_PLATFORM) is a unit of its own, and the first one handed out
    (pytest_collection_modifyitems puts it first; xdist's reordering by size is off), so
    the arm64 build under qemu, the suite's longest test, runs beside the others from the
    start. The scheduler sees only node ids, so a module uses Docker when its source names
    the docker marker (xdist's own --dist loadgroup relies on rewriting node ids, which
    pytest 9 no longer allows)."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if not _uses_docker(path):
                return path
            return "docker" if _image_platform(path) is None else path

    config.option.loadscopereorder = False
    return ByModule(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of another platform first (see pytest_xdist_make_scheduler); the rest
    in their collected order."""
    first = {
        path
        for path in {item.nodeid.split("::", 1)[0] for item in items}
        if _uses_docker(path) and _image_platform(path) is not None
    }
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in first)


def _uses_docker(path: str) -> bool:
    return "pytest.mark.docker" in _module_source(path)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ files from the current output instead of comparing",
    )


def hostile_pickle(marker: Path) -> bytes:
    """A protocol-0 pickle that, if anything ever unpickled it, would run
    ``posix.system("touch MARKER")``: the marker's absence proves nothing loaded it."""
    return f"cposix\nsystem\n(V touch {marker}\ntR.".encode()


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """A hostile model folder (``hostile_model``) and the marker its payload would create."""
    import uuid

    marker = tmp_path / f"envbuild-marker-{uuid.uuid4().hex}"
    return hostile_model(tmp_path / "hostile", marker), marker


@pytest.fixture
def make_hostile() -> Callable[[Path, Path], Path]:
    """``make_hostile(dst, marker)`` writes ``hostile_model`` at dst."""
    return hostile_model


def hostile_model(dst: Path, marker: Path) -> Path:
    """examples/pyfunc-custom with its joblib classifier replaced by ``hostile_pickle``,
    and its requirements the manifest's measured set (so its layers are the pyfunc build's)."""
    import json
    import uuid

    shutil.copytree(EXAMPLES / "pyfunc-custom", dst)
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    truth = next(e["truth"] for e in manifest["examples"] if e["name"] == "pyfunc-custom")
    lines = [
        f"{'mlflow-skinny' if k == 'mlflow' else k}=={v}" for k, v in sorted(truth.items()) if v
    ]
    (dst / "requirements.txt").write_text("\n".join(lines) + "\n")
    (dst / "artifacts" / "classifier.joblib").write_bytes(hostile_pickle(marker))
    # its own model uuid, so a test can find every image and container made from it by label
    mlmodel = dst / "MLmodel"
    text = mlmodel.read_text()
    old = next(ln for ln in text.splitlines() if ln.startswith("model_uuid:"))
    mlmodel.write_text(text.replace(old, f"model_uuid: {uuid.uuid4().hex}"))
    return dst
