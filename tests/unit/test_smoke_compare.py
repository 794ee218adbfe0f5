"""The smoke test's comparison of the server's answer with expected_predictions.json
(envbuild/build/smoke.py), on the real corpus folder whose model answers a pandas Series:
MLflow's scoring server renders a Series as one-column records (``pd.DataFrame(series)
.to_dict(orient="records")``, mlflow.utils.proto_json_utils._get_jsonable_obj), while a
file written from ``model.predict`` holds its values. Found by `benchmarks/corpus.py
--build --no-image --only mlflow2.9.2-py3.9-statsmodels`: check said ok, the venv's smoke
failed on `predictions[0]: expected 9.98..., got {'0': 9.98...}`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from envbuild.build import smoke_case
from envbuild.build.smoke import check_response, compare
from envbuild.read import read_model

STATSMODELS = (
    Path(__file__).resolve().parents[1] / "corpus" / "models" / ("mlflow2.9.2-py3.9-statsmodels")
)


def _served(predictions: pd.Series) -> bytes:
    """The body MLflow's server answers for a Series (its _get_jsonable_obj)."""
    records = pd.DataFrame(predictions).to_dict(orient="records")
    return json.dumps({"predictions": records}).encode()


def test_a_series_served_as_one_column_records_matches_its_stored_values() -> None:
    case = smoke_case(read_model(STATSMODELS))
    assert case is not None and case.expected_file == "expected_predictions.json"
    assert all(isinstance(v, float) for v in case.expected)
    # the statsmodels model's predict returns an unnamed Series: column "0" once served
    body = _served(pd.Series(case.expected))
    assert b'{"0": ' in body
    ok, _, message = check_response(case, 200, body)
    assert ok, message
    assert message == "predictions match expected_predictions.json"


def test_one_column_records_with_other_values_still_differ() -> None:
    case = smoke_case(read_model(STATSMODELS))
    assert case is not None
    off = [v + 1.0 for v in case.expected]
    ok, _, message = check_response(case, 200, _served(pd.Series(off)))
    assert not ok
    assert message.startswith("predictions differ from expected_predictions.json: predictions[0]")


def test_only_one_column_records_are_taken_for_values() -> None:
    assert compare([1.0, 2.0], [{"0": 1.0}, {"0": 2.0}]) is None
    assert compare([1.0, 2.0], [{"y": 1.0}, {"y": 2.0}]) is None
    # two columns, or a key that changes from row to row, are not a Series
    assert compare([1.0, 2.0], [{"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}]) is not None
    assert compare([1.0, 2.0], [{"a": 1.0}, {"b": 2.0}]) is not None
    # stored records still compare key by key
    assert compare([{"0": 1.0}], [{"0": 1.0}]) is None
    assert compare([{"a": 1.0}], [{"b": 1.0}]) is not None
