"""A TensorFlow SavedModel whose weights were left out of the copy (read/mlmodel.py):
variables/variables.index is there, variables.data-00000-of-00001 is not, and TensorFlow
cannot restore the model. check said ok on such a public folder (an MLflow 2.10.2
tensorflow model, save_format tf, saved from Keras; its 50 MB shard was not in the copy)
and the build could only fail at the load. The public folder is not in the project, so
this is the same form made here: its MLmodel fields as MLflow 2.10.2 writes them, the
SavedModel's files as TensorFlow lays them out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from envbuild.cli import main
from envbuild.errors import InputError
from envbuild.read import read_model

MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    data: data
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.tensorflow
    python_version: 3.10.8
  tensorflow:
    code: null
    data: data
    keras_version: 2.10.0
    model_type: keras
    save_format: tf
mlflow_version: 2.10.2
model_size_bytes: 54172625
utc_time_created: '2024-06-27 07:30:28.577716'
"""


def _saved_model(root: Path, shards: list[str]) -> Path:
    root.mkdir()
    (root / "MLmodel").write_text(MLMODEL)
    (root / "conda.yaml").write_text(
        "channels: [conda-forge]\ndependencies:\n- python=3.10.8\n- pip\n"
        "- pip: [mlflow==2.10.2, tensorflow==2.10.0]\nname: mlflow-env\n"
    )
    (root / "python_env.yaml").write_text(
        "python: 3.10.8\nbuild_dependencies: [pip]\ndependencies: [-r requirements.txt]\n"
    )
    (root / "requirements.txt").write_text("mlflow==2.10.2\ntensorflow==2.10.0\n")
    model = root / "data" / "model"
    (model / "variables").mkdir(parents=True)
    (root / "data" / "keras_module.txt").write_text("tensorflow.keras\n")
    (model / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    (model / "keras_metadata.pb").write_bytes(b"\x08\x01")
    (model / "variables" / "variables.index").write_bytes(b"\x00" * 32)
    for shard in shards:
        (model / "variables" / shard).write_bytes(b"\x00" * 64)
    return root


def test_a_saved_model_without_its_variables_data_is_refused(tmp_path: Path) -> None:
    folder = _saved_model(tmp_path / "ben", [])
    with pytest.raises(InputError) as caught:
        read_model(folder)
    found = [p for p in caught.value.problems if p.code == "EB103"]
    assert len(found) == 1
    assert found[0].location.field == "flavors.tensorflow.data"
    assert found[0].message == (
        "data/model/variables/variables.index is there but not "
        "variables.data-00000-of-00001: the SavedModel's weights are missing"
    )
    shown = CliRunner().invoke(main, ["show", str(folder), "--format", "json"])
    assert shown.exit_code == 2
    assert "EB103" in {f["code"] for f in json.loads(shown.stdout)["findings"]}


def test_a_missing_shard_of_several_is_named(tmp_path: Path) -> None:
    folder = _saved_model(
        tmp_path / "sharded", ["variables.data-00000-of-00003", "variables.data-00002-of-00003"]
    )
    with pytest.raises(InputError) as caught:
        read_model(folder)
    (found,) = [p for p in caught.value.problems if p.code == "EB103"]
    assert "not variables.data-00001-of-00003:" in found.message


def test_a_complete_saved_model_reads(tmp_path: Path) -> None:
    folder = _saved_model(tmp_path / "whole", ["variables.data-00000-of-00001"])
    model = read_model(folder)
    assert "tensorflow" in {f.name for f in model.mlmodel.flavors}
