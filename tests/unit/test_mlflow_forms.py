"""Models read as MLflow reads them (issue #14 causes 4, 8 and 9), on folders real MLflow
wrote (tests/corpus/models/) and one it writes here:

* models-from-code: MLflow records the author's absolute ``model_code_path`` and loads the
  file of that name inside the folder; a real escape (``..``, a symbolic link) stays EB104;
* signature params keyed ``dtype`` (MLflow 2.5-2.7), which MLflow still accepts;
* python_env.yaml named but missing (MLflow falls back to requirements.txt / conda.yaml),
  and no environment file at all (derived from the flavors, EB108);
* conda.yaml against requirements.txt: each disagreement (EB113) names both lines and the
  file followed; ``--env-from`` chooses;
* a pickle referencing the author's unshipped module: EB232 points at code_paths and never
  names a PyPI project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envbuild.cli import main
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Severity
from envbuild.infer.static import dependency_findings
from envbuild.read import EnvFrom, parse_params, read_model

MODELS = Path(__file__).resolve().parents[1] / "corpus" / "models"
FROM_CODE = [
    "mlflow2.22.5-py3.10-pyfunc-models-from-code",
    "mlflow3.17.2-py3.12-pyfunc-models-from-code",
    "mlflow3.17.2-py3.12-langchain-models-from-code",
]
DISAGREEING = MODELS / "mlflow2.9.2-py3.9-lightgbm-disagreeing-files"


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(MODELS / name, dst, symlinks=True)
    return dst


def _codes(args: list[str]) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    doc = json.loads(result.stdout)
    return result.exit_code, doc["findings"], doc["result"]


# --- cause 4: models-from-code -------------------------------------------------------


@pytest.mark.parametrize("name", FROM_CODE)
def test_models_from_code_reads_the_file_mlflow_loads(name: str) -> None:
    folder = read_model(MODELS / name)
    assert folder.mlmodel.pyfunc is not None
    recorded = folder.mlmodel.pyfunc.model_code_path_recorded
    assert recorded is not None and os.path.isabs(recorded)  # the author's path, by design
    loaded = folder.mlmodel.pyfunc.model_code_path
    assert loaded == Path(recorded).name and (folder.path / loaded).is_file()
    code, findings, _ = _codes(["show", str(MODELS / name)])
    assert code == 0 and not [f for f in findings if f["code"] == "EB104"], findings


def test_models_from_code_file_is_scanned_and_carried() -> None:
    """The loaded file is the model's code (scanned for imports) and is used (not EB410)."""
    from envbuild.contents import referenced
    from envbuild.infer import code_paths

    folder = read_model(MODELS / FROM_CODE[2])
    _, files = code_paths(folder)
    assert files == ["langchain_chain.py"]
    assert "langchain_chain.py" in referenced(folder)[0]


def test_models_from_code_missing_file_is_eb103(tmp_path: Path) -> None:
    folder = _copy(FROM_CODE[0], tmp_path)
    (folder / "from_code_model.py").unlink()
    with pytest.raises(ProblemsError) as info:
        read_model(folder)
    [problem] = info.value.problems
    assert problem.code == "EB103" and "from_code_model.py" in problem.message


def test_models_from_code_symlink_out_is_still_eb104(tmp_path: Path) -> None:
    folder = _copy(FROM_CODE[0], tmp_path)
    outside = tmp_path / "elsewhere.py"
    outside.write_text("x = 1\n")
    (folder / "from_code_model.py").unlink()
    (folder / "from_code_model.py").symlink_to(outside)
    with pytest.raises(ProblemsError) as info:
        read_model(folder)
    assert [p.code for p in info.value.problems] == ["EB104"]
    assert "symbolic link" in info.value.problems[0].message


