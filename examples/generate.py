"""(Re)generate the example MLflow model folders and the reader corpus.

Everything here is written by real MLflow from tiny models trained on small
synthetic data made in this script (fixed seeds, no downloads at run time).

Examples (examples/<name>/, written by MLflow 3.17.2):

    python3 -m venv /work/venvs/examples-mlflow3
    /work/venvs/examples-mlflow3/bin/pip install -r examples/requirements-examples.txt
    /work/venvs/examples-mlflow3/bin/python examples/generate.py

  writes examples/sklearn-credit, examples/pyfunc-custom, examples/pytorch-tensor,
  examples/fastai-legacy (hand-written, not by MLflow), an expected_predictions.json
  inside every MLflow-written example, and examples/manifest.json (measured truth sets).

Reader corpus (tests/data/models/mlflow<N>-<flavor>/, flavors sklearn, pyfunc,
pytorch, xgboost, lightgbm):

    /work/venvs/examples-mlflow3/bin/python examples/generate.py --corpus mlflow3
    # MLflow 2.x venv: same pins as requirements-examples.txt except mlflow==2.22.5
    # (pandas is then resolved by mlflow 2's pandas<3 cap: 2.3.3)
    /work/venvs/examples-mlflow2/bin/python examples/generate.py --corpus mlflow2

torch must be the CPU build (pip install torch==2.13.0 with pip, which takes the
local CPU wheel here); never let it pull a CUDA build.

Other options: --only NAME (one example or corpus folder), --check (do not write,
only verify that every folder's MLmodel parses, its size is < 2 MB and load+predict
reproduces its expected_predictions.json in the running venv).

Note: MLflow >= 3.x refuses to deserialize sklearn/pyfunc/pytorch artifacts unless
MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true; this script sets it for itself.
"""

from __future__ import annotations

import sys

# --probe must run before anything else is imported, so that the modules it sees
# being imported are those that loading + predicting really pulls in.
if __name__ == "__main__" and len(sys.argv) in (3, 4) and sys.argv[1] == "--probe":
    _BASELINE_MODULES = set(sys.modules)

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = HERE / "_src"
CORPUS_DIR = REPO / "tests" / "data" / "models"
MAX_BYTES = 2 * 1024 * 1024
SEED = 20240501

EXAMPLES = ["sklearn-credit", "pyfunc-custom", "pytorch-tensor", "fastai-legacy"]
CORPUS_FLAVORS = ["sklearn", "pyfunc", "pytorch", "xgboost", "lightgbm"]

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
# keep MLflow from talking to anything or creating ./mlruns while saving
os.environ.setdefault("MLFLOW_TRACKING_URI", "file:///tmp/envbuild-examples-mlruns")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

TRUTH_RULE = (
    "Measured, not declared. (1) In a fresh interpreter of the generating venv: import "
    "mlflow.pyfunc, mlflow.pyfunc.load_model(folder), predict on the saved input example "
    "(with its saved params); record every module imported (sys.modules minus the bare "
    "interpreter's) and map module names to distributions with "
    "importlib.metadata.packages_distributions(); the standard library drops out. "
    "(2) Candidates are those distributions minus mlflow-skinny, mlflow-tracing and their "
    "requirement closure "
    "(the runtime any mlflow brings). (3) Each candidate is blocked in turn (a meta-path "
    "finder makes its modules raise ImportError) and load+predict is run again: it is needed "
    "if that fails or the predictions change (so e.g. torch imported opportunistically by "
    "scikit-learn, or pyarrow by mlflow, is not needed). (4) A needed distribution that is "
    "in the requirement closure of another needed one is dropped (transitive), except when "
    "mlflow itself requires it (numpy, pandas, scipy, scikit-learn, skops, pyarrow: kept as "
    "MLflow's own requirement pruning does) or the model's code/ modules import it directly "
    "(e.g. joblib, scipy in pyfunc-custom). (5) Add mlflow (mlflow-skinny is an acceptable "
    "stand-in). Versions are those installed in the generating venv; truth_evidence lists "
    "what was imported but not needed and what was dropped as transitive."
)


