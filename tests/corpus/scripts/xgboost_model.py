"""XGBoost, as a native Booster (xgb.train) or through the sklearn API (XGBClassifier)."""

import mlflow.xgboost
import xgboost as xgb

import _common

out = _common.out_dir()
api = _common.arg("api", "booster")
x, y = _common.table()
params = {"max_depth": 2, "seed": 0, "nthread": 1}
if api == "booster":
    params["objective"] = "binary:logistic"
    model = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=5)
    preds = model.predict(xgb.DMatrix(x.head(5)))
else:
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=0, n_jobs=1).fit(x, y)
    preds = model.predict(x.head(5))
kwargs = {"input_example": x.head(5)}
if _common.mlflow_major_minor() >= (2, 0):
    from mlflow.models import infer_signature

    kwargs["signature"] = infer_signature(x.head(5), preds)
mlflow.xgboost.save_model(model, str(out), **kwargs)
_common.finish(out)
