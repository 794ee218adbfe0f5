"""Shared by the corpus scripts; runs inside a generating venv (Python 3.8+, MLflow 1.30+).

Each script trains a tiny model on synthetic data, saves it with MLflow into the folder
given as its first argument, then calls ``finish`` to write expected_predictions.json
from MLflow's own load + predict on the saved input example."""

import inspect
import json
import os
import sys
from pathlib import Path

SEED = 20240501

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def out_dir():
    """The folder to save into (must not exist: MLflow refuses an existing one)."""
    return Path(sys.argv[1]).resolve()


def arg(name, default=None):
    """The value after ``--name`` on the command line."""
    flag = "--" + name
    if flag in sys.argv:
        return sys.argv[sys.argv.index(flag) + 1]
    return default


def mlflow_major_minor():
    import mlflow

    parts = mlflow.__version__.split(".")
    return int(parts[0]), int(parts[1])


def accepts(func, name):
    """Whether this MLflow's ``func`` takes the keyword ``name`` (they changed over time)."""
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def table(n=40, seed=SEED):
    """A small numeric+categorical table and a binary label."""
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(seed)
    df = pd.DataFrame(
        {
            "age": rng.randint(21, 70, size=n).astype("int64"),
            "income": rng.normal(50.0, 15.0, size=n).round(3),
            "debt": rng.gamma(2.0, 3.0, size=n).round(3),
            "score": rng.uniform(0.0, 1.0, size=n).round(4),
        }
    )
    y = (df["debt"] * 2 - df["income"] / 10 + df["score"] * 3 + rng.normal(0, 1, n)) > 2
    return df, y.astype("int64")


def numeric(n=40, features=4, seed=SEED):
    import numpy as np

    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features,)).astype("float32")
    y = (x @ w > 0).astype("int64")
    return x, y


def _jsonable(obj):
    """Predictions as MLflow's scoring server renders them (DataFrames as records)."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return json.loads(obj.to_json(orient="records"))
    if isinstance(obj, pd.Series):
        return json.loads(obj.to_json(orient="values"))
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _via_server(path, model, name):
    """Answer the saved serving example as `mlflow models serve` answers a POST of it."""
    from mlflow.pyfunc import scoring_server

    data = (path / name).read_text(encoding="utf-8")
    schema = model.metadata.get_input_schema()
    resp = scoring_server.invocations(data, "application/json", model, schema)
    if resp.status != 200:
        raise SystemExit(f"scoring failed: {resp.response}")
    return json.loads(resp.response)["predictions"]


def finish(path):
    """Write expected_predictions.json: MLflow's own answer on the saved input example."""
    import mlflow.pyfunc
    from mlflow.models import Model

    path = Path(path)
    model = mlflow.pyfunc.load_model(str(path))
    if (path / "serving_input_example.json").is_file():
        name = "serving_input_example.json"
        preds = _via_server(path, model, name)
    elif (path / "input_example.json").is_file():
        # MLflow before serving_input_example.json: predict on the saved example itself
        name = "input_example.json"
        example = Model.load(str(path / "MLmodel")).load_input_example(str(path))
        preds = _jsonable(model.predict(example))
    else:
        raise SystemExit(f"{path}: MLflow wrote no input example")
    doc = {"input": name, "predictions": preds}
    (path / "expected_predictions.json").write_text(
        json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {path} ({name})")
