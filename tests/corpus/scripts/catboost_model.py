"""A CatBoostClassifier with 10 shallow trees."""

import mlflow.catboost
from catboost import CatBoostClassifier
from mlflow.models import infer_signature

import _common

out = _common.out_dir()
x, y = _common.table()
model = CatBoostClassifier(
    iterations=10, depth=2, random_seed=0, verbose=False, allow_writing_files=False, thread_count=1
).fit(x, y)
sig = infer_signature(x.head(5), model.predict(x.head(5)))
mlflow.catboost.save_model(model, str(out), input_example=x.head(5), signature=sig)
_common.finish(out)
