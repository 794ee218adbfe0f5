"""A derived environment (no environment files, EB108) is resolved against the index as of
the model's save date (resolve/as_of.py). Found on a public MLflow 2.20.3 xgboost folder
saved 2025-03-11 without environment files: check said ok, the venv locked scikit-learn
1.9.1 and xgboost 2.1.4's XGBRegressor failed to load ("`_estimator_type` undefined");
as of its save date it locks scikit-learn 1.6.1 and predicts. The public folder is not in
the project: the same form is the corpus folder mlflow2.9.2-py3.9-xgboost-sklearn-no-env-
files, here with an older save date so the date is what changes the lock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from envbuild.read import read_model
from envbuild.resolve import resolve, target_for
from envbuild.resolve.as_of import derived_as_of, saved_at

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "models"
NO_ENV = CORPUS / "mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files"
WITH_ENV = CORPUS / "mlflow2.9.2-py3.9-xgboost-sklearn"


def _saved_on(tmp_path: Path, when: str) -> Path:
    folder = tmp_path / NO_ENV.name
    shutil.copytree(NO_ENV, folder)
    mlmodel = folder / "MLmodel"
    lines = mlmodel.read_text().splitlines()
    dated = [
        f"utc_time_created: '{when}'" if x.startswith("utc_time_created:") else x for x in lines
    ]
    assert dated != lines
    mlmodel.write_text("\n".join(dated) + "\n")
    return folder


def test_the_save_date_is_read_as_utc(tmp_path: Path) -> None:
    folder = read_model(_saved_on(tmp_path, "2024-01-15 09:30:00.123456"))
    assert saved_at(folder) == "2024-01-15T09:30:00Z"
    when, finding = derived_as_of(folder)
    assert when == "2024-01-15T09:30:00Z"
    assert finding is not None and finding.code == "EB324"
    assert finding.location.field == "utc_time_created"


def test_environment_files_decide() -> None:
    assert derived_as_of(read_model(WITH_ENV)) == (None, None)


@pytest.mark.network
def test_a_derived_environment_locks_the_releases_of_its_day(tmp_path: Path) -> None:
    folder = read_model(_saved_on(tmp_path, "2024-01-15 09:30:00.123456"))
    target, _ = target_for(folder)
    result = resolve(folder, target)
    assert result.lock is not None, [f.one_line() for f in result.findings]
    sklearn = result.lock.pin("scikit-learn")
    # scikit-learn 1.4.0 came out on 2024-01-18; today's for Python 3.9 is 1.6.1
    assert sklearn is not None and sklearn.version < Version("1.4"), sklearn
    assert "# index as of: 2024-01-15T09:30:00Z" in result.lock.text
    assert "EB324" in {f.code for f in result.findings}