# ----------------------------------------------------------------------------------------
# synthetic data
# ----------------------------------------------------------------------------------------


def credit_table(n: int = 400, seed: int = SEED):
    """A small synthetic credit-default table with a mix of column types."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    education = rng.choice(
        ["graduate school", "university", "high school", "others"], size=n, p=[0.3, 0.45, 0.2, 0.05]
    )
    df = pd.DataFrame(
        {
            "limit_bal": (rng.integers(1, 51, size=n) * 10_000).astype("int64"),
            "age": rng.integers(21, 70, size=n).astype("int64"),
            "education": pd.Series(education, dtype=object),
            "pay_0": rng.integers(-2, 7, size=n).astype("int64"),
            "pay_2": rng.integers(-2, 7, size=n).astype("int64"),
            "bill_amt1": rng.normal(50_000, 30_000, size=n).round(2),
            "pay_amt1": rng.gamma(2.0, 3_000, size=n).round(2),
        }
    )
    score = (
        0.9 * df["pay_0"]
        + 0.5 * df["pay_2"]
        - df["limit_bal"] / 150_000
        + (df["bill_amt1"] - df["pay_amt1"] * 5) / 60_000
        + np.where(df["education"] == "high school", 0.4, 0.0)
        + rng.normal(0, 1.0, size=n)
    )
    y = (score > 1.0).astype("int64").rename("default")
    return df, y


def tensor_data(n: int = 200, features: int = 8, seed: int = SEED):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features,)).astype("float32")
    y = (x @ w > 0).astype("int64")
    return x, y


# ----------------------------------------------------------------------------------------
# model builders (each returns the folder it wrote)
# ----------------------------------------------------------------------------------------


def _fresh(path: Path) -> Path:
    if path.exists():
        if not (path / "MLmodel").exists() and any(path.iterdir()):
            raise SystemExit(f"refusing to delete {path}: not a model folder")
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def build_sklearn_credit(path: Path, *, serialization_format: str | None = None) -> Path:
    """Pipeline(ColumnTransformer(StandardScaler, OneHotEncoder) + LogisticRegression)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = credit_table()
    numeric = [c for c in X.columns if c != "education"]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["education"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500, random_state=0)),
        ]
    )
    pipe.fit(X, y)
    y_pred = pipe.predict(X)
    kwargs = {}
    if serialization_format is not None:
        kwargs["serialization_format"] = serialization_format
    mlflow.sklearn.save_model(
        pipe,
        str(_fresh(path)),
        signature=infer_signature(X, y_pred),
        input_example=X.head(5),
        **kwargs,
    )
    return path


def build_pyfunc_custom(path: Path) -> Path:
    """PythonModel from examples/_src/credit_scorer.py + joblib classifier + JSON config."""
    import tempfile

    import joblib
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from credit_scorer import CreditScorer

    X, y = credit_table()
    features = ["limit_bal", "age", "pay_0", "pay_2", "bill_amt1", "pay_amt1"]
    clf = LogisticRegression(max_iter=1000, random_state=0).fit(X[features].astype("float64"), y)
    config = {"features": features, "default_threshold": 0.5, "labels": ["no_default", "default"]}
    # a fixed staging folder: MLflow records the artifacts' source URIs in MLmodel
    tmp = Path(tempfile.gettempdir(), "envbuild-examples", "pyfunc-artifacts")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    clf_path = Path(tmp, "classifier.joblib")
    cfg_path = Path(tmp, "config.json")
    joblib.dump(clf, clf_path)
    cfg_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    artifacts = {"classifier": str(clf_path), "config": str(cfg_path)}

    model = CreditScorer()
    example = X.head(5)
    # compute the output for the signature the same way the model will
    ctx = mlflow.pyfunc.PythonModelContext(artifacts=artifacts, model_config=None)
    model.load_context(ctx)
    out = model.predict(ctx, X, params=None)
    signature = infer_signature(X, out, params={"threshold": 0.5})
    mlflow.pyfunc.save_model(
        str(_fresh(path)),
        python_model=CreditScorer(),
        artifacts=artifacts,
        code_paths=[str(SRC / "credit_scorer.py")],
        signature=signature,
        input_example=(example, {"threshold": 0.5}),
    )
    return path


