"""The resolver against the real index (PyPI): satisfiable models, conflicts explained to
the requirement line, an override, and a lock that installs and reproduces predictions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envbuild.cli import main
from envbuild.findings import Finding
from envbuild.read import read_model, read_workspace_env
from envbuild.resolve import resolve, target_for
from tests.helpers import DATA, EXAMPLES, ROOT

CASES = DATA / "resolve"
# torch==2.13.0 from PyPI drags CUDA wheels (GBs); the machine's CPU wheel lies here
CPU_WHEELS = Path("/opt/wheels")

pytestmark = pytest.mark.network


def _where(f: Finding) -> str:
    return f"{f.location.file}:{f.location.line}"


def _one(findings: tuple[Finding, ...], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, [f.one_line() for f in findings]
    return matching[0]


def _resolve(model: Path, **kwargs):
    folder = read_model(model)
    target, _ = target_for(folder)
    return folder, resolve(folder, target, **kwargs)


def test_satisfiable_model_locks_with_hashes_and_no_drift() -> None:
    folder, resolution = _resolve(EXAMPLES / "sklearn-credit", find_links=[CPU_WHEELS])
    assert resolution.ok, [f.one_line() for f in resolution.findings]
    lock = resolution.lock
    assert lock is not None
    sklearn = lock.pin("scikit-learn")
    assert sklearn is not None and str(sklearn.version) == "1.9.1"
    assert sklearn.requested_by[0] == "requirements.txt:4"
    assert all(p.hashes and all(h.startswith("sha256:") for h in p.hashes) for p in lock.pins)
    # the declared mlflow==3.17.2 (requirements.txt:1) is served by mlflow-skinny, the one MLflow
    mlflow = lock.pin("mlflow-skinny")
    assert mlflow is not None and str(mlflow.version) == folder.mlmodel.mlflow_version
    assert mlflow.requested_by[0] == "requirements.txt:1" and lock.pin("mlflow") is None
    torch = lock.pin("torch")
    assert torch is not None and torch.version.local == "cpu"
    assert not [f for f in resolution.findings if f.code.startswith("EB32")]
    # the same inputs give the same bytes; the index is an input too, so fix its date
    # (this very machine's PyPI view flip-flopped on a filelock release during development)
    asof = "2026-11-20T00:00:00Z"
    _, first = _resolve(EXAMPLES / "sklearn-credit", find_links=[CPU_WHEELS], exclude_newer=asof)
    _, again = _resolve(EXAMPLES / "sklearn-credit", find_links=[CPU_WHEELS], exclude_newer=asof)
    assert first.lock is not None and again.lock is not None
    assert again.lock.text == first.lock.text
    assert f"# index as of: {asof}" in first.lock.text


@pytest.mark.parametrize("name", ["pyfunc-custom", "pytorch-tensor"])
def test_other_examples_resolve(name: str) -> None:
    if not (EXAMPLES / name / "MLmodel").is_file():
        pytest.fail(f"examples/{name} is missing")
    _, resolution = _resolve(EXAMPLES / name, find_links=[CPU_WHEELS])
    assert resolution.ok, [f.one_line() for f in resolution.findings]


def test_two_contradictory_pins() -> None:
    _, resolution = _resolve(CASES / "contradictory-pins")
    assert resolution.lock is None
    f = _one(resolution.findings, "EB302")
    assert _where(f) == "requirements.txt:8"
    assert "requirements.txt:4" in f.message


def test_pin_needing_a_newer_python() -> None:
    _, resolution = _resolve(CASES / "needs-newer-python")
    assert resolution.lock is None
    f = _one(resolution.findings, "EB311")
    assert _where(f) == "requirements.txt:1"
    assert "scikit-learn==1.9.1 needs Python>=3.11" in f.message
    assert "python_env.yaml:1" in f.message  # where the target Python comes from
    assert "--python-version 3.11" in f.hint
    assert re.search(r"scikit-learn==1\.\d+\.\d+, the nearest version", f.hint), f.hint


def test_transitive_conflict_numpy_pandas() -> None:
    _, resolution = _resolve(CASES / "transitive-conflict")
    assert resolution.lock is None
    f = _one(resolution.findings, "EB310")
    assert _where(f) == "requirements.txt:1"
    assert "'numpy==1.21.6' (requirements.txt:1)" in f.message
    assert "'pandas==2.2.3' (requirements.txt:2)" in f.message
    assert "pandas==2.2.3 → numpy>=1.22.4" in f.message
    assert "numpy==1.22.4 (keeping pandas==2.2.3)" in f.hint
    assert re.search(r"pandas==\d+\.\d+\.\d+ \(keeping numpy==1\.21\.6\)", f.hint), f.hint


def test_override_dropping_the_flavor_library() -> None:
    override = read_workspace_env(CASES / "overrides" / "drops-sklearn.yml")
    folder = read_model(EXAMPLES / "sklearn-credit")
    target, _ = target_for(folder, env=override.spec)
    resolution = resolve(folder, target, override=override)
    f = _one(resolution.findings, "EB330")
    assert f.location.file is not None and f.location.file.endswith("drops-sklearn.yml")
    assert f.location.line == 13
    assert "requirements.txt:4" in f.message
    assert resolution.lock is not None and resolution.lock.pin("scikit-learn") is None
    assert not resolution.ok  # the dropped library is an error


def test_python_disagreement_and_cli_json() -> None:
    result = CliRunner().invoke(
        main,
        ["lock", str(CASES / "python-disagree"), "--dry-run", "--format", "json"],
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    codes = {(f["code"], f["file"], f["line"]) for f in doc["findings"]}
    assert ("EB300", "conda.yaml", 4) in codes
    assert ("EB311", "requirements.txt", 2) in codes  # numpy 2.4.6 needs Python 3.11


@pytest.mark.venv
@pytest.mark.slow
def test_lock_installs_and_reproduces_predictions(copy_model, tmp_path: Path) -> None:
    model = copy_model("sklearn-credit")
    result = CliRunner().invoke(main, ["lock", str(model), "--find-links", str(CPU_WHEELS)])
    assert result.exit_code == 0, result.output
    lock_file = model / "requirements.lock"
    venv = tmp_path / "venv"
    from uv import find_uv_bin

    subprocess.run(
        [find_uv_bin(), "venv", "--seed", "--python", sys.executable, str(venv)],
        check=True,
        capture_output=True,
    )
    python = venv / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-compile", "--require-hashes", "-r", lock_file],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_FIND_LINKS": ""},  # only what the lock itself names
    )
    assert install.returncode == 0, install.stderr[-3000:]
    expected = json.loads((model / "expected_predictions.json").read_text())
    script = (
        "import json, sys, mlflow.pyfunc\n"
        "from mlflow.models.utils import _read_example\n"
        "import pandas as pd\n"
        "doc = json.load(open(sys.argv[2]))['dataframe_split']\n"
        "df = pd.DataFrame(doc['data'], columns=doc['columns'])\n"
        "out = mlflow.pyfunc.load_model(sys.argv[1]).predict(df)\n"
        "print(json.dumps([x.item() if hasattr(x, 'item') else x for x in list(out)]))\n"
    )
    run = subprocess.run(
        [python, "-c", script, model, model / expected["input"]],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected["predictions"]


def test_a_local_torch_build_is_resolved_from_the_pytorch_cpu_index() -> None:
    """MLflow's inference pinned the training venv's torch==2.13.0+cpu (corpus folder): with
    default flags it is resolved as --torch cpu resolves (EB319 on its line), from the
    PyTorch CPU index, not looked up on PyPI (which never has +cpu). This machine does not
    reach that index: the failure then names it, with the --find-links way round; where it
    is reached, the lock holds the CPU build. With --find-links holding the wheel, it locks."""
    model = ROOT / "tests" / "corpus" / "models" / "mlflow3.17.2-py3.11-pytorch"
    _, res = _resolve(model)
    declared = [f for f in res.findings if f.code == "EB319" and f.location.line == 5]
    assert len(declared) == 1 and "resolved as --torch cpu does" in declared[0].message
    assert not [f for f in res.findings if f.code == "EB312"]
    if res.lock is None:
        failed = _one(res.findings, "EB315")
        assert "download.pytorch.org/whl/cpu" in failed.message, failed.one_line()
        index = next(f for f in res.findings if f.code == "EB319" and f is not declared[0])
        assert "--find-links" in (index.hint or "")
    else:
        torch = next(p for p in res.lock.pins if p.name == "torch")
        assert str(torch.version) == "2.13.0+cpu"
    _, from_wheel = _resolve(model, find_links=[CPU_WHEELS])
    assert from_wheel.ok and from_wheel.lock is not None
    torch = next(p for p in from_wheel.lock.pins if p.name == "torch")
    assert str(torch.version) == "2.13.0+cpu"
    assert not [p for p in from_wheel.lock.pins if p.name.startswith("nvidia-")]
