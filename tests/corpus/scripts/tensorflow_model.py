"""A tiny Keras Sequential (4 -> 8 -> 2, softmax) saved with mlflow.tensorflow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import mlflow.tensorflow
from mlflow.models import infer_signature

import _common

keras.utils.set_random_seed(0)
out = _common.out_dir()
x, y = _common.numeric()
model = keras.Sequential(
    [
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ]
)
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=3, verbose=0)
example = x[:5]
sig = infer_signature(example, model.predict(example, verbose=0))
mlflow.tensorflow.save_model(model, str(out), input_example=example, signature=sig)
_common.finish(out)
