"""`envbuild venv` for real: the model's locked environment in a uv venv for Python 3.11
and for another Python found on this machine (pyenv), the stored predictions reproduced
in that venv, and a re-run on the unchanged model that only checks the stamp. The smoke
runs in envbuild/_sandbox.py (bwrap here and in CI); without an input example it predicts
on a payload made from the signature, and a model that cannot load fails it. ``infer --trace`` runs in the same
sandbox, with that venv as the inspected interpreter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from envbuild._adapters import sandbox as _sandbox
from envbuild.infer import run_trace
from envbuild.resolve import parse_lock
from tests.helpers import EXAMPLES, ROOT, require_python, run_envbuild

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())
CORPUS = ROOT / "tests" / "corpus" / "models"
CORPUS_MANIFEST = json.loads((CORPUS.parent / "manifest.json").read_text())


def expected_sandbox() -> str:
    """CI installs bubblewrap: there, and wherever it works, the smoke runs under bwrap."""
    if os.environ.get("CI") or _sandbox.bwrap_problem() is None:
        return "bwrap"
    return "process"


def files_and_mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_mtime_ns for p in folder.rglob("*")}


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
    require_python(python)  # PATH or pyenv has it, or the test skips (and CI fails)
    model = truth_model(tmp_path / "sklearn-credit", "sklearn-credit")
    venv = tmp_path / f"venv-{python}"
    done = run_envbuild(
        "venv", str(model), "--path", str(venv), "--python", python, "--format", "json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    result = doc["result"]
    assert result["python"] == python and not result["reused"]
    assert result["smoke"]["ok"] and result["smoke"]["compared"]
    assert result["smoke"]["expected"] == "expected_predictions.json"
    assert result["smoke"]["proof"] == "matched stored predictions"
    assert result["smoke"]["sandbox"] == {"kind": expected_sandbox()}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == str(tuple(int(x) for x in python.split(".")))
    # unchanged model: the stamp answers, and nothing in the venv is written (no resolve, no
    # install, no smoke); how fast that is, is benchmarks/bench_image.py's envbuild_unchanged
    before = files_and_mtimes(venv)
    again = run_envbuild("venv", str(model), "--path", str(venv), "--python", python)
    assert again.returncode == 0, again.stderr
    assert "unchanged (stamp matches)" in again.stdout and "smoke ok" not in again.stdout
    assert files_and_mtimes(venv) == before
    # a changed model file is predicted on again, without reinstalling
    (model / "MLmodel").touch()
    os.utime(model / "model.skops")
    third = run_envbuild("venv", str(model), "--path", str(venv), "--python", python)
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"smoke ok (matched stored predictions, {expected_sandbox()} sandbox)" in third.stdout


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "mlflow2.9.2-py3.9-sklearn-pickle",
        "mlflow1.30.1-py3.8-sklearn-pickle",
        "mlflow1.30.1-py3.7-sklearn-pickle",
    ],
)
def test_old_mlflow_and_python_venv_predicts(tmp_path: Path, name: str) -> None:
    """Models MLflow 2.9.2 and 1.30.1 wrote (issue #14): both import pkg_resources, which
    a uv venv lacks unless the lock brings setuptools; python_env.yaml's build_dependencies
    are in the lock (or EB322 says which pin could not be), the venv runs the MLflow
    and Python the model was saved with, and the stored predictions come back."""
    entry = next(e for e in CORPUS_MANIFEST["models"] if e["name"] == name)
    require_python(entry["python"])
    model = tmp_path / name
    shutil.copytree(CORPUS / name, model)
    venv = tmp_path / "venv"
    done = run_envbuild("venv", str(model), "--path", str(venv), "--format", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["result"]["smoke"]["proof"] == "matched stored predictions"
    probe = (
        "import sys, pkg_resources, setuptools, mlflow.version; "
        "print('%d.%d' % sys.version_info[:2], mlflow.version.VERSION, setuptools.__version__)"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-W", "ignore", "-c", probe],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out[:2] == [entry["python"], entry["mlflow_version"]]
    assert Version(out[2]) < Version("81")  # serving.MLFLOW_NEEDS
    lock = parse_lock((venv / ".envbuild" / "requirements.lock").read_text())
    relaxed = {f["message"].split("'")[1] for f in doc["findings"] if f["code"] == "EB322"}
    build = yaml.safe_load((model / "python_env.yaml").read_text())["build_dependencies"]
    for line in build:
        req = Requirement(line)
        assert req.name in lock, line
        assert line in relaxed or req.specifier.contains(lock[req.name]), (line, lock[req.name])


def test_missing_python_exits_3(tmp_path: Path) -> None:
    done = run_envbuild("venv", str(EXAMPLES / "sklearn-credit"), "--path", str(tmp_path / "v"),
                    "--python", "3.99")  # fmt: skip
    assert done.returncode == 3
    assert "no Python 3.99" in done.stderr and "EB902" in done.stderr


@pytest.fixture(scope="module")
def no_example_venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """sklearn-credit logged without an input example, in a venv for 3.11 (built once)."""
    require_python("3.11")
    tmp = tmp_path_factory.mktemp("no-example")
    model = truth_model(tmp / "sklearn-credit", "sklearn-credit")
    mlmodel = model / "MLmodel"
    doc = yaml.safe_load(mlmodel.read_text())
    del doc["saved_input_example_info"]
    mlmodel.write_text(yaml.safe_dump(doc))
    for name in ("input_example.json", "serving_input_example.json"):
        (model / name).unlink()
    venv = tmp / "v"
    done = run_envbuild("venv", str(model), "--path", str(venv), "--python", "3.11",
                    "--format", "json")  # fmt: skip
    return {"tmp": tmp, "model": model, "venv": venv, "done": done}


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_model_without_input_example_predicts_on_its_signature(
    no_example_venv: dict[str, object],
) -> None:
    """No example: the smoke predicts in the sandbox on a payload made from the signature
    (the model's OneHotEncoder ignores the made-up category) and says so."""
    done = no_example_venv["done"]
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 0, done.stderr[-2000:]
    smoke = json.loads(done.stdout)["result"]["smoke"]
    assert smoke["ok"] and not smoke["compared"] and smoke["input"] == "MLmodel"
    assert smoke["proof"] == "predicted on a synthesized payload"
    assert smoke["sandbox"] == {"kind": expected_sandbox()}
    assert smoke["message"] == (
        "a valid response to a payload synthesized from the signature (one row of 7 columns)"
    )
    assert smoke["synthesized"]["dataframe_split"]["data"][0][2] == "a"  # education
    # the venv is writable in the sandbox: the load wrote its bytecode (none is compiled
    # at install)
    site = next(Path(str(no_example_venv["venv"])).glob("lib/python3*/site-packages"))
    assert list((site / "sklearn").glob("__pycache__/*.pyc"))


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_model_that_cannot_load_fails_the_smoke(no_example_venv: dict[str, object]) -> None:
    """The same environment with a corrupt model file: the venv is reused, the load in
    the sandbox fails, and that is a failed smoke test (EB802), exit 1."""
    model = Path(str(no_example_venv["model"]))
    broken = Path(str(no_example_venv["tmp"])) / "broken" / model.name
    shutil.copytree(model, broken)
    (broken / "model.skops").write_bytes(b"not a skops file")
    done = run_envbuild("venv", str(broken), "--path", str(no_example_venv["venv"]))
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "EB802" in done.stderr and "the model did not load in the venv" in done.stderr
    assert "smoke ok" not in done.stdout


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_trace_runs_in_the_sandbox(
    no_example_venv: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--trace with that venv as the inspected interpreter (under /tmp, which the bwrap
    sandbox hides and binds back read-only): it loads and predicts, in the sandbox."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-model")
    model = truth_model(tmp_path / "sklearn-credit", "sklearn-credit")
    python = Path(str(no_example_venv["venv"])) / "bin" / "python"
    traced = run_trace(str(python), model, timeout=300)
    assert traced.error is None and traced.predicted, traced
    assert traced.sandbox == expected_sandbox()
    assert any(m.startswith("sklearn") for m in traced.modules)


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_trusted_hostile_model_runs_in_the_sandbox(
    tmp_path: Path, make_hostile: Callable[[Path, Path], Path]
) -> None:
    """--trust-model lets the payload run, in the venv smoke's sandbox: under bwrap the
    file it creates in the host's /tmp lands in the sandbox's own /tmp instead."""
    require_python("3.11")
    marker = Path("/tmp") / f"envbuild-hostile-{uuid.uuid4().hex}"
    model = make_hostile(tmp_path / "hostile", marker)
    try:
        done = run_envbuild("venv", str(model), "--path", str(tmp_path / "v"), "--python", "3.11",
                        "--trust-model")  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr[-2000:]
        assert "EB802" in done.stderr
        # it ran: the unpickled "classifier" is what posix.system returned
        assert "'int' object" in done.stderr, done.stderr[-2000:]
        if expected_sandbox() == "bwrap":
            assert not marker.exists()
    finally:
        marker.unlink(missing_ok=True)
