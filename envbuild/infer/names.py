"""Module and file-format names -> the distributions that provide them.

MLflow is one family, declared once here: ``mlflow`` and ``mlflow-skinny`` ship the same
``mlflow`` package (either satisfies an import of it); ``mlflow-tracing``, which MLflow 3
requires, provides no ``mlflow.pyfunc`` but belongs to the serving runtime."""

from __future__ import annotations

# The distributions that provide the ``mlflow`` package, the full one first: infer writes it
# when it is installed (what MLflow itself writes), and --check treats the two as one.
MLFLOW, MLFLOW_SKINNY = MLFLOW_DISTS = ("mlflow", "mlflow-skinny")

# What mlflow.pyfunc imports at load time whatever the flavor (not declared by
# mlflow-skinny): the same pair envbuild/serving.py adds.
PYFUNC_RUNTIME = ("pandas", "numpy")

# serialization formats MLmodel records -> the distribution that reads them
FORMAT_LIBRARIES = {"skops": "skops", "cloudpickle": "cloudpickle"}
