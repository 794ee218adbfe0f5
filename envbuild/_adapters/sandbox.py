"""Run a command that executes a model (the venv smoke, ``infer --trace``) in a child
process that sees as little of this machine as the platform allows.

Everywhere: an environment built from an allow-list (PATH, LANG, LC_*, TZ and what the
caller names), never the parent's credentials, tokens, cloud or index settings; a fresh
temp dir as cwd, HOME and TMPDIR, removed afterwards; a timeout that kills the whole
process group.

On Linux with a working ``bwrap`` (bubblewrap) also: no network (its own empty network
namespace), its own pid/ipc/uts namespaces, no capabilities, a read-only view of the
filesystem in which only the temp dir and the paths the caller marks writable can be
written, and the model folder read-only even when it sits inside a writable path. A
read-only bind still lets a process connect to a Unix socket in it (measured: the Docker
socket answered ``GET /version`` from inside ``--ro-bind / /`` with ``--unshare-net``), so
the usual socket and scratch folders (/run, /tmp, /var/tmp, $XDG_RUNTIME_DIR, the folder
of a unix:// DOCKER_HOST or of SSH_AUTH_SOCK) and the user's credential folders are
replaced by empty tmpfs mounts; the paths the command needs are bound back on top.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

log = logging.getLogger("envbuild")

Protection = Literal["bwrap", "process"]

_ALLOWED = ("PATH", "LANG", "TZ")
_ALLOWED_PREFIXES = ("LC_",)

# Namespaces and privileges; the mounts are added per run.
_BWRAP_FLAGS = (
    "--unshare-user-try", "--unshare-net", "--unshare-pid", "--unshare-ipc",
    "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL",
    "--die-with-parent", "--new-session",
)  # fmt: skip

# Under the user's home: where credentials (and some engines' sockets) live.
_HOME_SECRETS = (
    ".ssh", ".aws", ".azure", ".docker", ".kube", ".gnupg", ".config/gcloud", ".config/gh",
    ".netrc", ".pypirc", ".git-credentials", ".databrickscfg", ".mlflow",
)  # fmt: skip

_HIDDEN_ROOTS = ("/tmp", "/var/tmp", "/run", "/var/run")


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's PATH, locale and TZ, then ``extra``; nothing else is inherited."""
    env = {k: v for k, v in os.environ.items() if k in _ALLOWED or k.startswith(_ALLOWED_PREFIXES)}
    env.update(extra or {})
    return env


