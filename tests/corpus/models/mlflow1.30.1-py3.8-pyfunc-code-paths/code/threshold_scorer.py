"""An author's own module, shipped with the model through code_path(s)."""

import mlflow.pyfunc
import pandas as pd


def risk(df):
    return (df["debt"] * 2 - df["income"] / 10 + df["score"] * 3).round(6)


class ThresholdScorer(mlflow.pyfunc.PythonModel):
    def __init__(self, threshold):
        self.threshold = threshold

    def predict(self, context, model_input, params=None):
        r = risk(model_input)
        return pd.DataFrame({"risk": r, "flag": (r > self.threshold).astype("int64")})
