"""A PythonModel whose class lives in the author's module, shipped with code_path(s)."""

import sys
from pathlib import Path

import _common

CODE = Path(__file__).resolve().parent / "_code"
sys.path.insert(0, str(CODE))

import mlflow.pyfunc  # noqa: E402
from threshold_scorer import ThresholdScorer  # noqa: E402

out = _common.out_dir()
x, _ = _common.table()
kwargs = {"python_model": ThresholdScorer(threshold=8.0), "input_example": x.head(5)}
code = [str(CODE / "threshold_scorer.py")]
if _common.accepts(mlflow.pyfunc.save_model, "code_paths"):
    kwargs["code_paths"] = code
else:
    kwargs["code_path"] = code
mlflow.pyfunc.save_model(str(out), **kwargs)
_common.finish(out)
