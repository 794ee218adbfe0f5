"""The flavor table (envbuild/flavors.py) against the installed MLflow's own flavor modules,
read by their syntax trees (nothing of MLflow is imported): every flavor MLflow can save
has a row, the row's loader and version key are what MLflow writes, and the distributions
MLflow's default requirements name are the row's (or say why loading does not need them).
Then what the table makes of real MLmodel files of the corpus."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from envbuild import api
from envbuild.flavors import FLAVORS, SYSTEM_PACKAGES, needs, recorded_version
from envbuild.infer.names import PROVIDES, PYFUNC_RUNTIME
from envbuild.read import read_model
from tests.helpers import ROOT

_spec = importlib.util.find_spec("mlflow")
assert _spec is not None and _spec.origin, "the dev environment installs mlflow ('.[mlflow]')"
MLFLOW = Path(_spec.origin).parent
CORPUS = ROOT / "tests" / "corpus" / "models"
SAVERS = ("save_model", "save_explainer")
# keys ending in _version that flavors write for something other than a library
NOT_LIBRARY_VERSIONS = frozenset({"python_version", "api_version"})
# a module without one of these words holds nothing the scan reads
_WORDS = ("FLAVOR_NAME", "add_flavor", "add_to_model", "def get_default_pip", *SAVERS)


@dataclass(frozen=True)
class MlflowFlavor:
    package: str  # mlflow.<package>
    name: str  # FLAVOR_NAME
    loaders: frozenset[str]  # loader_module= values passed to pyfunc.add_to_model
    version_keys: frozenset[str]  # *_version keys passed to add_flavor
    defaults: frozenset[str]  # distributions get_default_pip_requirements names


def _flavor_name(tree: ast.Module) -> str | None:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "FLAVOR_NAME" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    return None


def _keys_passed(call: ast.Call, tree: ast.Module) -> set[str]:
    """Keyword names of ``call``, and the keys of dict literals it spreads (``**name``) that
    the same module assigns to that name."""
    keys = {k.arg for k in call.keywords if k.arg}
    spread = {k.value.id for k in call.keywords if k.arg is None and isinstance(k.value, ast.Name)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id in spread for t in node.targets)
        ):
            keys |= {str(k.value) for k in node.value.keys if isinstance(k, ast.Constant)}
    return keys


def _requirement_names(func: ast.FunctionDef) -> set[str]:
    """Distribution names in a get_default_pip_requirements body: the first argument of
    each ``_get_pinned_requirement`` call, and the strings (or f-string heads) of list
    literals and ``append`` calls that parse as requirements (URLs and pieces do not)."""
    pieces: list[ast.expr] = []
    for node in ast.walk(func):
        if isinstance(node, ast.Call):
            callee = node.func
            name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            if name in ("_get_pinned_requirement", "append") and node.args:
                pieces.append(node.args[0])
        elif isinstance(node, (ast.List, ast.Tuple)):
            pieces.extend(node.elts)
        elif isinstance(node, ast.IfExp):  # "pyspark[connect]" if connect else "pyspark"
            pieces.extend((node.body, node.orelse))
    out: set[str] = set()
    for piece in pieces:
        text = None
        if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
            text = piece.value
        elif isinstance(piece, ast.JoinedStr) and isinstance(piece.values[0], ast.Constant):
            text = str(piece.values[0].value).rstrip("=<>!~")
        if not text or "/" in text or " " in text:
            continue
        try:
            out.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return out


def mlflow_flavors() -> Iterator[MlflowFlavor]:
    """Each package of the installed MLflow that names a flavor and can save one."""
    for pkg in sorted(p for p in MLFLOW.iterdir() if (p / "__init__.py").is_file()):
        texts = [f.read_text(encoding="utf-8") for f in sorted(pkg.rglob("*.py"))]
        if not any("FLAVOR_NAME = " in t for t in texts):
            continue
        trees = [ast.parse(t) for t in texts if any(w in t for w in _WORDS)]
        names = {n for n in map(_flavor_name, trees) if n}
        saves = any(
            isinstance(node, ast.FunctionDef) and node.name in SAVERS
            for tree in trees
            for node in tree.body
        )
        if not names or not saves:
            continue  # autologging-only integrations (anthropic, crewai, ...) save no model
        assert len(names) == 1, (pkg.name, names)
        loaders: set[str] = set()
        versions: set[str] = set()
        defaults: set[str] = set()
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    attr = func.attr if isinstance(func, ast.Attribute) else None
                    if attr == "add_to_model":
                        loaders |= {
                            str(k.value.value)
                            for k in node.keywords
                            if k.arg == "loader_module" and isinstance(k.value, ast.Constant)
                        }
                    if attr == "add_flavor":
                        versions |= {
                            k
                            for k in _keys_passed(node, tree)
                            if (k.endswith("_version") or k == "version")
                            and k not in NOT_LIBRARY_VERSIONS
                        }
                if (
                    isinstance(node, ast.FunctionDef)
                    and node.name == "get_default_pip_requirements"
                ):
                    defaults |= _requirement_names(node)
        yield MlflowFlavor(
            package=pkg.name,
            name=names.pop(),
            loaders=frozenset(loaders),
            version_keys=frozenset(versions),
            defaults=frozenset(defaults),
        )


INSTALLED = {f.name: f for f in mlflow_flavors()}


def test_the_scan_finds_mlflows_flavors() -> None:
    # the AST reading itself: the flavors every MLflow 3 has, with their well-known facts
    assert {"sklearn", "xgboost", "pytorch", "tensorflow", "onnx", "spark"} <= set(INSTALLED)
    assert INSTALLED["sklearn"].version_keys == {"sklearn_version"}
    assert INSTALLED["onnx"].defaults == {"onnx", "onnxruntime"}
    assert "anthropic" not in INSTALLED  # autologging only


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_every_mlflow_flavor_has_its_row(name: str) -> None:
    got = INSTALLED[name]
    assert name in FLAVORS, f"mlflow.{got.package} saves flavor {name!r}: add a row"
    row = FLAVORS[name]
    assert row.removed_in is None, f"{name} is in the installed MLflow"
    if name != "python_function":
        assert row.module == f"mlflow.{got.package}"
        assert got.loaders == ({row.module} if row.pyfunc else set())
    # the version key save_model writes; other *_version keys are another library's
    if name == "python_function":
        # pyfunc writes it through add_to_model under a named constant
        text = (MLFLOW / "pyfunc" / "model.py").read_text(encoding="utf-8")
        assert f'CONFIG_KEY_CLOUDPICKLE_VERSION = "{row.version_field}"' in text
    elif row.version_field is not None:
        assert row.version_field in got.version_keys, (row.version_field, got.version_keys)
    for key in got.version_keys - {row.version_field}:
        dist = canonicalize_name(key.removesuffix("_version"))
        assert dist in row.imports, f"{name} records {key}: not its library's version"
    # MLflow's default requirements: the row's distributions, the pyfunc runtime, or a
    # reason they are not loaded
    explained = set(row.not_loaded or {})
    covered = {*map(canonicalize_name, row.distributions), *PYFUNC_RUNTIME, *explained}
    # a distribution that provides another's modules stands for it
    defaults = {PROVIDES.get(d, d) for d in got.defaults}
    assert defaults <= covered, f"{name}: MLflow requires {sorted(defaults - covered)}"
    # and the row invents nothing MLflow does not require by default
    always = {canonicalize_name(d) for d in (row.library, *row.imports) if d}
    assert always <= defaults, name
    assert explained <= got.defaults, f"{name}: not_loaded names what MLflow does not require"


def test_rows_of_removed_flavors_are_not_in_mlflow() -> None:
    removed = {n for n, r in FLAVORS.items() if r.removed_in}
    assert removed == {"fastai", "diviner", "gluon", "promptflow", "mleap"}
    assert not removed & set(INSTALLED)


def test_libraries_match_mlflows_package_versions() -> None:
    """mlflow/ml_package_versions.py names each flavor's pip release."""
    tree = ast.parse((MLFLOW / "ml_package_versions.py").read_text(encoding="utf-8"))
    table = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "_ML_PACKAGE_VERSIONS" for t in n.targets)
    )
    checked = 0
    for flavor, info in table.items():
        if flavor in FLAVORS and "models" in info:
            assert FLAVORS[flavor].library == info["package_info"]["pip_release"], flavor
            checked += 1
    assert checked >= 15