def test_models_from_code_dotdot_is_still_eb104(tmp_path: Path) -> None:
    folder = _copy(FROM_CODE[0], tmp_path)
    text = (folder / "MLmodel").read_text()
    recorded = read_model(folder).mlmodel.pyfunc.model_code_path_recorded  # type: ignore[union-attr]
    (folder / "MLmodel").write_text(text.replace(str(recorded), "../from_code_model.py"))
    shutil.copy(folder / "from_code_model.py", tmp_path / "from_code_model.py")
    with pytest.raises(ProblemsError) as info:
        read_model(folder)
    assert [p.code for p in info.value.problems] == ["EB104"]


# --- cause 4: signature params keyed dtype -------------------------------------------


def test_params_keyed_dtype_as_mlflow_accepts() -> None:
    """MLflow's ParamSpec.from_json_dict accepts `dtype` or `type` (mlflow/types/schema.py)."""
    raw = json.dumps(
        [
            {"name": "temperature", "dtype": "double", "default": 0.5, "shape": None},
            {"name": "stop", "type": "string", "default": ["x"], "shape": [-1]},
        ]
    )
    params = parse_params(raw)
    assert [(p.name, p.type.kind.value, p.shape) for p in params] == [
        ("temperature", "double", None),
        ("stop", "string", (-1,)),
    ]


def test_params_keyed_dtype_in_a_real_mlmodel(tmp_path: Path) -> None:
    folder = _copy(FROM_CODE[0], tmp_path)
    text = (folder / "MLmodel").read_text()
    params = '\'[{"name": "k", "dtype": "long", "default": 3, "shape": null}]\''
    (folder / "MLmodel").write_text(text.replace("  params: null", f"  params: {params}"))
    signature = read_model(folder).mlmodel.signature
    assert signature is not None and [(p.name, p.default) for p in signature.params] == [("k", 3)]


# --- cause 4: missing environment files ----------------------------------------------


def test_python_env_named_but_missing_falls_back_like_mlflow() -> None:
    code, findings, result = _codes(
        ["show", str(MODELS / "mlflow2.22.5-py3.10-sklearn-cloudpickle-no-python-env")]
    )
    assert code == 0
    assert [(f["code"], f["severity"]) for f in findings] == [("EB103", "warning")]
    assert "python_env.yaml" in str(findings[0]["message"])
    assert result is not None
    env = result["environment"]
    assert env["followed"] == "requirements.txt" and env["python"] == "3.10.13"
    assert "scikit-learn==1.5.2" in [r["requirement"] for r in env["requirements"]]


def test_no_env_files_derives_from_the_flavors() -> None:
    folder = read_model(MODELS / "mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files")
    assert [(f.code, f.severity) for f in folder.findings] == [("EB108", Severity.WARNING)]
    assert "envbuild infer" in folder.findings[0].hint
    assert folder.env.followed == "MLmodel"
    assert [r.raw for r in folder.env.spec.requirements] == [
        "mlflow==2.9.2",
        "xgboost==2.0.3",
        "scikit-learn",  # model_class xgboost.sklearn.XGBClassifier needs it
    ]
    assert folder.python_version == "3.9.18"


# --- cause 8: disagreeing files ------------------------------------------------------


def test_disagreeing_files_are_reported_with_both_lines() -> None:
    folder = read_model(DISAGREEING)
    [finding] = [f for f in folder.findings if f.code == "EB113"]
    assert "requirements.txt:2 'lightgbm==3.3.5'" in finding.message
    assert "conda.yaml:8 'lightgbm==4.1.0'" in finding.message
    assert "follows conda.yaml" in finding.message and "lgb_version 4.1.0" in finding.message
    assert "Azure ML" in finding.hint and "--env-from" in finding.hint
    lightgbm = folder.env.spec.named()["lightgbm"]
    assert [r.raw for r in lightgbm] == ["lightgbm==4.1.0"]
    assert folder.python_version == "3.9.18"


def test_auto_switches_only_on_a_clear_contradiction(tmp_path: Path) -> None:
    """requirements.txt leaving lightgbm out (or naming it twice) is not a reason to leave
    MLflow's virtualenv path: each difference is still reported."""
    folder = _copy(DISAGREEING.name, tmp_path)
    req = folder / "requirements.txt"
    req.write_text(req.read_text().replace("lightgbm==3.3.5\n", ""))
    read = read_model(folder)
    assert read.env.followed == "python_env.yaml"
    [finding] = [f for f in read.findings if f.code == "EB113"]
    assert "python_env.yaml does not list lightgbm" in finding.message
    req.write_text(req.read_text() + "\nlightgbm==3.3.5\nlightgbm==4.1.0\n")
    assert read_model(folder).env.followed == "python_env.yaml"


