"""A PythonModel (defined here, so cloudpickled by value) reading a JSON artifact."""

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

import _common


class WeightedScore(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["weights"], encoding="utf-8") as fh:
            self.weights = json.load(fh)

    def predict(self, context, model_input, params=None):
        total = sum(model_input[col] * w for col, w in self.weights["coef"].items())
        score = (total + self.weights["bias"]).round(6)
        return pd.DataFrame({"score": score, "high": (score > 0).astype("int64")})


out = _common.out_dir()
x, _ = _common.table()
with tempfile.TemporaryDirectory() as tmp:
    weights = Path(tmp) / "weights.json"
    weights.write_text(
        json.dumps({"coef": {"income": -0.1, "debt": 0.8, "score": 2.0}, "bias": -1.5})
    )
    mlflow.pyfunc.save_model(
        str(out),
        python_model=WeightedScore(),
        artifacts={"weights": str(weights)},
        input_example=x.head(5),
    )
_common.finish(out)