@functools.cache
def bwrap_problem() -> str | None:
    """None when bwrap can build the sandbox here, else why not (one line)."""
    if not sys.platform.startswith("linux"):
        return f"bwrap is Linux-only (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    true = shutil.which("true")
    probe = [exe, *_BWRAP_FLAGS, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--"]
    probe += [true] if true else [sys.executable, "-c", ""]
    try:
        done = subprocess.run(
            probe, capture_output=True, text=True, timeout=30, check=False, env=scrubbed_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"bwrap is installed but cannot create its namespaces here: {last}"
    return None


def protection() -> Protection:
    """What a Sandbox gets on this machine; says once, in the log, when it is the weaker."""
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    _say_once(problem)
    return "process"


@functools.cache
def _say_once(problem: str) -> None:
    level = logging.WARNING if sys.platform.startswith("linux") else logging.INFO
    log.log(
        level,
        "sandbox: %s; the model runs in a child process with a scrubbed environment and "
        "its own temp dir, but with network and the user's file access",
        problem,
    )


@dataclass(frozen=True, kw_only=True)
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes
    sandbox: Protection
    timed_out: bool
    seconds: float

    def stderr_tail(self, lines: int = 12) -> list[str]:
        return self.stderr.decode("utf-8", "replace").strip().splitlines()[-lines:]


def interpreter_roots(python: Path) -> list[Path]:
    """The folders an interpreter reads its stdlib and packages from, by layout (no code
    of it runs): its venv or prefix, the prefix its symlinks lead to, and a venv's base."""
    roots: list[Path] = []
    for exe in (python.absolute(), python.resolve()):
        if exe.parent.name in ("bin", "Scripts"):
            roots.append(exe.parent.parent)
    cfg = python.absolute().parent.parent / "pyvenv.cfg"
    try:
        lines = cfg.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            home = Path(value.strip())
            roots.append(home.parent if home.name in ("bin", "Scripts") else home)
    return _unique(roots)


def _unique(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


class Sandbox:
    """A fresh temp dir (the command's cwd, HOME and TMPDIR, removed on exit) and the way
    to run commands in it. ``writable``: paths the command may change (a venv's bytecode);
    ``readable``: paths it needs that a hidden folder might cover (the interpreter's
    prefix, the model); the ``readonly`` paths stay read-only even inside a writable one.
    ``use_bwrap=False`` forces the process fallback (tests)."""

    def __init__(
        self,
        *,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        readonly: Sequence[Path] = (),
        use_bwrap: bool | None = None,
    ) -> None:
        self.writable = [Path(os.path.realpath(p)) for p in writable]
        self.readable = [Path(os.path.realpath(p)) for p in readable]
        self.readonly = [Path(os.path.realpath(p)) for p in readonly]
        if use_bwrap is None:
            self.sandbox: Protection = protection()
        else:
            self.sandbox = "bwrap" if use_bwrap else "process"
        self._tmp: Path | None = None

    @property
    def tmp(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("Sandbox.tmp outside `with Sandbox(...)`")
        return self._tmp

    def __enter__(self) -> Sandbox:
        self._tmp = Path(os.path.realpath(tempfile.mkdtemp(prefix="envbuild-sandbox-")))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> Ran:
        """Run ``argv`` (absolute executable path) with the scrubbed environment plus
        ``env``; a timeout kills it and reports ``timed_out``."""
        tmp = self.tmp
        # no bytecode written beside the model's code (code/, models-from-code files):
        # without bwrap the model folder is writable, and a __pycache__ left there would
        # change the user's folder and be packaged by the next image (set below)
        child_env = scrubbed_env(
            {
                **(env or {}),
                "HOME": str(tmp),
                "TMPDIR": str(tmp),
                "TMP": str(tmp),
            }
        )
        if self.sandbox != "bwrap":
            # bwrap mounts the model read-only (the venv's own bytecode is still written)
            child_env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = list(argv)
        if self.sandbox == "bwrap":
            # a JVM (pyspark's) reads its cgroup limits through /proc/self/mountinfo, which
            # the sandbox's own /proc and mount namespace leave without a cgroup path:
            # JDK 17 then fails with a NullPointerException in CgroupV1Subsystem (seen on
            # the corpus spark model's venv). The sandbox sets no cgroup limit to detect.
            java = child_env.get("JAVA_TOOL_OPTIONS", "")
            if "UseContainerSupport" not in java:
                child_env["JAVA_TOOL_OPTIONS"] = f"{java} -XX:-UseContainerSupport".strip()
            # the executable's own prefix, should a hidden folder cover it
            extra = interpreter_roots(Path(command[0]))
            bwrap = shutil.which("bwrap") or "bwrap"
            command = [bwrap, *self._bwrap_args(extra), "--", *command]
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(tmp),
            env=child_env,
            start_new_session=True,  # the timeout kills the group, not only the child
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        return Ran(
            returncode=proc.returncode,
            stdout=out,
            stderr=err,
            sandbox=self.sandbox,
            timed_out=timed_out,
            seconds=time.monotonic() - start,
        )

    def _bwrap_args(self, readable: Sequence[Path] = ()) -> list[str]:
        tmp = self.tmp
        # Mounts apply in order, so parents go first and a deeper one covers what an
        # earlier one put there; on the same path: hidden, then readable, writable, and
        # the read-only ones last.
        mounts = [(p, 0, "hide") for p in self._hidden()]
        ro = _unique([*self.readable, *(Path(os.path.realpath(p)) for p in readable)])
        ro = [p for p in ro if p.exists()]  # a stale pyvenv.cfg home must not stop bwrap
        mounts += [(p, 1, "ro") for p in ro]
        mounts += [(p, 2, "rw") for p in [*self.writable, tmp]]
        mounts += [(p, 3, "ro") for p in self.readonly]
        mounts.sort(key=lambda m: (len(m[0].parts), m[1]))
        args = [*_BWRAP_FLAGS, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path, _, op in mounts:
            if op == "hide":
                if path.is_dir():
                    args += ["--tmpfs", str(path)]
                else:
                    args += ["--ro-bind", "/dev/null", str(path)]
            elif op == "ro":
                args += ["--ro-bind", str(path), str(path)]
            else:
                args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(tmp)]
        return args

    @staticmethod
    def _hidden() -> list[Path]:
        """Existing folders (and files) to replace with empty ones, symlinks resolved."""
        candidates = [Path(p) for p in _HIDDEN_ROOTS]
        try:
            home = Path.home()
        except (RuntimeError, KeyError):  # no HOME and no passwd entry
            home = None
        if home is not None:
            candidates += [home / name for name in _HOME_SECRETS]
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime:
            candidates.append(Path(runtime))
        for name in ("DOCKER_HOST", "CONTAINER_HOST"):
            value = os.environ.get(name, "")
            if value.startswith("unix://"):
                candidates.append(Path(value.removeprefix("unix://")).parent)
        sock = os.environ.get("SSH_AUTH_SOCK")
        if sock:
            candidates.append(Path(sock).parent)
        out: list[Path] = []
        for c in candidates:
            if not (c.exists() and c.is_absolute()):
                continue
            real = Path(os.path.realpath(c))
            if real != Path("/") and real not in out:
                out.append(real)
        return out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if hasattr(os, "killpg"):  # POSIX: the child and everything it started
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()
