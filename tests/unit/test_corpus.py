"""The model corpus (tests/corpus/): the manifest matches the folders, and `envbuild show`
reads every folder without a traceback.

Reading is all that is asserted here: whether envbuild handles each model correctly is
issue #14's later work (benchmarks/corpus.py measures it). The exit code and the finding
codes `show` gave are recorded in each test's id, so a change shows up in `pytest -v`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envbuild.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MODELS = CORPUS / "models"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["models"]
VARIANTS = {
    "none",
    "no-input-example",
    "bare-mlflow",
    "disagreeing-files",
    "no-python-env",
    "lfs-pointer",
    "repo-root",
    "torch-unpinned",
    "no-env-files",
}
FIELDS = {
    "name",
    "flavor",
    "mlflow_version",
    "python",
    "variant",
    "has_input_example",
    "servable",
    "why",
    "model_dir",
    "derived_from",
    "group",
}


def _show(name: str) -> tuple[int, str, list[str], str]:
    """exit code, output, finding codes and the exception (if not SystemExit) of `show`."""
    result = CliRunner().invoke(main, ["show", str(MODELS / name), "--format", "json"])
    codes: list[str] = []
    with contextlib.suppress(ValueError, KeyError, TypeError):
        codes = sorted({f["code"] for f in json.loads(result.stdout)["findings"]})
    exc = result.exception
    raised = "" if exc is None or isinstance(exc, SystemExit) else repr(exc)
    return result.exit_code, result.stdout + result.stderr, codes, raised


# Run once at collection so that what `show` said is part of each test's id.
SHOWN = {e["name"]: _show(e["name"]) for e in ENTRIES}


def _id(entry: dict[str, Any]) -> str:
    code, _, codes, _ = SHOWN[entry["name"]]
    return f"{entry['name']}:exit{code}:{'+'.join(codes) or 'none'}"


def test_manifest_lists_every_folder() -> None:
    names = [e["name"] for e in ENTRIES]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(
        p.name for p in MODELS.iterdir() if p.is_dir() and not p.name.startswith(".")
    )


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_entry_is_consistent(entry: dict[str, Any]) -> None:
    assert set(entry) == FIELDS
    assert entry["variant"] in VARIANTS
    assert isinstance(entry["servable"], bool) and entry["why"]
    root = MODELS / entry["name"]
    model = root / entry["model_dir"]
    mlmodel = (model / "MLmodel").read_text(encoding="utf-8")
    assert f"mlflow_version: {entry['mlflow_version']}" in mlmodel
    assert entry["name"].startswith(f"mlflow{entry['mlflow_version']}-py{entry['python']}-")
    has_example = (model / "input_example.json").is_file()
    assert has_example == entry["has_input_example"]
    assert ("saved_input_example_info:" in mlmodel) == has_example
    assert (model / "expected_predictions.json").is_file() == has_example
    if has_example:
        expected = json.loads((model / "expected_predictions.json").read_text())
        assert (model / expected["input"]).is_file() and expected["predictions"]
    if entry["derived_from"] is not None:
        assert entry["derived_from"] in SHOWN
    assert not list(root.rglob("__pycache__"))


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_show_reads_without_traceback(entry: dict[str, Any]) -> None:
    code, out, _, raised = SHOWN[entry["name"]]
    assert raised == ""
    assert "Traceback" not in out
    assert code in (0, 1, 2)


def test_corpus_stays_small() -> None:
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 15 * 1024 * 1024
