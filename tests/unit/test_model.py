"""envbuild show reads every example and every model folder written by MLflow 2.x and 3.x,
and its JSON matches the files (checked against a plain YAML/JSON read of the same files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from envbuild.cli import main
from envbuild.read import FLAVOR_LIBRARIES, read_model
from tests.helpers import DATA, EXAMPLES

FOLDERS = sorted(
    [p.parent for p in EXAMPLES.glob("*/MLmodel")]
    + [p.parent for p in (DATA / "models").glob("*/MLmodel")]
)
IDS = [f"{p.parent.name}/{p.name}" for p in FOLDERS]


def test_corpus_is_complete() -> None:
    names = {p.name for p in FOLDERS}
    assert {"sklearn-credit", "pyfunc-custom", "pytorch-tensor", "fastai-legacy"} <= names
    for major in ("mlflow2", "mlflow3"):
        for flavor in ("sklearn", "pyfunc", "pytorch", "xgboost", "lightgbm"):
            assert f"{major}-{flavor}" in names


def _show(folder: Path) -> dict:
    result = CliRunner().invoke(main, ["show", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["findings"] == []
    return doc["result"]


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_show_matches_files(folder: Path) -> None:
    raw = yaml.safe_load((folder / "MLmodel").read_text())
    got = _show(folder)
    m = got["mlmodel"]
    for key in (
        "run_id",
        "model_uuid",
        "mlflow_version",
        "utc_time_created",
        "artifact_path",
        "model_id",
    ):
        assert m[key] == (str(raw[key]) if raw.get(key) is not None else None), key
    assert m["model_size_bytes"] == raw.get("model_size_bytes")
    assert [f["name"] for f in got["flavors"]] == list(raw["flavors"])
    for flavor in got["flavors"]:
        params = raw["flavors"][flavor["name"]]
        if flavor["name"] in FLAVOR_LIBRARIES:
            field, library = FLAVOR_LIBRARIES[flavor["name"]]
            assert flavor["library"] == library
            assert flavor["version"] == (
                str(params[field]) if params.get(field) is not None else None
            )
    pyfunc = raw["flavors"]["python_function"]
    assert got["python_function"]["loader_module"] == pyfunc.get("loader_module")
    assert got["python_function"]["python_version"] == str(pyfunc["python_version"])
    env = pyfunc.get("env")
    if isinstance(env, str):
        assert got["python_function"]["env"] == {"conda": env, "virtualenv": None, "legacy": True}
    else:
        assert got["python_function"]["env"]["conda"] == env["conda"]
        assert got["python_function"]["env"]["virtualenv"] == env["virtualenv"]
    # signature: same column names / tensor shapes as the JSON strings in the YAML
    sig = raw.get("signature")
    if sig and sig.get("inputs"):
        inputs = json.loads(sig["inputs"])
        shown = got["signature"]["inputs"]
        if inputs[0]["type"] == "tensor":
            assert [t["shape"] for t in shown["tensors"]] == [
                i["tensor-spec"]["shape"] for i in inputs
            ]
            assert [t["dtype"] for t in shown["tensors"]] == [
                i["tensor-spec"]["dtype"] for i in inputs
            ]
        else:
            assert [c["name"] for c in shown["columns"]] == [i.get("name") for i in inputs]
            assert [c["type"] for c in shown["columns"]] == [i["type"] for i in inputs]
    if sig and sig.get("params"):
        assert [p["name"] for p in got["signature"]["params"]] == [
            p["name"] for p in json.loads(sig["params"])
        ]
    # requirements: the pip path MLflow itself would install, each with its file and line
    req_file = folder / "requirements.txt"
    if req_file.exists():
        lines = [
            (n, line.strip())
            for n, line in enumerate(req_file.read_text().splitlines(), start=1)
            if line.strip() and not line.startswith(("#", "-"))
        ]
        shown = [
            (r["line"], r["requirement"])
            for r in got["environment"]["requirements"]
            if r["file"] == "requirements.txt"
        ]
        assert shown == lines
    # python version: python_env.yaml first, as MLflow's virtualenv path does
    pe = folder / "python_env.yaml"
    if pe.exists():
        assert got["python_version"] == str(yaml.safe_load(pe.read_text())["python"])
    info = raw.get("saved_input_example_info")
    if info:
        ex = got["input_example"]
        assert ex["file"] == info["artifact_path"]
        assert ex["data"] == json.loads((folder / info["artifact_path"]).read_text())


def test_fastai_legacy_fields() -> None:
    folder = read_model(EXAMPLES / "fastai-legacy")
    pyfunc = folder.mlmodel.pyfunc
    assert pyfunc is not None and pyfunc.env_legacy and pyfunc.env_conda == "conda.yaml"
    assert pyfunc.python_version == "3.8.12" and folder.python_version == "3.8.12"
    fastai = folder.mlmodel.flavor("fastai")
    assert fastai is not None and fastai.library == "fastai" and fastai.version == "2.4.1"
    sig = folder.mlmodel.signature
    assert sig is not None and sig.inputs is not None and sig.outputs is not None
    assert [(t.dtype, t.shape) for t in sig.inputs.tensors] == [("uint8", (-1, 300, 300, 3))]
    assert [(t.dtype, t.shape) for t in sig.outputs.tensors] == [("float32", (-1, 2))]
    names = [r.name for r in folder.env.spec.requirements]
    assert "fastai" in names and "mlflow" in names
    assert folder.env.spec.channels == ("conda-forge",)


def test_unknown_fields_are_kept(tmp_path: Path, copy_model) -> None:
    folder = copy_model("sklearn-credit")
    text = (folder / "MLmodel").read_text()
    (folder / "MLmodel").write_text(text + "future_field:\n  nested: 1\n")
    model = read_model(folder)
    assert model.mlmodel.extra["future_field"] == {"nested": 1}


def test_example_params_checked_against_signature(copy_model) -> None:
    folder = copy_model("pyfunc-custom")
    example = json.loads((folder / "input_example.json").read_text())
    example["params"] = {"threshold": "high", "unknown": 1}
    (folder / "input_example.json").write_text(json.dumps(example))
    findings = read_model(folder).findings
    assert [(f.code, f.location.file) for f in findings] == [
        ("EB120", "input_example.json"),
        ("EB120", "input_example.json"),
    ]
    assert "param 'threshold' is double" in findings[0].message
    assert "param 'unknown'" in findings[1].message


def test_mlmodel_python_version_as_yaml_float(copy_model) -> None:
    folder = copy_model("sklearn-credit")
    text = (
        (folder / "MLmodel").read_text().replace("python_version: 3.11.7", "python_version: 3.10")
    )
    (folder / "MLmodel").write_text(text)
    (folder / "python_env.yaml").write_text("python: 3.10\ndependencies:\n- -r requirements.txt\n")
    (folder / "conda.yaml").write_text(
        (folder / "conda.yaml").read_text().replace("python=3.11.7", "python=3.10")
    )
    model = read_model(folder)
    assert model.mlmodel.pyfunc is not None and model.mlmodel.pyfunc.python_version == "3.10"
    assert [p.version for p in model.env.spec.python_pins] == ["3.10", "3.10", "3.10"]
