"""A pin with only an sdist for the target: `check` says so before any build (EB350), and
`image` compiles it in a throwaway builder stage (the image carries no compiler), or with
--wheels-only refuses before building (EB411). One real build: psutil 5.8.0, whose PyPI
wheels stop at CPython 3.9, in a model that MLflow 2.22.5 wrote on Python 3.10."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from envbuild.resolve.lock import Lock, Pin
from envbuild.resolve.target import Target
from envbuild.resolve.wheels import source_builds
from tests.helpers import ROOT, run_envbuild

CORPUS = ROOT / "tests" / "corpus" / "models" / "mlflow2.22.5-py3.10-pyfunc-artifacts"
TAG = "envbuild-h6-source-build:1"


def sdist_model(tmp_path: Path) -> Path:
    """The corpus model with psutil==5.8.0 as the fifth line of its requirements.txt."""
    model = tmp_path / "model"
    shutil.copytree(CORPUS, model)
    reqs = model / "requirements.txt"
    reqs.write_text(reqs.read_text().rstrip("\n") + "\npsutil==5.8.0\n")
    assert reqs.read_text().splitlines()[4] == "psutil==5.8.0"
    return model


@pytest.mark.network
def test_uv_names_every_pin_without_a_wheel() -> None:
    """Two sdist-only pins on 3.11 (pandas 1.3.1 and psutil 5.8.0 predate 3.11's wheels)
    and one with a wheel: uv is asked until it agrees, each missing pin named once."""
    pins = tuple(
        Pin(name=n, version=Version(v), hashes=(), requested_by=())
        for n, v in (("pandas", "1.3.1"), ("psutil", "5.8.0"), ("requests", "2.31.0"))
    )
    lock = Lock(target=Target(python=Version("3.11")), pins=pins, text="", options=())
    assert source_builds(lock) == ("pandas", "psutil")
    newer = Pin(name="psutil", version=Version("7.0.0"), hashes=(), requested_by=())
    assert source_builds(Lock(target=lock.target, pins=(newer,), text="", options=())) == ()


@pytest.mark.network
def test_check_reports_the_pin_before_any_build(tmp_path: Path) -> None:
    model = sdist_model(tmp_path)
    done = run_envbuild("check", str(model), "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]  # a warning: image can still build it
    findings = json.loads(done.stdout)["result"]["models"][0]["findings"]
    eb350 = [f for f in findings if f["code"] == "EB350"]
    assert len(eb350) == 1, findings
    (finding,) = eb350
    assert finding["severity"] == "warning"
    assert finding["file"] == "requirements.txt"
    assert finding["line"] == 5
    assert finding["message"].startswith("psutil==5.8.0 has no wheel for Python 3.10")
    assert "--wheels-only" in finding["hint"]
    # the model's own pins all have wheels: nothing else is reported
    plain = run_envbuild("check", str(CORPUS), "--format", "json")
    assert "EB350" not in plain.stdout


@pytest.mark.network
@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("--wheels-only", "--wheels-only forbids building from source"),
        ("--wheelhouse", "--wheelhouse installs downloaded wheels only"),
    ],
)
def test_refused_before_building(tmp_path: Path, flag: str, why: str) -> None:
    """Said before any download or build, naming the pin: no Docker needed (--no-build)."""
    done = run_envbuild("image", str(sdist_model(tmp_path)), "--no-build", flag, "--format", "json")
    assert done.returncode == 1, done.stderr[-2000:]
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "EB411"
    assert error["message"] == (
        f"psutil==5.8.0 has no wheel for Python 3.10.13 on linux/amd64 and {why}"
    )
    assert "downloading the wheelhouse" not in done.stderr


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_image_compiles_it_in_a_builder_stage(tmp_path: Path) -> None:
    """The build passes its smoke test (the stored predictions come back), psutil's C
    extension loads in the image, and the image has no compiler."""
    model = sdist_model(tmp_path)
    try:
        done = run_envbuild("image", str(model), "-t", TAG, "--format", "json")
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)["result"]
        assert result["smoke"]["ok"] and result["smoke"]["compared"]
        assert ".envbuild/source-builds.lock" in result["plan"]["files"]
        probe = (
            "import shutil, psutil, psutil._psutil_linux as ext; "
            "print(psutil.__version__, ext.__file__.endswith('.so'), shutil.which('gcc'))"
        )
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint",
             "/opt/envbuild/venv/bin/python", TAG, "-c", probe],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout.strip()  # fmt: skip
        assert out == "5.8.0 True None", out
    finally:
        subprocess.run(["docker", "rmi", TAG], capture_output=True, check=False)
