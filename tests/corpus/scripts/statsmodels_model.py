"""An OLS regression (statsmodels.api.OLS) on the numeric columns, no intercept."""

import mlflow.statsmodels
import statsmodels.api as sm

import _common

out = _common.out_dir()
x, _ = _common.table()
x = x.astype("float64")
target = x["debt"] * 0.5 + x["income"] * 0.1
feats = x[["age", "income", "score"]]
model = sm.OLS(target, feats).fit()
kwargs = {"input_example": feats.head(5)}
if _common.mlflow_major_minor() >= (2, 0):
    from mlflow.models import infer_signature

    kwargs["signature"] = infer_signature(feats.head(5), model.predict(feats.head(5)))
mlflow.statsmodels.save_model(model, str(out), **kwargs)
_common.finish(out)