def test_system_packages_are_debian_names_for_the_jvm_flavors() -> None:
    assert FLAVORS["spark"].system_packages == ("default-jre-headless", "libnss-wrapper")
    assert FLAVORS["h2o"].system_packages == ("default-jre-headless",)
    assert FLAVORS["johnsnowlabs"].system_packages == ("default-jre-headless", "libnss-wrapper")
    assert FLAVORS["sklearn"].system_packages == ()
    assert set(SYSTEM_PACKAGES["xgboost"]) == {"libgomp1"}


def test_conditional_needs_come_from_the_row() -> None:
    """``needs`` adds only distributions the row lists, for parameters MLflow writes."""
    cases = {
        "xgboost": {"model_class": "xgboost.sklearn.XGBClassifier"},
        "lightgbm": {"model_class": "lightgbm.sklearn.LGBMClassifier"},
        "spark": {"model_class": "pyspark.ml.connect.classification.LogisticRegressionModel"},
        "keras": {"keras_backend": "jax"},
        "transformers": {"framework": "tf", "peft_adaptor": "peft"},
    }
    for name, params in cases.items():
        got = {n.distribution for n in needs(name, params)}
        assert got <= set(FLAVORS[name].distributions), name
        assert got - {FLAVORS[name].library, *FLAVORS[name].imports}, name
    assert [n.distribution for n in needs("xgboost", {"model_class": "xgboost.core.Booster"})] == [
        "xgboost"
    ]


