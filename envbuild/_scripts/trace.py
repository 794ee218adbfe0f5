"""``envbuild infer --trace``: run inside the inspected interpreter (Python 3.8+).

Imports mlflow.pyfunc (its own footprint is the baseline), loads the model, predicts on
its saved input example, and prints one line ``ENVBUILD-TRACE:{json}`` with the modules
imported beyond the baseline. This EXECUTES the model; envbuild only runs it on request.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # as a script: never import from the working directory
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]

import json
import traceback

MARKER = "ENVBUILD-TRACE:"


def trace(path: str) -> dict[str, object]:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the model may print; keep stdout for the result
    result: dict[str, object] = {"modules": [], "error": None, "predicted": False}
    before: set[str] = set()
    try:
        import mlflow.pyfunc
        from mlflow.models import Model

        before = set(sys.modules)
        model = mlflow.pyfunc.load_model(path)
        meta = Model.load(path)
        example = meta.load_input_example(path)
        params = None
        loader = getattr(meta, "load_input_example_params", None)
        if loader is not None:
            params = loader(path)
        if example is not None:
            if params:
                model.predict(example, params=params)
            else:
                model.predict(example)
            result["predicted"] = True
    except BaseException as exc:  # report, never raise: the imports so far still count
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result["error"] = "loading or predicting failed: " + last
    finally:
        sys.stdout = real_stdout
    result["modules"] = sorted(set(sys.modules) - before) if before else []
    return result


def main() -> None:
    result = trace(sys.argv[1])
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
