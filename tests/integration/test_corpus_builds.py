"""Real venv builds of a handful of corpus models (tests/corpus/), default flags: the
proof each reports. A model without an input example is predicted on a payload
synthesized from its signature; a model with one matches the predictions the generator
stored (MLflow 2.22 on Python 3.10); a copy whose model file is corrupt fails the build on
its load. The image's proof on a synthesized payload is test_image.py's (on a cached
dependency layer: a corpus image is a full build of minutes); the whole corpus goes
through `benchmarks/corpus.py --build`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import require_python, run_envbuild

MODELS = Path(__file__).resolve().parents[1] / "corpus" / "models"
NOEXAMPLE = "mlflow3.17.2-py3.12-sklearn-skops-noexample"


def _venv(model: Path, venv: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    done = run_envbuild("venv", str(model), "--path", str(venv), "--format", "json")
    doc = json.loads(done.stdout) if done.stdout.strip() else {}
    return done, doc


@pytest.fixture(scope="module")
def noexample_venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    require_python("3.12")
    tmp = tmp_path_factory.mktemp("corpus-venv")
    done, doc = _venv(MODELS / NOEXAMPLE, tmp / "v")
    return {"tmp": tmp, "venv": tmp / "v", "done": done, "doc": doc}


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_model_without_example_is_predicted_on_its_signature(
    noexample_venv: dict[str, object],
) -> None:
    done = noexample_venv["done"]
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = noexample_venv["doc"]
    assert isinstance(doc, dict)
    smoke = doc["result"]["smoke"]
    assert smoke["ok"] and smoke["proof"] == "predicted on a synthesized payload"
    assert smoke["input"] == "MLmodel" and not smoke["compared"] and smoke["refused"] is None
    assert smoke["synthesized"] == {
        "dataframe_split": {
            "columns": ["age", "income", "debt", "score"],
            "data": [[1, 1.0, 1.0, 1.0]],
        }
    }
    assert not [f for f in doc["findings"] if f["code"] == "EB806"]


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_corrupt_model_fails_the_build_on_its_load(noexample_venv: dict[str, object]) -> None:
    """The same folder with model.skops overwritten: the venv is reused (same environment
    files), the load fails in the sandbox, and that fails the build (EB802, exit 1), though
    the synthesized payload never got to be predicted on."""
    broken = Path(str(noexample_venv["tmp"])) / "broken" / NOEXAMPLE
    shutil.copytree(MODELS / NOEXAMPLE, broken)
    (broken / "model.skops").write_bytes(b"PK\x03\x04 not a zip")
    done = run_envbuild("venv", str(broken), "--path", str(noexample_venv["venv"]))
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "EB802" in done.stderr and "the model did not load in the venv" in done.stderr
    assert "smoke ok" not in done.stdout


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_model_with_example_matches_the_stored_predictions(tmp_path: Path) -> None:
    require_python("3.10")
    done, doc = _venv(MODELS / "mlflow2.22.5-py3.10-sklearn-cloudpickle", tmp_path / "v")
    assert done.returncode == 0, done.stderr[-2000:]
    smoke = doc["result"]["smoke"]  # type: ignore[index]
    assert smoke["proof"] == "matched stored predictions" and smoke["synthesized"] is None
    assert smoke["expected"] == "expected_predictions.json" and smoke["compared"]


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_made_up_values_the_model_refuses_leave_the_load_proven(
    noexample_venv: dict[str, object],
) -> None:
    """The signature altered to call `age` a string: the synthesized "a" passes MLflow's
    schema enforcement, the pipeline raises ValueError on it (a 500 about the values, not
    the environment), so the smoke passes on the load alone and says why (EB806). Run on
    the module's venv through smoke_venv: the same sandbox, no second install."""
    from envbuild.build import smoke_venv
    from envbuild.read import read_model

    altered = Path(str(noexample_venv["tmp"])) / "altered" / NOEXAMPLE
    shutil.copytree(MODELS / NOEXAMPLE, altered)
    mlmodel = altered / "MLmodel"
    text = mlmodel.read_text()
    age = '{"type": "long", "name": "age", "required": true}'
    assert age in text
    mlmodel.write_text(text.replace(age, age.replace("long", "string")))
    result = smoke_venv(Path(str(noexample_venv["venv"])), read_model(altered))
    assert result.ok and result.proof == "loaded"
    assert result.refused == (
        "HTTP 500: the model raised ValueError: could not convert string to float: 'a'"
    )
    finding = result.refusal_finding()
    assert finding is not None and finding.code == "EB806" and finding.severity == "warning"


@pytest.mark.venv
@pytest.mark.network
@pytest.mark.slow
def test_a_series_answer_matches_the_stored_values(tmp_path: Path) -> None:
    """statsmodels' predict answers an unnamed Series, which MLflow 2.9.2's server renders
    as one-column records ({"0": v}); the generator stored the values (predict on
    input_example.json). check says ok, so the build must prove it: it matches."""
    require_python("3.9")
    done, doc = _venv(MODELS / "mlflow2.9.2-py3.9-statsmodels", tmp_path / "v")
    assert done.returncode == 0, done.stderr[-2000:]
    smoke = doc["result"]["smoke"]  # type: ignore[index]
    assert smoke["proof"] == "matched stored predictions" and smoke["compared"]
    assert smoke["expected"] == "expected_predictions.json"