# ---------------------------------------------------------------------------------------
# rows against real MLmodel files of the corpus
# ---------------------------------------------------------------------------------------

CORPUS_NEEDS = {
    "mlflow2.9.2-py3.9-xgboost-sklearn": {"xgboost", "scikit-learn"},
    "mlflow2.9.2-py3.9-xgboost-booster": {"xgboost"},
    "mlflow3.17.2-py3.11-onnx": {"onnx", "onnxruntime"},
    "mlflow3.17.2-py3.12-tensorflow-keras": {"tensorflow"},
    "mlflow3.17.2-py3.11-transformers": {"transformers", "torch"},
    "mlflow3.17.2-py3.11-pytorch": {"torch", "cloudpickle"},
    "mlflow3.17.2-py3.11-lightgbm": {"lightgbm"},
    "mlflow3.17.2-py3.11-catboost": {"catboost"},
    "mlflow3.17.2-py3.12-prophet": {"prophet"},
    "mlflow2.9.2-py3.9-statsmodels": {"statsmodels"},
    "mlflow3.17.2-py3.12-langchain-models-from-code": {"langchain", "pydantic", "cloudpickle"},
}


@pytest.mark.parametrize("name", sorted(CORPUS_NEEDS))
def test_corpus_flavors_need(name: str) -> None:
    # the MLmodel as MLflow wrote it (the langchain one names an absolute code path, which
    # read_model refuses)
    flavors = yaml.safe_load((CORPUS / name / "MLmodel").read_text(encoding="utf-8"))["flavors"]
    got = {n.distribution for f, params in flavors.items() for n in needs(f, params)}
    assert got == CORPUS_NEEDS[name]


def test_tensorflow_flavor_records_tensorflows_version_as_keras_version() -> None:
    folder = read_model(CORPUS / "mlflow3.17.2-py3.12-tensorflow-keras")
    flavor = folder.mlmodel.flavor("tensorflow")
    assert flavor is not None
    assert (flavor.library, flavor.version_field, flavor.version) == (
        "tensorflow",
        "keras_version",
        "2.21.0",
    )
    # Keras 3's own version under tensorflow.keras (MLflow < 2.10 on TF >= 2.16) is not
    # tensorflow's
    assert recorded_version("tensorflow", {"keras_version": "3.3.3"}) is None


