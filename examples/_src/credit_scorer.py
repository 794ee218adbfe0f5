"""Custom MLflow pyfunc model used by examples/pyfunc-custom.

Shipped into the model folder through ``code_paths`` (it lands in the model's
``code/`` directory), so the pickled ``python_model.pkl`` refers to the class
``credit_scorer.CreditScorer`` by name.

Deliberately, ``scipy.special`` is imported only inside ``predict``: a
dependency that is invisible when the model is merely loaded, which static
inference (reading this file) has to find.
"""

import json

import mlflow.pyfunc


class CreditScorer(mlflow.pyfunc.PythonModel):
    """Scores credit-default risk with a joblib-dumped scikit-learn classifier.

    Artifacts:
      classifier: joblib file with a fitted scikit-learn classifier (has decision_function)
      config:     JSON with "features" (column order), "default_threshold" and "labels"

    Params:
      threshold (float): probability at or above which a row is flagged.
    """

    def load_context(self, context):
        import joblib

        self.classifier = joblib.load(context.artifacts["classifier"])
        with open(context.artifacts["config"], encoding="utf-8") as f:
            self.config = json.load(f)

    def predict(self, context, model_input, params=None):
        import pandas as pd
        import scipy.special  # imported at predict time on purpose

        params = params or {}
        threshold = float(params.get("threshold", self.config["default_threshold"]))
        features = model_input[self.config["features"]]
        logits = self.classifier.decision_function(features)
        probability = scipy.special.expit(logits)
        flagged = probability >= threshold
        negative, positive = self.config["labels"]
        return pd.DataFrame(
            {
                "probability": probability.round(6),
                "label": [positive if f else negative for f in flagged],
            }
        )
