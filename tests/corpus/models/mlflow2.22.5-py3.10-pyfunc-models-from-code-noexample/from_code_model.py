"""A models-from-code pyfunc: MLflow stores this file and runs it at load time."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Ratio(PythonModel):
    def predict(self, context, model_input, params=None):
        ratio = (model_input["debt"] / model_input["income"]).round(6)
        return pd.DataFrame({"ratio": ratio, "risky": (ratio > 0.15).astype("int64")})


mlflow.models.set_model(Ratio())