def _torch_model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    x, y = tensor_data()
    net = nn.Sequential(nn.Linear(x.shape[1], 16), nn.ReLU(), nn.Linear(16, 2), nn.Softmax(dim=1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(net(xt) + 1e-7), yt)
        loss.backward()
        opt.step()
    net.eval()
    return net, x


def build_pytorch_tensor(path: Path) -> Path:
    """nn.Sequential on 8 float32 features -> 2 class probabilities, tensor signature."""
    import mlflow.pytorch
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    net, x = _torch_model()
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, x.shape[1]))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2))]),
    )
    mlflow.pytorch.save_model(
        net, str(_fresh(path)), signature=signature, input_example=x[:5].copy()
    )
    return path


def build_xgboost(path: Path) -> Path:
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.models import infer_signature

    X, y = credit_table()
    X = X.drop(columns=["education"]).astype("float64")
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3, random_state=0, n_jobs=1)
    model.fit(X, y)
    mlflow.xgboost.save_model(
        model,
        str(_fresh(path)),
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(5),
    )
    return path


def build_lightgbm(path: Path) -> Path:
    import lightgbm as lgb
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    X, y = credit_table()
    X = X.drop(columns=["education"]).astype("float64")
    model = lgb.LGBMClassifier(
        n_estimators=8, num_leaves=7, random_state=0, n_jobs=1, verbose=-1, deterministic=True
    )
    model.fit(X, y)
    mlflow.lightgbm.save_model(
        model,
        str(_fresh(path)),
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(5),
    )
    return path


# ----------------------------------------------------------------------------------------
# the hand-written legacy fastai model (as shown in Azure ML's MLflow documentation)
# ----------------------------------------------------------------------------------------

FASTAI_MLMODEL = """\
artifact_path: model
flavors:
  fastai:
    data: model.fastai
    fastai_version: 2.4.1
  python_function:
    data: model.fastai
    env: conda.yaml
    loader_module: mlflow.fastai
    python_version: 3.8.12
model_uuid: e694c68eba484299976b06ab9058f636
run_id: e13da8ac-b1e6-45d4-a9b2-6a0a5cfac537
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "uint8", "shape": [-1, 300, 300, 3]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]'
utc_time_created: '2022-01-11 17:05:31.234245'
"""

FASTAI_CONDA = """\
channels:
- conda-forge
dependencies:
- python=3.8.12
- pip
- pip:
  - mlflow
  - astunparse==1.6.3
  - cffi==1.15.0
  - configparser==3.7.4
  - defusedxml==0.7.1
  - fastai==2.4.1
  - google-cloud-storage==1.43.0
  - ipython==7.30.1
  - psutil==5.8.0
name: mlflow-env
"""

FASTAI_PLACEHOLDER = b"PLACEHOLDER: not a real fastai Learner export (envbuild example)\n"


def build_fastai_legacy(path: Path) -> Path:
    _fresh(path)
    path.mkdir(parents=True)
    (path / "MLmodel").write_text(FASTAI_MLMODEL, encoding="utf-8")
    (path / "conda.yaml").write_text(FASTAI_CONDA, encoding="utf-8")
    (path / "model.fastai").write_bytes(FASTAI_PLACEHOLDER)
    return path


# ----------------------------------------------------------------------------------------
# predictions as the scoring server returns them
# ----------------------------------------------------------------------------------------


def _input_file(path: Path) -> str:
    for name in ("serving_input_example.json", "input_example.json"):
        if (path / name).exists():
            return name
    raise SystemExit(f"{path}: MLflow wrote no input example")


