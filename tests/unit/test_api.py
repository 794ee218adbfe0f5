"""The library API: the top-level names, and each function returns what its command
prints as JSON (README's example runs in tests/integration/test_readme.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import envbuild
from envbuild import api

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_names_are_the_api() -> None:
    assert envbuild.show is api.show and envbuild.check is api.check
    assert set(envbuild.__all__) == {"__version__", "check", "infer", "lock", "show"}
    with pytest.raises(AttributeError):
        envbuild.nothing_here  # noqa: B018


def test_show_result_is_the_json_envelope_result(tmp_path: Path) -> None:
    model = ROOT / "examples" / "sklearn-credit"
    result = api.show(model)
    done = subprocess.run(
        [sys.executable, "-m", "envbuild", "show", str(model), "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == result.exit_code == 0
    assert json.loads(json.dumps(result.to_json())) == doc["result"]
