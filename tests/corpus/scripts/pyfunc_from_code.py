"""Models from code: python_model is a path to _code/from_code_model.py."""

from pathlib import Path

import mlflow.pyfunc

import _common

out = _common.out_dir()
x, _ = _common.table()
code = Path(__file__).resolve().parent / "_code" / "from_code_model.py"
mlflow.pyfunc.save_model(str(out), python_model=str(code), input_example=x.head(5))
_common.finish(out)
