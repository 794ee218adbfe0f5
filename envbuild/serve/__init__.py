"""envbuild's model server: MLflow's scoring protocol plus an OpenAPI document.

This package runs inside the built image or venv, next to the model, with only what
``envbuild.serving.serving_stack`` installs (one MLflow, mlflow-skinny unless the model
needs full mlflow; pandas, numpy) and the standard library. It imports nothing from the rest of envbuild and only relative imports
inside itself, so the builder copies the folder under any package name (it uses
``envbuild_serve``, see ``envbuild.serving.SERVE_PACKAGE``) and starts it with
``python -m envbuild_serve``. Settings come from ``ENVBUILD_*`` environment variables
(``config.ENV_VARS``). Source must stay valid for Python 3.7, the oldest model Python served.
"""

# envbuild's own version, repeated: the server cannot import envbuild (see above);
# tests/unit/test_serve.py keeps the two equal.
__version__ = "0.1.0"
