"""Each broken copy of an example gives its documented error, exit code and location,
through the CLI: one line per problem on stderr, no traceback, JSON envelope on stdout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from envbuild.cli import main
from tests.helpers import DATA

BROKEN = DATA / "broken"

# case -> (exit code, [(code, file, line, field), ...]) in the order reported
CASES: dict[str, tuple[int, list[tuple[str, str, int | None, str | None]]]] = {
    "invalid-yaml": (2, [("EB101", "MLmodel", 4, None)]),
    "no-mlmodel": (2, [("EB100", "MLmodel", None, None)]),
    "missing-data": (
        2,
        [
            ("EB103", "MLmodel", 7, "flavors.python_function.model_path"),
            ("EB103", "MLmodel", 12, "flavors.sklearn.pickled_model"),
        ],
    ),
    "bad-requirement": (2, [("EB110", "requirements.txt", 4, None)]),
    "escape-dotdot": (2, [("EB104", "MLmodel", 7, "flavors.python_function.model_path")]),
    "escape-absolute": (2, [("EB104", "MLmodel", 7, "flavors.python_function.model_path")]),
    "escape-symlink": (
        2,
        [
            ("EB104", "MLmodel", 7, "flavors.python_function.model_path"),
            ("EB104", "MLmodel", 12, "flavors.sklearn.pickled_model"),
        ],
    ),
    "example-mismatch": (
        1,
        [("EB120", "input_example.json", None, None), ("EB120", "input_example.json", None, None)],
    ),
    "bad-signature": (2, [("EB105", "MLmodel", 28, "signature.inputs")]),
    "bad-conda-yaml": (2, [("EB101", "conda.yaml", 4, None)]),
    "many-problems": (
        2,
        [
            ("EB103", "MLmodel", 7, "flavors.python_function.model_path"),
            ("EB103", "MLmodel", 12, "flavors.sklearn.pickled_model"),
            ("EB110", "requirements.txt", 2, None),
            ("EB104", "MLmodel", 23, "saved_input_example_info.artifact_path"),
        ],
    ),
}


def test_every_case_is_covered() -> None:
    on_disk = {p.name for p in BROKEN.iterdir() if p.is_dir()}
    assert on_disk == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_case_json(case: str) -> None:
    exit_code, expected = CASES[case]
    result = CliRunner().invoke(main, ["show", str(BROKEN / case), "--format", "json"])
    assert result.exit_code == exit_code, result.output
    doc = json.loads(result.stdout)
    got = [(f["code"], f["file"], f["line"], f["field"]) for f in doc["findings"]]
    assert got == expected
    assert doc["ok"] is False and doc["exit_code"] == exit_code
    if exit_code == 2:
        assert doc["result"] is None and doc["error"]["code"] == expected[0][0]
    else:
        assert doc["result"]["path"].endswith(case) and doc["error"] is None


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_case_text(case: str) -> None:
    exit_code, expected = CASES[case]
    result = CliRunner().invoke(main, ["show", str(BROKEN / case)])
    assert result.exit_code == exit_code
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR ")]
    tips = [line for line in result.stderr.splitlines() if line.startswith("  TIP ")]
    assert len(errors) == len(expected) == len(tips)
    for line, (code, file, lineno, _field) in zip(errors, expected, strict=True):
        assert line.startswith(f"ERROR {code} {file}" + (f":{lineno}" if lineno else ""))
    if exit_code == 2:
        assert result.stdout == ""
