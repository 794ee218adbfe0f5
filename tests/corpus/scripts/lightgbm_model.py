"""LightGBM, as a native Booster (lgb.train) or through the sklearn API (LGBMClassifier)."""

import lightgbm as lgb
import mlflow.lightgbm

import _common

out = _common.out_dir()
api = _common.arg("api", "booster")
x, y = _common.table()
common = {"num_leaves": 4, "min_data_in_leaf": 3, "seed": 0, "num_threads": 1, "verbose": -1}
if api == "booster":
    model = lgb.train({"objective": "binary", **common}, lgb.Dataset(x, label=y), num_boost_round=5)
else:
    model = lgb.LGBMClassifier(n_estimators=5, **common).fit(x, y)
preds = model.predict(x.head(5))
kwargs = {"input_example": x.head(5)}
if _common.mlflow_major_minor() >= (2, 0):
    from mlflow.models import infer_signature

    kwargs["signature"] = infer_signature(x.head(5), preds)
mlflow.lightgbm.save_model(model, str(out), **kwargs)
_common.finish(out)