def score_like_server(path: Path) -> tuple[str, object]:
    """Load the folder with mlflow.pyfunc and answer its saved input example exactly as
    `mlflow models serve` would answer a POST of that file to /invocations."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(str(path))
    name = _input_file(path)
    data = (path / name).read_text(encoding="utf-8")
    if name == "serving_input_example.json":
        resp = scoring_server.invocations(
            data, "application/json", model, model.metadata.get_input_schema()
        )
        if resp.status != 200:
            raise SystemExit(f"{path}: scoring failed: {resp.response}")
        return name, json.loads(resp.response)["predictions"]
    # MLflow 2.x before serving_input_example.json existed: predict on input_example.json
    import io

    example = model.metadata.load_input_example(str(path))
    out = io.StringIO()
    scoring_server.predictions_to_json(model.predict(example), out)
    return name, json.loads(out.getvalue())["predictions"]


def write_expected(path: Path) -> None:
    name, preds = score_like_server(path)
    (path / "expected_predictions.json").write_text(
        json.dumps({"input": name, "predictions": preds}, indent=2) + "\n", encoding="utf-8"
    )


# ----------------------------------------------------------------------------------------
# measuring what loading + predicting really imports (runs in a subprocess)
# ----------------------------------------------------------------------------------------


def _probe(model_dir: str, block: str | None = None) -> None:
    """Load + predict the folder once; print what was imported and what came out.

    With ``block``, every top-level module of that distribution raises ImportError, so the
    parent can see whether loading + predicting really needs it."""
    import builtins
    import importlib.abc
    import importlib.metadata as md
    import io

    pkg_dists = md.packages_distributions()
    dist_tops: dict[str, set[str]] = {}
    for top, dists in pkg_dists.items():
        for d in dists:
            dist_tops.setdefault(_canon(d), set()).add(top)

    if block:
        blocked = dist_tops.get(block, set())

        class _Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] in blocked:
                    raise ModuleNotFoundError(f"blocked by probe: {fullname}", name=fullname)
                return None

        sys.meta_path.insert(0, _Blocker())

    model_dir = os.path.realpath(model_dir)
    code_dir = os.path.join(model_dir, "code") + os.sep
    code_imports: set[str] = set()
    real_import = builtins.__import__

    def hook(name, globals=None, locals=None, fromlist=(), level=0):
        in_code = bool(globals) and os.path.realpath(globals.get("__file__") or "").startswith(
            code_dir
        )
        if level == 0 and name and in_code:
            code_imports.add(name.split(".")[0])
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = hook
    result: dict = {}
    try:
        import mlflow.pyfunc
        from mlflow.pyfunc import scoring_server

        model = mlflow.pyfunc.load_model(model_dir)
        example = model.metadata.load_input_example(model_dir)
        params = None
        if hasattr(model.metadata, "load_input_example_params"):
            params = model.metadata.load_input_example_params(model_dir)
        raw = model.predict(example, params=params) if params else model.predict(example)
        out = io.StringIO()
        scoring_server.predictions_to_json(raw, out)
        result["predictions"] = json.loads(out.getvalue())["predictions"]
    except BaseException as e:  # any failure (even SystemExit) means "needed"
        result["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        builtins.__import__ = real_import

    base_tops = {m.split(".")[0] for m in _BASELINE_MODULES}
    loaded_tops = {m.split(".")[0] for m in sys.modules} - base_tops
    result["loaded"] = sorted({_canon(d) for t in loaded_tops for d in pkg_dists.get(t, [])})
    result["code_imports"] = sorted({_canon(d) for t in code_imports for d in pkg_dists.get(t, [])})
    sys.stdout.write("\n" + json.dumps(result) + "\n")


def _canon(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(name: str) -> set[str]:
    import importlib.metadata as md

    from packaging.requirements import Requirement

    try:
        reqs = md.requires(name) or []
    except md.PackageNotFoundError:
        return set()
    out = set()
    for raw in reqs:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        out.add(_canon(req.name))
    return out


def _requires_closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [_canon(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_requires(name))
    return seen


def _run_probe(path: Path, block: str | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", str(path)]
    if block:
        cmd.append(block)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"probe of {path} (block={block}) failed:\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def measure_truth(path: Path) -> tuple[dict[str, str], dict]:
    """See TRUTH_RULE. Returns (truth, evidence)."""
    import importlib.metadata as md

    ref = _run_probe(path)
    if "error" in ref:
        raise SystemExit(f"{path}: load+predict failed: {ref['error']}")
    runtime = _requires_closure({"mlflow-skinny", "mlflow-tracing"}) | {"mlflow"}
    candidates = sorted(set(ref["loaded"]) - runtime)
    needed, not_needed = set(), []
    for dist in candidates:
        r = _run_probe(path, dist)
        if "error" in r or r.get("predictions") != ref["predictions"]:
            needed.add(dist)
        else:
            not_needed.append(dist)
    code = set(ref["code_imports"]) & needed
    mlflow_deps = _requires("mlflow")
    implied = set()
    for dist in needed:
        implied |= _requires_closure(_requires(dist))
    pruned = sorted((needed & implied) - mlflow_deps - code)
    keep = (needed - set(pruned)) | {"mlflow"}
    truth = {d: md.version(d) for d in sorted(keep)}
    evidence = {
        "imported_but_not_needed": not_needed,
        "needed_but_implied_by_another": pruned,
        "imported_by_model_code": sorted(ref["code_imports"]),
    }
    return truth, evidence


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_folder(path: Path, *, predictions: bool = True) -> list[str]:
    import yaml

    problems = []
    size = folder_bytes(path)
    if size >= MAX_BYTES:
        problems.append(f"{path}: {size} bytes >= 2 MB")
    try:
        doc = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "flavors" not in doc:
            problems.append(f"{path}: MLmodel has no flavors")
    except Exception as e:
        problems.append(f"{path}: MLmodel does not parse: {e}")
    exp = path / "expected_predictions.json"
    if predictions and exp.exists():
        want = json.loads(exp.read_text(encoding="utf-8"))
        name, got = score_like_server(path)
        if name != want["input"] or got != want["predictions"]:
            problems.append(f"{path}: predictions differ from expected_predictions.json")
    return problems


# ----------------------------------------------------------------------------------------
# manifest
# ----------------------------------------------------------------------------------------


def _mlmodel(path: Path) -> dict:
    import yaml

    return yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))


def _serialization(name: str, path: Path, doc: dict) -> str:
    flavors = doc["flavors"]
    if "sklearn" in flavors:
        return flavors["sklearn"].get("serialization_format", "pickle")
    if "pytorch" in flavors:
        if any(path.glob("data/*.pt2")):
            return "pt2 (torch.export.save)"
        return "pickle (torch.save, pickle_module mlflow.pytorch.pickle_module)"
    if name == "pyfunc-custom":
        return "cloudpickle (python_model.pkl); artifacts: joblib + JSON"
    if "fastai" in flavors:
        return "fastai Learner.export (pickle); here only a placeholder file"
    return "unknown"


def manifest_entry(name: str, path: Path) -> dict:
    import mlflow

    doc = _mlmodel(path)
    entry = {
        "name": name,
        "path": f"examples/{name}",
        "flavors": sorted(doc["flavors"]),
        "loader_module": doc["flavors"]["python_function"].get("loader_module"),
        "written_by": "mlflow",
        "mlflow_version": doc.get("mlflow_version"),
        "python_version": doc["flavors"]["python_function"].get("python_version"),
        "serialization_format": _serialization(name, path, doc),
        "signature": "tensor"
        if "tensor-spec" in str((doc.get("signature") or {}).get("inputs"))
        else "column",
        "has_params": bool((doc.get("signature") or {}).get("params")),
        "input_example": _input_file(path),
        "expected_predictions": "expected_predictions.json",
        "load_env": {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"},
    }
    entry["truth"], entry["truth_evidence"] = measure_truth(path)
    assert entry["mlflow_version"] == mlflow.__version__
    return entry


FASTAI_ENTRY = {
    "name": "fastai-legacy",
    "path": "examples/fastai-legacy",
    "flavors": ["fastai", "python_function"],
    "loader_module": "mlflow.fastai",
    "written_by": "hand (after the MLmodel/conda.yaml shown in Azure ML's MLflow docs)",
    "mlflow_version": None,
    "python_version": "3.8.12",
    "serialization_format": "fastai Learner.export (pickle); here only a placeholder file",
    "signature": "tensor",
    "has_params": False,
    "input_example": None,
    "expected_predictions": None,
    "expected_predictions_reason": (
        "model.fastai is a placeholder, not a trained Learner, and no input example was "
        "logged: no predictions can be stored or reproduced"
    ),
    "truth": {"fastai": "2.4.1", "mlflow": None},
    "truth_note": (
        "Judged, not measured (nothing here can be loaded): a fastai model needs mlflow (any "
        "version with mlflow.fastai, unpinned in conda.yaml) and fastai==2.4.1 on Python "
        "3.8.12; torch etc. come in as fastai's own requirements. The other pins in conda.yaml "
        "(astunparse, cffi, configparser, defusedxml, google-cloud-storage, ipython, psutil) "
        "are what old MLflow's environment capture added, not needs of the model."
    ),
}


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------

EXAMPLE_BUILDERS = {
    "sklearn-credit": build_sklearn_credit,
    "pyfunc-custom": build_pyfunc_custom,
    "pytorch-tensor": build_pytorch_tensor,
    "fastai-legacy": build_fastai_legacy,
}

CORPUS_BUILDERS = {
    "sklearn": build_sklearn_credit,
    "pyfunc": build_pyfunc_custom,
    "pytorch": build_pytorch_tensor,
    "xgboost": build_xgboost,
    "lightgbm": build_lightgbm,
}


def _quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def run_examples(only: str | None, check_only: bool) -> list[str]:
    names = [only] if only else EXAMPLES
    problems: list[str] = []
    manifest_path = HERE / "manifest.json"
    manifest = {}
    if manifest_path.exists():
        manifest = {e["name"]: e for e in json.loads(manifest_path.read_text())["examples"]}
    for name in names:
        path = HERE / name
        t0 = time.monotonic()
        if not check_only:
            EXAMPLE_BUILDERS[name](path)
            if name != "fastai-legacy":
                write_expected(path)
                manifest[name] = manifest_entry(name, path)
            else:
                manifest[name] = FASTAI_ENTRY
        problems += check_folder(path, predictions=name != "fastai-legacy")
        print(f"{name}: {folder_bytes(path)} bytes, {time.monotonic() - t0:.1f}s", flush=True)
    if not check_only:
        ordered = [manifest[n] for n in EXAMPLES if n in manifest]
        manifest_path.write_text(
            json.dumps({"truth_rule": TRUTH_RULE, "examples": ordered}, indent=2) + "\n",
            encoding="utf-8",
        )
    return problems


def run_corpus(corpus: str, only: str | None, check_only: bool) -> list[str]:
    import mlflow

    major = int(mlflow.__version__.split(".")[0])
    if corpus != f"mlflow{major}":
        raise SystemExit(
            f"--corpus {corpus} needs MLflow {corpus[-1]}.x; this is {mlflow.__version__}"
        )
    problems: list[str] = []
    for flavor in [only] if only else CORPUS_FLAVORS:
        path = CORPUS_DIR / f"{corpus}-{flavor}"
        t0 = time.monotonic()
        if not check_only:
            CORPUS_BUILDERS[flavor](path)
            write_expected(path)
        problems += check_folder(path)
        print(f"{path.name}: {folder_bytes(path)} bytes, {time.monotonic() - t0:.1f}s", flush=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=["mlflow2", "mlflow3"])
    ap.add_argument("--only", help="one example name (or corpus flavor with --corpus)")
    ap.add_argument("--check", action="store_true", help="verify only, write nothing")
    args = ap.parse_args(argv)
    _quiet()
    t0 = time.monotonic()
    if args.corpus:
        problems = run_corpus(args.corpus, args.only, args.check)
    else:
        problems = run_examples(args.only, args.check)
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    print(f"done in {time.monotonic() - t0:.1f}s, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--probe":
        _probe(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        sys.exit(main())
