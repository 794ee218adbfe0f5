"""envbuild/_sandbox.py for real: child processes under bwrap and under the process
fallback, probed from the inside (environment, cwd, network, sockets, writes).

The bwrap cases need a working bwrap (CI installs bubblewrap in .ci/run); in CI one that
cannot work is a failure, not a skip. Each bwrap assertion has a process-fallback twin
that shows the same probe succeeding without bwrap, so the probes can fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envbuild._adapters import sandbox as _sandbox
from envbuild._adapters.sandbox import Sandbox

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "GITHUB_TOKEN": "ghp_secretvalue",
    "AZURE_CLIENT_SECRET": "azure-secret",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secret/key.json",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-password-value",
    "DOCKER_HOST": "tcp://127.0.0.1:1",
    "PIP_INDEX_URL": "https://user:pip-password@index.example/simple",
    "UV_INDEX_URL": "https://user:uv-password@index.example/simple",
    "PYTHONPATH": "/elsewhere",
}

PROBE = r"""
import json, os, socket, sys
out = {"env": dict(os.environ), "cwd": os.getcwd()}
host, port, unix, marker, writable, readonly = sys.argv[1:7]
try:
    socket.create_connection((host, int(port)), timeout=3).close()
    out["tcp"] = "connected"
except OSError as exc:
    out["tcp"] = type(exc).__name__
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(unix)
    out["unix"] = "connected"
except OSError as exc:
    out["unix"] = type(exc).__name__
for key, path in (("marker", marker), ("writable", writable), ("readonly", readonly)):
    try:
        with open(path, "w") as f:
            f.write("written from the sandbox")
        out[key] = "written"
    except OSError as exc:
        out[key] = type(exc).__name__
with open(os.path.join(os.environ["HOME"], "left-behind"), "w") as f:
    f.write("x")
print(json.dumps(out))
"""


def require_bwrap() -> None:
    problem = _sandbox.bwrap_problem()
    if problem is None:
        return
    if os.environ.get("CI") and sys.platform.startswith("linux"):
        pytest.fail(f"CI needs a working bwrap: {problem}")
    pytest.skip(problem)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TCP server on 127.0.0.1 and a Unix socket under the test's tmp dir (as the
    Docker socket would be), both accepting until the test ends."""
    tcp = socket.create_server(("127.0.0.1", 0))
    unix_path = tmp_path / "engine.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen()
    stop = threading.Event()

    def accept(sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                sock.accept()[0].close()

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in (tcp, unix)]
    for t in threads:
        t.start()
    try:
        yield tcp.getsockname()[1], unix_path
    finally:
        stop.set()
        for t in threads:
            t.join()
        tcp.close()
        unix.close()


def probe(tmp_path: Path, servers: tuple[int, Path], use_bwrap: bool) -> tuple[dict, Path]:
    port, unix_path = servers
    host_dir = tmp_path / "host"
    venv = tmp_path / "venv"
    model = venv / "model"  # read-only although inside a writable path
    for d in (host_dir, model):
        d.mkdir(parents=True)
    with Sandbox(
        writable=[venv],
        readable=_sandbox.interpreter_roots(Path(sys.executable)),
        readonly=[model],
        use_bwrap=use_bwrap,
    ) as box:
        tmp = box.tmp
        ran = box.run(
            [sys.executable, "-c", PROBE, "127.0.0.1", str(port), str(unix_path),
             str(host_dir / "marker"), str(venv / "bytecode"), str(model / "weights")],
            env={"ENVBUILD_MODEL_DIR": str(model)},
            timeout=60,
        )  # fmt: skip
        assert (tmp / "left-behind").is_file()  # HOME is the temp dir, while it lives
    assert ran.returncode == 0, ran.stderr_tail()
    assert ran.sandbox == ("bwrap" if use_bwrap else "process") and not ran.timed_out
    assert not tmp.exists(), "the temp dir outlived the sandbox"
    doc = json.loads(ran.stdout)
    doc["tmp"] = str(tmp)
    return doc, host_dir


@pytest.mark.parametrize("use_bwrap", [True, False], ids=["bwrap", "process"])
def test_the_child_sees_no_secret_and_lives_in_its_temp_dir(
    tmp_path: Path,
    servers: tuple[int, Path],
    monkeypatch: pytest.MonkeyPatch,
    use_bwrap: bool,
) -> None:
    if use_bwrap:
        require_bwrap()
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    doc, _ = probe(tmp_path, servers, use_bwrap)
    env = doc["env"]
    assert not set(SECRETS) & set(env)
    assert not any(v in json.dumps(env) for v in SECRETS.values())
    assert env["HOME"] == env["TMPDIR"] == doc["cwd"] == doc["tmp"]
    assert env["LC_ALL"] == "C.UTF-8" and env["PATH"] == os.environ["PATH"]
    assert env["ENVBUILD_MODEL_DIR"].endswith("model")  # what the caller passed through
    allowed = {"PATH", "HOME", "TMPDIR", "TMP", "ENVBUILD_MODEL_DIR", "PWD", "LANG", "TZ"}
    allowed |= {"PYTHONDONTWRITEBYTECODE", "JAVA_TOOL_OPTIONS"}  # set by the sandbox: see below
    assert {k for k in env if not k.startswith("LC_")} <= allowed


def test_bwrap_cuts_network_sockets_and_host_writes(
    tmp_path: Path, servers: tuple[int, Path]
) -> None:
    require_bwrap()
    doc, host_dir = probe(tmp_path, servers, use_bwrap=True)
    assert doc["tcp"] != "connected"  # its own network namespace: 127.0.0.1 is not ours
    assert doc["unix"] == "FileNotFoundError"  # the socket's folder is hidden
    assert doc["marker"] != "written" and not (host_dir / "marker").exists()
    assert doc["writable"] == "written"  # the venv: bytecode may be written
    assert (tmp_path / "venv" / "bytecode").is_file()
    assert doc["readonly"] == "OSError" and not (tmp_path / "venv" / "model" / "weights").exists()


