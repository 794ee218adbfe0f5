"""envbuild check (resolved with uv against the index) on corpus models whose flavor loads
more than its own library, or records its version under another key: what the flavor's
pyfunc imports is never called unneeded (EB231), and nothing needed goes undeclared
(EB230)."""

from __future__ import annotations

import pytest

from envbuild import api
from tests.helpers import ROOT

CORPUS = ROOT / "tests" / "corpus" / "models"


@pytest.mark.network
@pytest.mark.parametrize(
    "name",
    [
        "mlflow3.17.2-py3.11-onnx",  # onnxruntime: what mlflow.onnx's pyfunc runs on
        "mlflow3.17.2-py3.12-tensorflow-keras",  # tensorflow-cpu provides tensorflow
        "mlflow3.17.2-py3.11-transformers",  # torch: the pipeline's engine
        "mlflow2.9.2-py3.9-xgboost-sklearn",  # scikit-learn: xgboost's sklearn API
        "mlflow3.17.2-py3.11-spark",  # pyspark from PyPI
    ],
)
def test_flavor_libraries_are_needed(name: str) -> None:
    report = api.check([CORPUS / name])
    (model,) = report.models
    codes = {f.code: f.message for f in model.findings}
    assert "EB231" not in codes, codes["EB231"]
    assert "EB230" not in codes, codes["EB230"]
    assert not model.failing(strict=False), [f.message for f in model.findings]