def test_env_from_chooses_the_file() -> None:
    as_venv = read_model(DISAGREEING, env_from=EnvFrom.REQUIREMENTS)
    assert as_venv.env.followed == "python_env.yaml"
    assert [r.raw for r in as_venv.env.spec.named()["lightgbm"]] == ["lightgbm==3.3.5"]
    as_conda = read_model(DISAGREEING, env_from="conda")
    assert [r.raw for r in as_conda.env.spec.named()["lightgbm"]] == ["lightgbm==4.1.0"]
    with pytest.raises(InputError):
        read_model(DISAGREEING, env_from="pip")


def test_env_from_on_the_command_line() -> None:
    code, findings, result = _codes(["show", str(DISAGREEING), "--env-from", "requirements"])
    assert code == 0 and result is not None
    assert result["environment"]["followed"] == "python_env.yaml"
    assert any(f["code"] == "EB113" for f in findings)
    code, findings, _ = _codes(
        ["check", "--offline", str(DISAGREEING), "--env-from", "conda", "--strict"]
    )
    assert code == 1 and {"EB113", "EB300"} <= {f["code"] for f in findings}


def test_env_from_conda_without_conda_yaml_is_an_input_error() -> None:
    name = "mlflow2.22.5-py3.10-sklearn-cloudpickle"
    with pytest.raises(ProblemsError) as info:
        read_model(MODELS / "mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files", env_from="conda")
    assert info.value.problems[0].code == "EB100"
    assert read_model(MODELS / name, env_from="conda").env.followed == "conda.yaml"


# --- cause 9: an author's unshipped module -------------------------------------------

