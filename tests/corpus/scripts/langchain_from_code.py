"""mlflow.langchain from code: lc_model is a path to _code/langchain_chain.py."""

from pathlib import Path

import mlflow.langchain

import _common

out = _common.out_dir()
code = Path(__file__).resolve().parent / "_code" / "langchain_chain.py"
mlflow.langchain.save_model(
    str(code), str(out), input_example={"review": "a fine film with great actors"}
)
_common.finish(out)
