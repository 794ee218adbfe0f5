"""StandardScaler + LogisticRegression, saved with mlflow.sklearn in the given format."""

import mlflow.sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import _common

out = _common.out_dir()
fmt = _common.arg("serialization", "cloudpickle")
x, y = _common.table()
model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0)).fit(x, y)
kwargs = {"serialization_format": fmt, "input_example": x.head(5)}
if fmt == "skops":
    # MLflow >= 3 refuses to save a skops model unless the trusted types are named
    kwargs["skops_trusted_types"] = None
if not _common.accepts(mlflow.sklearn.save_model, "skops_trusted_types"):
    kwargs.pop("skops_trusted_types", None)
if _common.mlflow_major_minor() >= (2, 0):
    from mlflow.models import infer_signature

    kwargs["signature"] = infer_signature(x.head(5), model.predict(x.head(5)))
mlflow.sklearn.save_model(model, str(out), **kwargs)
_common.finish(out)
