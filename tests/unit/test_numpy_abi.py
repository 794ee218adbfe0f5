"""numpy<2 for pins built against numpy 1 (resolve/numpy_abi.py). Found on a public MLflow
2.1.1 model whose requirements pin scikit-learn==1.2.1 and name no numpy: check said ok,
the venv resolved numpy 2.2.6 and the load failed with "numpy.dtype size changed". The
public folder is not in the project, so the same form is made from the corpus folder
mlflow2.9.2-py3.9-sklearn-pickle (scikit-learn==1.3.2, also built against numpy 1) with
its numpy pin dropped, as MLflow before 2.x's numpy inference left it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envbuild.read import read_model
from envbuild.resolve import resolve, target_for
from envbuild.resolve.numpy_abi import numpy_plan

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "models"
SKLEARN = CORPUS / "mlflow2.9.2-py3.9-sklearn-pickle"


def _without_numpy(tmp_path: Path) -> Path:
    folder = tmp_path / SKLEARN.name
    shutil.copytree(SKLEARN, folder)
    for name in ("requirements.txt", "conda.yaml"):
        path = folder / name
        lines = path.read_text().splitlines()
        kept = [line for line in lines if "numpy" not in line]
        assert len(kept) == len(lines) - 1, name
        path.write_text("\n".join(kept) + "\n")
    return folder


def test_an_old_compiled_pin_without_numpy_keeps_numpy_1(tmp_path: Path) -> None:
    folder = read_model(_without_numpy(tmp_path))
    plan = numpy_plan(folder.env.spec.requirements)
    assert [str(c.requirement) for c in plan.constraints] == ["numpy<2"]
    (finding,) = plan.findings
    assert finding.code == "EB323" and finding.location.file == "requirements.txt"
    assert finding.message.startswith(
        "scikit-learn==1.3.2 was built against numpy 1 (numpy 2 from scikit-learn 1.4.2)"
    )


def test_the_model_s_own_numpy_pin_is_left_alone() -> None:
    folder = read_model(SKLEARN)  # numpy==1.26.4 as MLflow 2.9.2 wrote it
    assert numpy_plan(folder.env.spec.requirements).constraints == ()


def test_pins_that_support_numpy_2_add_nothing(tmp_path: Path) -> None:
    folder = _without_numpy(tmp_path)
    for name in ("requirements.txt", "conda.yaml"):
        path = folder / name
        path.write_text(path.read_text().replace("scikit-learn==1.3.2", "scikit-learn==1.5.2"))
    assert numpy_plan(read_model(folder).env.spec.requirements).constraints == ()


@pytest.mark.network
def test_the_lock_takes_numpy_1(tmp_path: Path) -> None:
    folder = read_model(_without_numpy(tmp_path))
    target, _ = target_for(folder)
    result = resolve(folder, target)
    assert result.lock is not None, [f.one_line() for f in result.findings]
    numpy = result.lock.pin("numpy")
    assert numpy is not None and numpy.version.major == 1, numpy
    assert "EB323" in {f.code for f in result.findings}
