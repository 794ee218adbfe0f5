"""scikit-learn<1.6 for xgboost and lightgbm pins whose scikit-learn API predates
scikit-learn 1.6's estimator tags (resolve/sklearn_api.py). Found on the corpus folder
mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files, as MLflow 2.9.2 wrote it and with its
environment files gone: the MLmodel gives xgboost==2.0.3 and (from model_class) a bare
scikit-learn; check said ok, the lock took scikit-learn 1.6.1 and the venv's load failed
with "'super' object has no attribute '__sklearn_tags__'"."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from envbuild.read import read_model
from envbuild.resolve import resolve, target_for
from envbuild.resolve.sklearn_api import sklearn_plan

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "models"
NO_ENV = CORPUS / "mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files"
LIGHTGBM = CORPUS / "mlflow2.9.2-py3.9-lightgbm"


def test_an_old_xgboost_with_a_bare_scikit_learn_keeps_scikit_learn_before_1_6() -> None:
    plan = sklearn_plan(read_model(NO_ENV).env.spec.requirements)
    assert [str(c.requirement) for c in plan.constraints] == ["scikit-learn<1.6"]
    (finding,) = plan.findings
    assert finding.code == "EB326"
    assert (finding.location.file, finding.location.field) == (
        "MLmodel",
        "flavors.xgboost.xgb_version",
    )
    assert finding.message.startswith("xgboost==2.0.3's scikit-learn API predates")


def _with_requirements(tmp_path: Path, source: Path, lightgbm: str, *, drop_sklearn: bool) -> Path:
    """A copy of ``source`` whose requirements.txt and conda.yaml pin ``lightgbm`` and,
    with ``drop_sklearn``, name no scikit-learn."""
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    for name in ("requirements.txt", "conda.yaml"):
        path = folder / name
        lines = []
        for line in path.read_text().splitlines():
            if "scikit-learn" in line and drop_sklearn:
                continue
            lines.append(re.sub(r"lightgbm==\S+", f"lightgbm=={lightgbm}", line))
        path.write_text("\n".join(lines) + "\n")
    return folder


def test_the_model_s_own_scikit_learn_pin_decides(tmp_path: Path) -> None:
    folder = _with_requirements(tmp_path, LIGHTGBM, "4.5.0", drop_sklearn=False)
    reqs = read_model(folder).env.spec.requirements
    assert any(r.name == "scikit-learn" and r.pinned_version for r in reqs)
    assert sklearn_plan(reqs).constraints == ()


def test_an_old_lightgbm_without_a_scikit_learn_pin_is_bounded(tmp_path: Path) -> None:
    folder = _with_requirements(tmp_path, LIGHTGBM, "4.5.0", drop_sklearn=True)
    reqs = read_model(folder).env.spec.requirements
    assert not any(r.name == "scikit-learn" for r in reqs)
    plan = sklearn_plan(reqs)
    assert [str(c.requirement) for c in plan.constraints] == ["scikit-learn<1.6"]
    assert "lightgbm==4.5.0" in plan.findings[0].message


def test_releases_that_support_the_tags_add_nothing(tmp_path: Path) -> None:
    folder = _with_requirements(tmp_path, LIGHTGBM, "4.6.0", drop_sklearn=True)
    assert sklearn_plan(read_model(folder).env.spec.requirements).constraints == ()


@pytest.mark.network
def test_the_lock_takes_a_scikit_learn_the_old_xgboost_loads_under() -> None:
    folder = read_model(NO_ENV)
    target, _ = target_for(folder)
    result = resolve(folder, target)
    assert result.lock is not None, [f.one_line() for f in result.findings]
    sklearn = result.lock.pin("scikit-learn")
    # before: 1.6.1, the last for Python 3.9, whose tags xgboost 2.0.3 lacks
    assert sklearn is not None and sklearn.version < Version("1.6"), sklearn
    assert "EB326" in {f.code for f in result.findings}
