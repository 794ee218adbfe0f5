"""The CLI contract: exit codes, stdout vs stderr, the JSON envelope against its schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from envbuild import __version__
from envbuild.cli import main
from tests.helpers import EXAMPLES, SCHEMAS

SCHEMA = json.loads((SCHEMAS / "envelope-v1.schema.json").read_text())
EXAMPLE = EXAMPLES / "sklearn-credit"


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for line in ("0  ok", "1  findings", "2  usage or input error", "3  environment error"):
        assert line in result.stdout


def test_show_text_on_stdout_nothing_on_stderr() -> None:
    result = CliRunner().invoke(main, ["show", str(EXAMPLE)])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "sklearn (scikit-learn " in result.stdout
    assert "requirements.txt:" in result.stdout
    assert "limit_bal: long" in result.stdout


def test_show_json_envelope_validates() -> None:
    result = CliRunner().invoke(main, ["show", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["command"] == "envbuild show"
    assert doc["envbuild_version"] == __version__
    assert doc["result"]["mlmodel"]["mlflow_version"]


def test_error_envelope_validates(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", str(tmp_path / "nope"), "--format", "json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["error"]["code"] == "EB100"
    assert doc["error"]["message"] == "no such file or folder"
    assert result.stderr.startswith("ERROR EB100 ")


def test_usage_error_is_exit_2() -> None:
    result = CliRunner().invoke(main, ["show", str(EXAMPLE), "--format", "xml"])
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr


def test_verbose_shows_traceback_only_when_asked(tmp_path: Path) -> None:
    quiet = CliRunner().invoke(main, ["show", str(tmp_path)])
    loud = CliRunner().invoke(main, ["show", str(tmp_path), "-v"])
    assert quiet.exit_code == loud.exit_code == 2
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr


@pytest.mark.parametrize("argv", [["-m", "envbuild"], ["-m", "envbuild.cli"]])
def test_python_dash_m(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv, "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"envbuild, version {__version__}"
