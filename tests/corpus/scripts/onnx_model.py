"""A LogisticRegression converted with skl2onnx (tensor input, no ZipMap), served by
onnxruntime through mlflow.onnx."""

import mlflow.onnx
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

import _common

out = _common.out_dir()
x, y = _common.numeric()
clf = LogisticRegression(random_state=0).fit(x, y)
onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
example = x[:5]
sig = infer_signature(example, clf.predict_proba(example).astype("float32"))
mlflow.onnx.save_model(onx, str(out), input_example=example, signature=sig)
_common.finish(out)
