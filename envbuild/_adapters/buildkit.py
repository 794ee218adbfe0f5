"""BuildKit through the Docker CLI: which CLI can do it (asked of the engine with a probe
build, not read off a client version), and a build with secrets and cache mounts.

The docker SDK's build endpoint is the classic builder only. BuildKit needs a client that
holds a session with the engine: ``docker buildx build``, or the ``docker build`` of a CLI
that carries BuildKit itself (Debian's docker.io 20.10 under ``DOCKER_BUILDKIT=1``); a newer
CLI without the buildx plugin refuses. Every ``docker`` on PATH is tried, so the first one
that is such a newer client does not hide an older one that builds.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envbuild._compat import StrEnum
from envbuild._redact import redact
from envbuild.errors import FailedError, ToolError
from envbuild.findings import Code, Severity, table

log = logging.getLogger("envbuild")

EB903 = Code(
    "EB903",
    Severity.ERROR,
    "--builder buildkit was asked for, but no Docker CLI here builds with BuildKit on this engine",
)
CODES: dict[str, str] = table(EB903)

# what uv (and pip) print when an index refuses the request for want of credentials
_AUTH = re.compile(r"\b40[13]\b|Unauthorized|Forbidden|authentication credentials", re.I)


class Builder(StrEnum):
    AUTO = "auto"
    BUILDKIT = "buildkit"
    LEGACY = "legacy"


@dataclass(frozen=True, kw_only=True)
class BuildKitCli:
    """A Docker CLI that builds with BuildKit: ``argv`` starts a build, ``load`` follows
    it when the image must land in the engine, ``env`` is added to the process environment."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    load: tuple[str, ...] = ()

    def describe(self) -> str:
        return " ".join(self.argv)


_PROBE = b"FROM scratch\n"


def _candidates() -> list[str]:
    """Every docker binary on PATH (in PATH order), then the Debian package's."""
    seen: dict[str, str] = {}
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = shutil.which("docker", path=d) if d else None
        if exe:
            seen.setdefault(os.path.realpath(exe), exe)
    if os.path.exists("/usr/bin/docker"):
        seen.setdefault(os.path.realpath("/usr/bin/docker"), "/usr/bin/docker")
    return list(seen.values())


def _probe(cli: BuildKitCli) -> str | None:
    """Build ``FROM scratch`` to a tar thrown away: the engine answers whether it holds a
    BuildKit session for this client. None when it does, else the last line it said."""
    argv = [*cli.argv, "--progress=plain", "--output", "type=tar,dest=/dev/null", "-"]
    try:
        done = subprocess.run(
            argv,
            input=_PROBE,
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, **dict(cli.env)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{cli.describe()}: {exc}"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["failed"]
    return f"{cli.describe()}: {lines[0].strip()[:160]}"


@functools.cache
def find() -> BuildKitCli | str:
    """The CLI to build with, or why there is none (one line per CLI tried)."""
    if os.environ.get("DOCKER_BUILDKIT") == "0":
        return "DOCKER_BUILDKIT=0 is set"
    tried: list[str] = []
    for exe in _candidates():
        for cli in (
            BuildKitCli(argv=(exe, "buildx", "build"), env=(), load=("--load",)),
            BuildKitCli(argv=(exe, "build"), env=(("DOCKER_BUILDKIT", "1"),)),
        ):
            why = _probe(cli)
            if why is None:
                log.debug("BuildKit: %s", cli.describe())
                return cli
            tried.append(why)
    return "; ".join(tried) or "no docker CLI on PATH"


def choose(builder: Builder) -> BuildKitCli | None:
    """The BuildKit CLI for ``builder`` (None: the SDK's classic builder). ``buildkit``
    without one is an environment error (exit 3)."""
    if builder is Builder.LEGACY:
        return None
    found = find()
    if isinstance(found, BuildKitCli):
        return found
    if builder is Builder.BUILDKIT:
        raise ToolError(
            f"no Docker CLI here builds with BuildKit ({found})",
            hint="install the buildx plugin (or Debian's docker.io), or use --builder legacy",
            code="EB903",
        )
    log.debug("no BuildKit (%s): the classic builder", found)
    return None


def mask(line: str, secrets: Sequence[str]) -> str:
    """``line`` with credentials in URLs and every secret value hidden."""
    for value in secrets:
        if value:
            line = line.replace(value, "****")
    return redact(line)


def build(
    cli: BuildKitCli,
    context_dir: Path,
    *,
    secrets: Mapping[str, str],
    network_mode: str | None = None,
    on_line: Callable[[str], None] = log.info,
) -> str:
    """Build ``context_dir`` and load the image into the engine; return its id. Secret
    values travel in the environment of the CLI process (never on its command line, never
    in a file); every line shown passes through ``mask``."""
    values = list(secrets.values())
    with tempfile.TemporaryDirectory(prefix="envbuild-iid-") as tmp:
        iidfile = Path(tmp) / "image-id"
        argv = [*cli.argv, *cli.load, "--progress=plain", "--iidfile", str(iidfile)]
        env = {**os.environ, **dict(cli.env)}
        for i, (sid, value) in enumerate(sorted(secrets.items())):
            var = f"ENVBUILD_SECRET_{i}"
            env[var] = value
            argv += ["--secret", f"id={sid},env={var}"]
        if network_mode:
            argv += ["--network", network_mode]
        argv.append(str(context_dir))
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for raw in proc.stdout:
            line = mask(raw.rstrip(), values)
            if line.strip():
                on_line(line)
                tail = [*tail[-39:], line]
        if proc.wait() != 0:
            raise _failure(tail)
        return iidfile.read_text().strip()


def _failure(tail: Sequence[str]) -> FailedError:
    """One line for what failed: an index that refused the credentials is named as such."""
    denied = next((ln for ln in reversed(tail) if _AUTH.search(ln)), None)
    error = next((ln for ln in reversed(tail) if "ERROR" in ln or "error:" in ln), None)
    last = (denied or error or (tail[-1] if tail else "no output")).strip()
    last = re.sub(r"^(?:#\d+ [0-9.]+ )?(?:hint: |error: )?", "", last)
    if denied:
        message = f"docker build failed: the package index refused the credentials: {last}"
        hint = (
            "check the user and password of the index URL (env file, UV_INDEX_*/PIP_INDEX_URL "
            "or --secret-file); last lines:\n  " + "\n  ".join(tail[-8:])
        )
    else:
        message = f"docker build failed: {last}"
        hint = "the build log above shows the failing step; last lines:\n  " + "\n  ".join(
            tail[-8:]
        )
    return FailedError(message, hint=hint, code="EB801")
