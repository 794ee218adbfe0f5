"""envbuild venv's check of the host for the system packages a lock's libraries need
(EB808): the image path installs them with apt-get; a venv runs on what the machine has.
The probes are the real ones, on this machine (.ci/run installs a Java runtime) and on a
PATH made to lack java."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.build import host_findings
from envbuild.resolve.lock import Lock, read_lock

SHA = " --hash=sha256:" + "0" * 64


def lock_of(*pins: str) -> Lock:
    return read_lock(
        "# target: Python 3.11 on linux/amd64\n" + "".join(f"{p}{SHA}\n" for p in pins)
    )


def test_this_machine_has_what_lightgbm_and_pyspark_need() -> None:
    # libgomp1 (lightgbm's OpenMP) and a JRE (pyspark) are here: nothing to say
    assert host_findings(lock_of("lightgbm==4.6.0", "pyspark==4.0.1", "numpy==2.4.6")) == []


def test_a_host_without_java_is_told_before_the_venv_s_load_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java on PATH
    monkeypatch.delenv("JAVA_HOME", raising=False)
    (finding,) = host_findings(lock_of("pyspark==4.0.1", "numpy==2.4.6"))
    assert finding.code == "EB808" and finding.severity.value == "warning"
    assert finding.message.startswith("pyspark needs a Java runtime (java on PATH or JAVA_HOME)")
    assert "apt-get install default-jre-headless" in (finding.hint or "")
    assert finding.location is not None and finding.location.file == "requirements.lock"
    # JAVA_HOME is enough, as it is for pyspark itself
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert host_findings(lock_of("pyspark==4.0.1")) == []


def test_a_lock_that_needs_no_system_package_is_not_probed() -> None:
    assert host_findings(lock_of("scikit-learn==1.9.1", "pandas==3.1.1")) == []