_SAVE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import mlflow.sklearn
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from pre_processor import Scale

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = Pipeline([("pre", Scale()), ("clf", LogisticRegression())]).fit(X, y)
    mlflow.sklearn.save_model(
        model, sys.argv[2], serialization_format="pickle",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    """
)
_MODULE = textwrap.dedent(
    """
    from sklearn.base import BaseEstimator, TransformerMixin

    class Scale(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            self.mean_ = X.mean(axis=0)
            return self

        def transform(self, X):
            return X - self.mean_
    """
)


@pytest.fixture(scope="module")
def unshipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model real MLflow saved whose pickle references ``pre_processor.Scale``, a module
    that was importable when it was saved and is gone now (not shipped with code_paths)."""
    pytest.importorskip("mlflow")
    base = tmp_path_factory.mktemp("unshipped")
    src = base / "src"
    src.mkdir()
    (src / "pre_processor.py").write_text(_MODULE)
    out = base / "model"
    done = subprocess.run(
        [sys.executable, "-c", _SAVE, str(src), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "MLFLOW_TRACKING_URI": (base / "mlruns").as_uri()},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(src)
    assert b"pre_processor" in (out / "model.pkl").read_bytes()
    return out


def test_unshipped_module_points_at_code_paths(unshipped: Path) -> None:
    """Offline (no resolved set to look at) a warning; the wording is the same."""
    findings = dependency_findings(read_model(unshipped))
    [finding] = [f for f in findings if f.code == "EB232"]
    assert finding.severity is Severity.WARNING and "offline" in finding.message
    assert finding.location.file == "model.pkl"
    assert "pre_processor.Scale" in finding.message and "code_paths" in finding.hint
    text = " ".join(f"{f.message} {f.hint}" for f in findings).lower()
    assert "pre-processor" not in text  # no PyPI name is guessed
    assert not [f for f in findings if f.code == "EB230"]


@pytest.mark.network
def test_unshipped_module_fails_check(unshipped: Path) -> None:
    """Resolved, nothing provides pre_processor: the pickle cannot load, an error."""
    code, findings, _ = _codes(["check", str(unshipped)])
    assert code == 1
    assert [f["code"] for f in findings if f["severity"] == "error"] == ["EB232"]
    assert "pre-processor" not in json.dumps(findings).lower()


def test_shipped_module_is_not_reported(unshipped: Path, tmp_path: Path) -> None:
    """The same pickle with pre_processor shipped under code/ (as code_paths does)."""
    folder = tmp_path / "model"
    shutil.copytree(unshipped, folder)
    (folder / "code").mkdir()
    (folder / "code" / "pre_processor.py").write_text(_MODULE)
    findings = dependency_findings(read_model(folder))
    assert not [f for f in findings if f.code in ("EB230", "EB232")], findings


def test_a_known_library_still_gets_its_name(unshipped: Path, tmp_path: Path) -> None:
    """A module the name tables know (sklearn -> scikit-learn) keeps EB230's suggestion."""
    folder = tmp_path / "model"
    shutil.copytree(unshipped, folder)
    (folder / "requirements.txt").write_text("numpy\n")
    (folder / "python_env.yaml").unlink()
    (folder / "conda.yaml").unlink()
    (folder / "code").mkdir()
    (folder / "code" / "pre_processor.py").write_text(_MODULE)
    findings = dependency_findings(read_model(folder))
    [finding] = [f for f in findings if f.code == "EB230"]
    assert "scikit-learn" in finding.hint


@pytest.mark.network
@pytest.mark.parametrize(("env_from", "pin"), [("requirements", "3.3.5"), ("auto", "4.1.0")])
def test_env_from_reaches_the_lock(env_from: str, pin: str) -> None:
    """lock resolves what the chosen file says (the same option on image, venv, infer)."""
    result = CliRunner().invoke(
        main, ["lock", str(DISAGREEING), "--env-from", env_from, "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert f"lightgbm=={pin} \\" in result.stdout.splitlines()


REPO_ROOT = MODELS / "mlflow3.17.2-py3.12-sklearn-skops-repo-root"


def test_a_repository_root_with_one_model_below_reads_that_model() -> None:
    """The corpus's repository-root folder (a notebook, a CI workflow, a secrets file, the
    model under outputs/model/) given as its root: the corpus build run failed it with
    EB100 in check, image and venv. The one model below is read, with EB114 saying so."""
    folder = read_model(REPO_ROOT)
    assert folder.path == REPO_ROOT / "outputs" / "model"
    (found,) = [f for f in folder.findings if f.code == "EB114"]
    assert found.severity is Severity.WARNING
    assert found.location.file == "outputs/model/MLmodel"
    assert "nothing else of" in found.message and str(folder.path) in found.hint
    result = CliRunner().invoke(main, ["show", str(REPO_ROOT), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "credentials.env" not in result.stdout  # the root's other files are not read


def test_two_models_below_a_folder_are_named_not_guessed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for name in ("a", "deep/er/b"):
        shutil.copytree(REPO_ROOT / "outputs" / "model", root / name)
    shutil.copytree(REPO_ROOT / "outputs" / "model", root / ".hidden" / "c")  # not searched
    with pytest.raises(InputError) as raised:
        read_model(root)
    assert raised.value.code == "EB100"
    assert (
        raised.value.hint
        == f"pass one of the model folders below it: {root / 'a'}, {root / 'deep/er/b'}"
    )


def test_venv_refuses_a_git_lfs_pointer_before_making_the_venv(tmp_path: Path) -> None:
    """As `envbuild image` does (EB107): the corpus build run made this model's venv, then
    failed its load with EB802."""
    target = tmp_path / "venv"
    model = MODELS / "mlflow1.30.1-py3.8-sklearn-pickle-lfs-pointer"
    result = CliRunner().invoke(main, ["venv", str(model), "--path", str(target)])
    assert result.exit_code == 1, result.output
    assert "EB107 model.pkl: a Git LFS pointer" in result.output
    assert "git lfs pull" in result.output and not target.exists()
