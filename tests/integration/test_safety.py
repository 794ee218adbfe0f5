"""A hostile model through `image` and `venv`: refused before anything is built or run
(no image, no container, no venv, no marker); with --trust-model the image is built and
its proof runs, inside the smoke container only."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import run_envbuild


def image_exists(ref: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False)
    return done.returncode == 0


def made_from(model: Path) -> list[str]:
    """Every container and image on the engine that carries ``model``'s uuid label."""
    uuid_line = next(
        ln for ln in (model / "MLmodel").read_text().splitlines() if ln.startswith("model_uuid:")
    )
    label = f"label=io.envbuild.model.uuid={uuid_line.split(':', 1)[1].strip()}"
    found = []
    for argv in (
        ["docker", "ps", "-aq", "--filter", label],
        ["docker", "images", "-q", "--filter", label],
    ):
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        found.extend(out.split())
    return found


def refused(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 1, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    (error,) = [f for f in doc["findings"] if f["severity"] == "error"]
    assert error["code"] == "EB510", error
    assert error["file"] == "artifacts/classifier.joblib"
    assert "posix.system at byte 0" in str(error["message"])
    return doc


@pytest.fixture
def host_marker() -> Iterator[Path]:
    """A marker path that exists in a container's /tmp too, so the payload could succeed
    anywhere it ran: on the host it must never appear."""
    marker = Path("/tmp") / f"envbuild-hostile-{uuid.uuid4().hex}"
    yield marker
    marker.unlink(missing_ok=True)


@pytest.mark.docker
def test_image_refuses_a_hostile_model(
    tmp_path: Path, host_marker: Path, make_hostile: Callable[[Path, Path], Path]
) -> None:
    model = make_hostile(tmp_path / "hostile", host_marker)
    tag = f"envbuild-test-hostile:{uuid.uuid4().hex[:8]}"
    refused(run_envbuild("image", str(model), "-t", tag, "--format", "json"))
    assert not image_exists(tag)
    assert made_from(model) == []
    assert not host_marker.exists()


@pytest.mark.venv
def test_venv_refuses_a_hostile_model(
    tmp_path: Path, host_marker: Path, make_hostile: Callable[[Path, Path], Path]
) -> None:
    model = make_hostile(tmp_path / "hostile", host_marker)
    venv = tmp_path / "venv"
    refused(run_envbuild("venv", str(model), "--path", str(venv), "--format", "json"))
    assert not venv.exists()
    assert not host_marker.exists()


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.slow
def test_trust_model_builds_and_runs_it_in_the_smoke_container_only(
    tmp_path: Path, host_marker: Path, make_hostile: Callable[[Path, Path], Path]
) -> None:
    model = make_hostile(tmp_path / "hostile", host_marker)
    tag = f"envbuild-test-hostile:{uuid.uuid4().hex[:8]}"
    done = run_envbuild("image", str(model), "-t", tag, "--trust-model", "--format", "json")
    doc = json.loads(done.stdout)
    codes = [f["code"] for f in doc["findings"]]
    assert "EB510" in codes  # the warning that --trust-model let it through
    # the payload replaced the classifier, so the model cannot predict: the proof fails
    assert done.returncode == 1 and "EB802" in codes, done.stderr[-2000:]
    assert not host_marker.exists()
    assert not image_exists(tag)  # a failed proof leaves no tag, no image, no container
    assert made_from(model) == []