def test_the_process_fallback_has_network_and_host_files(
    tmp_path: Path, servers: tuple[int, Path]
) -> None:
    """What bwrap adds: the same probes succeed in a plain child process."""
    doc, host_dir = probe(tmp_path, servers, use_bwrap=False)
    assert doc["tcp"] == doc["unix"] == "connected"
    assert doc["marker"] == doc["writable"] == doc["readonly"] == "written"
    assert (host_dir / "marker").read_text() == "written from the sandbox"


def test_importing_the_model_s_code_leaves_no_bytecode_in_its_folder(tmp_path: Path) -> None:
    """Without bwrap the model folder is writable: the corpus build run (bubblewrap not
    installed) left code/__pycache__ in the corpus's code_paths and models-from-code
    folders after `envbuild venv`, which the next image would have packaged."""
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True)
    (code / "scorer.py").write_text("ANSWER = 42\n")
    with Sandbox(
        writable=[],
        readable=_sandbox.interpreter_roots(Path(sys.executable)),
        readonly=[],
        use_bwrap=False,
    ) as box:
        ran = box.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r}); "
             "import scorer; print(scorer.ANSWER)"],
            timeout=60,
        )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.strip() == b"42", ran.stderr_tail()
    assert not list((tmp_path / "model").rglob("__pycache__"))


def test_a_jvm_starts_in_the_bwrap_sandbox() -> None:
    """pyspark's JVM failed to start in the venv smoke test's bwrap sandbox (JDK 17's
    cgroup v1 detection: NullPointerException), so the corpus spark model's venv failed
    its proof while its image passed. `java -XshowSettings:system` takes the same path."""
    require_bwrap()
    found = shutil.which("java")
    assert found, "java is missing (.ci/run installs openjdk-17-jre-headless)"
    java = Path(os.path.realpath(found))
    with Sandbox(writable=[], readable=[java.parents[2]], readonly=[], use_bwrap=True) as box:
        ran = box.run([str(java), "-XshowSettings:system", "-version"], timeout=120)
    assert ran.returncode == 0, ran.stderr_tail()
    assert b"NullPointerException" not in ran.stderr


@pytest.mark.parametrize("use_bwrap", [True, False], ids=["bwrap", "process"])
def test_a_timeout_kills_the_whole_group(tmp_path: Path, use_bwrap: bool) -> None:
    if use_bwrap:
        require_bwrap()
    token = f"envbuild-sandbox-test-{os.getpid()}-{use_bwrap}"
    started = tmp_path / "started"
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])\n"
        f"open({str(started)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    with Sandbox(writable=[tmp_path], use_bwrap=use_bwrap) as box:
        ran = box.run([sys.executable, "-c", script], timeout=4)
    assert ran.timed_out and time.monotonic() - start < 20, ran.stderr_tail()
    assert started.exists(), "the grandchild was not started before the timeout"
    deadline = time.monotonic() + 10
    while _running(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(token), "the grandchild survived the timeout"


def _running(token: str) -> bool:
    """Whether a live (not zombie) process has ``token`` in its command line."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if token.encode() in (proc / "cmdline").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    return True
        except OSError:
            continue
    return False


def test_a_bwrap_that_cannot_create_namespaces_falls_back_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fake bwrap that fails as a kernel without user namespaces makes it fail."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sys, "platform", "linux")
    _sandbox.bwrap_problem.cache_clear()
    _sandbox._say_once.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="envbuild"):
            assert _sandbox.protection() == "process"
            with Sandbox() as box:
                assert box.sandbox == "process"
                ran = box.run([sys.executable, "-c", "print('ran')"], timeout=30)
        assert ran.returncode == 0 and ran.stdout.strip() == b"ran"
        assert ran.sandbox == "process"
        lines = [r.getMessage() for r in caplog.records if "sandbox:" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "cannot create its namespaces here: bwrap: No permissions" in lines[0]
        assert "scrubbed environment" in lines[0]
    finally:
        _sandbox.bwrap_problem.cache_clear()
        _sandbox._say_once.cache_clear()


def test_interpreter_roots_of_a_venv_name_the_venv_and_its_base(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    (base / "bin" / "python3.11").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(base / "bin" / "python3.11")
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\nversion = 3.11.7\n")
    assert _sandbox.interpreter_roots(venv / "bin" / "python") == [venv, base]


def test_this_machine_runs_bwrap_in_ci() -> None:
    """CI installs bubblewrap (.ci/run): there the sandbox must be the strong one."""
    require_bwrap()
    assert _sandbox.protection() == "bwrap"


def test_bwrap_hides_the_users_credential_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home folder stays readable (interpreters and caches live there), its
    credential folders and files do not."""
    require_bwrap()
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    (home / ".netrc").write_text("machine example.com password x\n")
    (home / "notes.txt").write_text("readable")
    monkeypatch.setenv("HOME", str(home))
    script = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        print(repr(open(p).read()))\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    paths = [home / "notes.txt", home / ".aws" / "credentials", home / ".netrc"]
    with Sandbox(readable=[home]) as box:  # bound back: /tmp itself is hidden
        ran = box.run([sys.executable, "-c", script, *map(str, paths)], timeout=30)
    assert ran.returncode == 0, ran.stderr_tail()
    notes, aws, netrc = ran.stdout.decode().splitlines()
    assert (notes, aws) == ("'readable'", "FileNotFoundError")
    # a file is covered by /dev/null: empty, or unopenable where /dev is mounted nodev
    assert netrc in ("''", "PermissionError")
