"""`envbuild image --lock FILE`: builds from a lock written earlier, without resolving
(what CI locked is what gets built), and refuses a lock that is not one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "tests" / "golden" / "locks" / "pyfunc-custom.lock"
MODEL = ROOT / "examples" / "pyfunc-custom"
# no index answers here: a resolution would fail, so a success proves none ran
DEAD_INDEX = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_OFFLINE": "1"}


def image(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envbuild", "image", str(MODEL), "--no-build", *args],
        capture_output=True, text=True, check=False, env={**os.environ, **DEAD_INDEX},
    )  # fmt: skip


def test_image_builds_from_the_given_lock_without_resolving() -> None:
    done = image("--lock", str(LOCK), "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["result"]["plan"]
    sha = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert plan["labels"]["io.envbuild.lock.sha256"] == sha
    assert plan["python_version"] == "3.11"
    assert "--lock pyfunc-custom.lock" in plan["labels"]["io.envbuild.command"]
    assert not any(f["code"].startswith("EB31") for f in json.loads(done.stdout)["findings"])


def test_a_lock_for_another_python_is_refused() -> None:
    done = image("--lock", str(LOCK), "--python-version", "3.12")
    assert done.returncode == 2
    assert "is locked for Python 3.11, not 3.12" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_lock_line_without_hashes_is_refused(tmp_path: Path) -> None:
    text = LOCK.read_text().replace("    --hash=sha256:", "    #hash=sha256:", 3)
    bad = tmp_path / "requirements.lock"
    bad.write_text(text)
    done = image("--lock", str(bad), "--format", "json")
    assert done.returncode == 2, done.stdout
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "EB402" and error["file"] == str(bad)