# ---------------------------------------------------------------------------------------
# infer and check (offline) with the table, on the corpus
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        # the tensorflow flavor records keras_version: infer used to write nothing for it
        ("mlflow3.17.2-py3.12-tensorflow-keras", {"tensorflow"}),
        ("mlflow3.17.2-py3.11-onnx", {"onnx", "onnxruntime"}),
        ("mlflow2.9.2-py3.9-xgboost-sklearn", {"xgboost", "scikit-learn"}),
        ("mlflow3.17.2-py3.11-transformers", {"transformers", "torch"}),
        ("mlflow3.17.2-py3.11-spark", {"pyspark"}),
    ],
)
def test_infer_writes_what_the_flavor_loads(name: str, wanted: set[str]) -> None:
    """Inferred in this (the test's) environment, where the flavor libraries are not all
    installed: each is written (pinned to what MLmodel records, else unpinned) with EB209,
    never dropped without a word."""
    result = api.infer(CORPUS / name, dry_run=True)
    names = {r.name for r in result.inference.spec.requirements if r.name}
    assert wanted <= names, sorted(names)
    for dist in wanted:
        if importlib.util.find_spec(_MODULES.get(dist, dist)) is None:
            assert any(f.code == "EB209" and f.message.startswith(dist) for f in result.findings)
    assert "tensorflow==2.21.0" in result.files["requirements.txt"] or name != (
        "mlflow3.17.2-py3.12-tensorflow-keras"
    )


_MODULES = {"scikit-learn": "sklearn", "pyspark": "pyspark"}


def _drop_line(folder: Path, prefix: str) -> None:
    for file in ("requirements.txt", "conda.yaml"):
        path = folder / file
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(ln for ln in lines if prefix not in ln), encoding="utf-8")


def test_check_says_an_undeclared_flavor_import_is_needed(tmp_path: Path) -> None:
    """An onnx model without onnxruntime cannot load through pyfunc: EB230 (offline)."""
    folder = tmp_path / "onnx"
    shutil.copytree(CORPUS / "mlflow3.17.2-py3.11-onnx", folder)
    _drop_line(folder, "onnxruntime")
    report = api.check([folder], offline=True)
    found = [f for m in report.models for f in m.findings if f.code == "EB230"]
    assert len(found) == 1, [f.message for m in report.models for f in m.findings]
    assert "onnxruntime" in found[0].message
    assert found[0].location.file == "MLmodel"
    # the folder as MLflow wrote it declares it
    clean = api.check([CORPUS / "mlflow3.17.2-py3.11-onnx"], offline=True)
    assert not [f for m in clean.models for f in m.findings if f.code == "EB230"]


def test_a_flavor_library_under_conda_is_not_called_conda_only(tmp_path: Path) -> None:
    """pyspark listed as a conda package (as conda users write it) is on PyPI: EB305 says
    to move it under pip, not that it is conda-only."""
    folder = tmp_path / "spark"
    shutil.copytree(CORPUS / "mlflow3.17.2-py3.11-spark", folder)
    conda = folder / "conda.yaml"
    text = conda.read_text(encoding="utf-8")
    conda.write_text(
        text.replace("  - pyspark==4.1.1\n", "").replace("- pip:", "- pyspark=4.1.1\n- pip:"),
        encoding="utf-8",
    )
    (folder / "requirements.txt").write_text("mlflow==3.17.2\n", encoding="utf-8")
    report = api.check([folder], offline=True)
    (eb305,) = [f for m in report.models for f in m.findings if f.code == "EB305"]
    assert "conda-only" not in eb305.message
    assert "flavor spark" in eb305.message and "pyspark is on PyPI" in eb305.message
    assert eb305.hint == "move it under pip: as 'pyspark==4.1.1'"
    assert eb305.location.file == "conda.yaml"
