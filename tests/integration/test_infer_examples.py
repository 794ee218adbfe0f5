"""`envbuild infer` on the real examples, inspecting a real training environment: the files
it writes install into a fresh virtualenv that loads each model and reproduces its stored
predictions; the CLI modes (--check, --explain, --force, --no-prune, JSON, --trace).

The training environment is $ENVBUILD_TRAINING_PYTHON, else the examples' venv
(/work/venvs/examples-mlflow3), else one built here from examples/requirements-examples.txt
(uv, torch from /opt/wheels). Fresh venvs are built once per session and reused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXAMPLES, SCHEMAS, require_python, run_envbuild

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())
WHEELS = "/opt/wheels"
SCHEMA = json.loads((SCHEMAS / "envelope-v1.schema.json").read_text())
TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"

pytestmark = [pytest.mark.venv]


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def run(*args: str, cwd: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, cwd=cwd, **kw)


@pytest.fixture(scope="session")
def training_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("ENVBUILD_TRAINING_PYTHON")
    if given:
        return given
    known = Path("/work/venvs/examples-mlflow3/bin/python")
    if known.exists():
        return str(known)
    venv = tmp_path_factory.mktemp("training") / "venv"
    require_python("3.11")  # what uv finds too (PATH, pyenv); or skip (CI: fail)
    done = run(_uv(), "venv", "--python", "3.11", str(venv))
    assert done.returncode == 0, done.stderr
    py = venv / "bin" / "python"
    # the examples tested here need neither xgboost nor lightgbm (xgboost would pull the
    # 470 MB nvidia-nccl wheel onto a fresh CI machine)
    wanted = venv.parent / "requirements-training.txt"
    wanted.write_text(
        "".join(
            line + "\n"
            for line in (EXAMPLES / "requirements-examples.txt").read_text().splitlines()
            if not line.startswith(("xgboost", "lightgbm"))
        )
    )
    done = run(
        _uv(), "pip", "install", "--python", str(py), "--find-links", WHEELS, "-r", str(wanted),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return str(py)


def examples_with_predictions() -> list[str]:
    return sorted(e["name"] for e in MANIFEST["examples"] if e.get("expected_predictions"))


def load_env(name: str) -> dict[str, str]:
    entry = next(e for e in MANIFEST["examples"] if e["name"] == name)
    return {**os.environ, **(entry.get("load_env") or {}), "MLFLOW_ENABLE_TELEMETRY": "false"}


@pytest.fixture(scope="session")
def inferred(tmp_path_factory: pytest.TempPathFactory, training_python: str) -> dict[str, Path]:
    """Each example copied and `envbuild infer` run on it (writes the three files)."""
    base = tmp_path_factory.mktemp("inferred")
    out = {}
    for name in [*examples_with_predictions(), "fastai-legacy"]:
        dst = base / name
        shutil.copytree(EXAMPLES / name, dst)
        done = run_envbuild("infer", str(dst), "--python", training_python)
        # fastai-legacy: fastai is not in the training env (EB209 warning), still exit 0
        assert done.returncode == 0, done.stdout + done.stderr
        out[name] = dst
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


PREDICT = """
import json, sys
import mlflow.pyfunc
from mlflow.pyfunc import scoring_server
path, name = sys.argv[1], sys.argv[2]
model = mlflow.pyfunc.load_model(path)
data = open(path + "/" + name, encoding="utf-8").read()
resp = scoring_server.invocations(data, "application/json", model, model.metadata.get_input_schema())
assert resp.status == 200, resp.response
print(json.dumps(json.loads(resp.response)["predictions"]))
"""


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("name", examples_with_predictions())
def test_fresh_venv_reproduces_predictions(
    name: str, inferred: dict[str, Path], tmp_path: Path
) -> None:
    model = inferred[name]
    text = (model / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]
    truth = next(e["truth"] for e in MANIFEST["examples"] if e["name"] == name)
    written = {line.split("==")[0] for line in lines if "==" in line}
    # never missing what the model needs (scipy for sklearn-credit comes with scikit-learn)
    assert set(truth) - written <= {"scipy", "mlflow-tracing"}
    if "torch" in truth:
        # the local label is kept, with the index that serves it
        assert "torch==2.13.0+cpu" in lines and TORCH_INDEX in lines
        # this machine reaches only PyPI: take the same +cpu wheel from /opt/wheels
        lines = [line for line in lines if line != TORCH_INDEX]
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("\n".join(lines) + "\n")
    venv = tmp_path / "venv"
    require_python("3.11")  # what uv finds too (PATH, pyenv); or skip (CI: fail)
    done = run(_uv(), "venv", "--python", "3.11", str(venv))
    assert done.returncode == 0, done.stderr
    py = venv / "bin" / "python"
    done = run(
        _uv(), "pip", "install", "--python", str(py), "--find-links", WHEELS, "-r", str(reqs)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = json.loads((model / "expected_predictions.json").read_text())
    done = run(str(py), "-c", PREDICT, str(model), expected["input"], env=load_env(name))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _close(json.loads(done.stdout.strip().splitlines()[-1]), expected["predictions"])


def test_written_requirements_match_truth(inferred: dict[str, Path]) -> None:
    for name in examples_with_predictions():
        text = (inferred[name] / "requirements.txt").read_text()
        pins = dict(
            line.split("==", 1)
            for line in text.splitlines()
            if "==" in line and not line.startswith(("#", " "))
        )
        truth = next(e["truth"] for e in MANIFEST["examples"] if e["name"] == name)
        for dist, version in truth.items():
            if dist in pins:
                assert pins[dist] == version, (name, dist)
        assert "torch" not in pins or "torch" in truth, name  # skops does not need torch
    text = (inferred["sklearn-credit"] / "requirements.txt").read_text()
    assert [line for line in text.splitlines() if not line.startswith(("#", " "))] == [
        "mlflow==3.17.2",
        "numpy==2.4.6",
        "pandas==3.1.1",
        "scikit-learn==1.9.1",
        "skops==0.16.0",
    ]


def test_check_passes_after_infer_and_fails_on_mlflow_files(
    inferred: dict[str, Path], training_python: str, tmp_path: Path
) -> None:
    ok = run_envbuild(
        "infer", str(inferred["sklearn-credit"]), "--python", training_python, "--check"
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "check: the environment files match" in ok.stdout
    # MLflow's own files for the skops model list torch (an opportunistic import)
    original = tmp_path / "sklearn-credit"
    shutil.copytree(EXAMPLES / "sklearn-credit", original)
    bad = run_envbuild(
        "infer", str(original), "--python", training_python, "--check", "--format", "json"
    )
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["exit_code"] == 1 and not doc["ok"]
    codes = {(f["code"], f["message"].split(" ")[0]) for f in doc["result"]["check"]["differences"]}
    assert ("EB221", "torch==2.13.0") in codes
    assert ("EB221", "cloudpickle==3.1.3") not in codes  # not listed there
    # nothing was written in check mode
    assert (original / "requirements.txt").read_bytes() == (
        EXAMPLES / "sklearn-credit" / "requirements.txt"
    ).read_bytes()


def test_check_reports_version_drift_and_missing_index(
    inferred: dict[str, Path], training_python: str, tmp_path: Path
) -> None:
    model = tmp_path / "pytorch-tensor"
    shutil.copytree(inferred["pytorch-tensor"], model)
    text = (model / "requirements.txt").read_text()
    text = text.replace(TORCH_INDEX + "\n", "").replace("numpy==2.4.6", "numpy==2.4.5")
    (model / "requirements.txt").write_text(text)
    done = run_envbuild(
        "infer", str(model), "--python", training_python, "--check", "--format", "json"
    )
    assert done.returncode == 1
    diffs = json.loads(done.stdout)["result"]["check"]["differences"]
    got = {(d["file"], d["code"]) for d in diffs}
    assert ("requirements.txt", "EB222") in got  # numpy drift, at its line
    assert ("requirements.txt", "EB224") in got  # the +cpu index line is gone
    drift = next(d for d in diffs if d["code"] == "EB222")
    assert drift["line"] is not None and "numpy==2.4.5" in drift["message"]


def test_explain_and_json_envelope(inferred: dict[str, Path], training_python: str) -> None:
    import jsonschema

    model = str(inferred["pyfunc-custom"])
    done = run_envbuild("infer", model, "--python", training_python, "--explain", "scipy")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "scipy: required as scipy==1.17.1"
    assert "import scipy.special at code/credit_scorer.py:37" in done.stdout
    pruned = run_envbuild("infer", model, "--python", training_python, "--explain", "cloudpickle")
    assert pruned.stdout.splitlines()[0] == "cloudpickle: pruned"
    assert "pruned: required by joblib, mlflow, scikit-learn" in pruned.stdout
    doc = json.loads(
        run_envbuild(
            "infer", model, "--python", training_python, "--dry-run", "--format", "json"
        ).stdout
    )
    jsonschema.validate(doc, SCHEMA)
    reqs = {r["name"]: r for r in doc["result"]["requirements"]}
    joblib = reqs["joblib"]
    kinds = {e["kind"] for e in joblib["evidence"]}
    assert kinds == {"pickle", "code"}
    pickled = next(e for e in joblib["evidence"] if e["kind"] == "pickle")
    assert pickled["file"] == "artifacts/classifier.joblib" and pickled["offset"] == 353
    assert doc["result"]["written"] == []


def test_no_prune_keeps_transitive(inferred: dict[str, Path], training_python: str) -> None:
    model = str(inferred["pyfunc-custom"])
    doc = json.loads(
        run_envbuild(
            "infer",
            model,
            "--python",
            training_python,
            "--dry-run",
            "--no-prune",
            "--format",
            "json",
        ).stdout
    )
    names = [r["name"] for r in doc["result"]["requirements"]]
    assert "cloudpickle" in names and doc["result"]["pruned"] == []


def test_keeps_user_option_lines_unless_force(
    inferred: dict[str, Path], training_python: str, tmp_path: Path
) -> None:
    model = tmp_path / "sklearn-credit"
    shutil.copytree(inferred["sklearn-credit"], model)
    req = model / "requirements.txt"
    req.write_text("--index-url https://mirror.example/simple\nnumpy==1.0\n")
    assert run_envbuild("infer", str(model), "--python", training_python).returncode == 0
    lines = req.read_text().splitlines()
    assert "--index-url https://mirror.example/simple" in lines and "numpy==2.4.6" in lines
    assert "numpy==1.0" not in lines
    assert run_envbuild("infer", str(model), "--python", training_python, "--force").returncode == 0
    assert "--index-url https://mirror.example/simple" not in req.read_text()


def test_trace_merges_imports(inferred: dict[str, Path], training_python: str) -> None:
    done = run_envbuild(
        "infer", str(inferred["pyfunc-custom"]), "--python", training_python,
        "--trace", "--dry-run", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["traced"]["error"] is None and result["traced"]["predicted"]
    assert "scipy.special" in result["traced"]["modules"]
    scipy = next(r for r in result["requirements"] if r["name"] == "scipy")
    assert {e["kind"] for e in scipy["evidence"]} == {"code", "traced"}
