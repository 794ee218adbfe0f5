"""`envbuild venv` for real: the model's locked environment in a uv venv for Python 3.11
and for another Python found on this machine (pyenv), the stored predictions reproduced
in that venv, and a re-run on the unchanged model that only checks the stamp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envbuild.build import find_python

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())


def envbuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envbuild", *args], capture_output=True, text=True, check=False
    )


def truth_model(dst: Path, name: str) -> Path:
    shutil.copytree(EXAMPLES / name, dst)
    truth = next(e["truth"] for e in MANIFEST["examples"] if e["name"] == name)
    lines = [f"{'mlflow-skinny' if k == 'mlflow' else k}=={v}" for k, v in sorted(truth.items())]
    (dst / "requirements.txt").write_text("\n".join(lines) + "\n")
    return dst


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_venv_reproduces_predictions(tmp_path: Path, python: str) -> None:
    find_python(python, python)  # the machine has it (pyenv); a missing one fails here
    model = truth_model(tmp_path / "sklearn-credit", "sklearn-credit")
    venv = tmp_path / f"venv-{python}"
    done = envbuild("venv", str(model), "--path", str(venv), "--python", python, "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    result = doc["result"]
    assert result["python"] == python and not result["reused"]
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    assert result["smoke"]["expected"] == "expected_predictions.json"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == str(tuple(int(x) for x in python.split(".")))
    # unchanged model: the stamp answers
    start = time.monotonic()
    again = envbuild("venv", str(model), "--path", str(venv), "--python", python)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout
    assert time.monotonic() - start < 1.5
    # a changed model file is predicted on again, without reinstalling
    (model / "MLmodel").touch()
    os.utime(model / "model.skops")
    third = envbuild("venv", str(model), "--path", str(venv), "--python", python)
    assert third.returncode == 0 and "smoke ok" in third.stdout


def test_missing_python_exits_3(tmp_path: Path) -> None:
    done = envbuild("venv", str(EXAMPLES / "sklearn-credit"), "--path", str(tmp_path / "v"),
                    "--python", "3.99")  # fmt: skip
    assert done.returncode == 3
    assert "no Python 3.99" in done.stderr and "EB902" in done.stderr


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_model_without_input_example_passes_on_load_alone(tmp_path: Path) -> None:
    """A model logged without an input example has nothing to predict on: the smoke loads
    it, passes, and says no prediction was compared."""
    model = truth_model(tmp_path / "sklearn-credit", "sklearn-credit")
    mlmodel = model / "MLmodel"
    doc = yaml.safe_load(mlmodel.read_text())
    del doc["saved_input_example_info"]
    mlmodel.write_text(yaml.safe_dump(doc))
    for name in ("input_example.json", "serving_input_example.json"):
        (model / name).unlink()
    done = envbuild("venv", str(model), "--path", str(tmp_path / "v"), "--python", "3.11",
                    "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    smoke = json.loads(done.stdout)["result"]["smoke"]
    assert smoke["ok"] and not smoke["compared"] and smoke["input"] is None
    assert smoke["message"] == "no input example to predict on"
