"""The library API: the top-level names, and each function returns what its command
prints as JSON (README's example runs in tests/integration/test_readme.py)."""

from __future__ import annotations

import json
from pathlib import Path

from envbuild import api
from tests.helpers import EXAMPLES, run_envbuild


def test_api_names() -> None:
    assert set(api.__all__) >= {"check", "infer", "lock", "show"}
    assert all(callable(getattr(api, n)) for n in ("check", "infer", "lock", "show"))


def test_show_result_is_the_json_envelope_result(tmp_path: Path) -> None:
    model = EXAMPLES / "sklearn-credit"
    result = api.show(model)
    done = run_envbuild("show", model, "--format", "json")
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == result.exit_code == 0
    assert json.loads(json.dumps(result.to_json())) == doc["result"]
