"""The model corpus (tests/corpus/): the manifest matches the folders, and `envbuild show`,
`check` and `lock` go over every folder without a traceback, saying the same thing.

What is asserted is what must hold whatever envbuild's verdicts are: `show` reads every
folder; `check` (one run over the whole corpus) reports every model with declared codes
only, refuses each model the manifest calls not servable, and refuses on its input
exactly the folders `show` cannot read; `lock` (once per distinct environment) fails
exactly where `check` found a resolution error. Whether envbuild serves each servable
model is measured by benchmarks/corpus.py --build and, for a handful, by
tests/integration/test_corpus_builds.py. The exit code and the finding codes `show` gave
are recorded in each test's id, so a change shows up in `pytest -v`."""

from __future__ import annotations

import contextlib
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envbuild.cli import main
from envbuild.codes import all_codes
from tests.helpers import run_envbuild

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


@pytest.fixture(scope="module")
def checked() -> dict[str, dict[str, Any]]:
    """`envbuild check` over the whole corpus in one run: each model's report by name."""
    done = run_envbuild(
        "check", *(MODELS / e["name"] for e in ENTRIES), "-j", "12", "-q", "--format", "json"
    )  # -j 12: each model waits mostly on uv and the index (73 models: 70 s, 106 s with -j 4)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == done.returncode and done.returncode in (0, 1, 2)
    return {Path(m["model"]).name: m for m in doc["result"]["models"]}


def _errors(report: dict[str, Any], prefix: str = "EB") -> set[str]:
    return {
        f["code"]
        for f in report["findings"]
        if f["severity"] in ("error", "unsafe") and f["code"].startswith(prefix)
    }


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_check_judges_every_model(entry: dict[str, Any], checked: dict[str, Any]) -> None:
    report = checked[entry["name"]]
    assert {f["code"] for f in report["findings"]} <= set(all_codes())
    if not entry["servable"]:  # a correct tool must refuse it, and check does
        assert not report["ok"] and _errors(report), report
    # an input error is a folder show cannot read either (show's exit 2)
    assert report["input_error"] == (SHOWN[entry["name"]][0] == 2)
    if report["ok"]:
        assert not _errors(report)


def _environment(entry: dict[str, Any]) -> str:
    """What a lock depends on: the environment files, MLflow's version and the Python."""
    folder = MODELS / entry["name"] / entry["model_dir"]
    h = hashlib.sha256(f"{entry['mlflow_version']} {entry['python']}".encode())
    for name in ("requirements.txt", "conda.yaml", "python_env.yaml"):
        path = folder / name
        h.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()


@pytest.mark.network
@pytest.mark.slow
def test_lock_fails_exactly_where_check_found_a_resolution_error(
    checked: dict[str, Any],
) -> None:
    """`lock --dry-run` once per distinct environment of the models check could read: it
    fails (exit 1, the same EB3xx errors) where check's resolution did, and only there."""
    first: dict[str, dict[str, Any]] = {}
    for entry in ENTRIES:
        if not checked[entry["name"]]["input_error"]:
            first.setdefault(_environment(entry), entry)
    assert len(first) >= 20  # the corpus's groups and variants, not a handful

    def lock(entry: dict[str, Any]) -> tuple[str, int, set[str], str]:
        done = run_envbuild(
            "lock", MODELS / entry["name"] / entry["model_dir"], "--dry-run", "-q",
            "--format", "json",
        )  # fmt: skip
        doc = json.loads(done.stdout)
        return entry["name"], done.returncode, _errors(doc, "EB3"), done.stderr

    with ThreadPoolExecutor(8) as pool:  # each lock waits mostly on uv and the index
        results = list(pool.map(lock, first.values()))
    for name, code, errors, stderr in results:
        assert "Traceback" not in stderr, stderr[-3000:]
        expected = _errors(checked[name], "EB3")
        assert (name, errors) == (name, expected)
        assert code == (1 if expected else 0), (name, code, stderr[-1000:])
