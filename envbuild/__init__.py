"""envbuild: turn an MLflow model folder into an environment that provably runs it.

The library API is ``envbuild.api`` (one function per command, each returning a typed
result with ``findings``, ``exit_code`` and ``to_json()``); the stage packages below it
(``read``, ``infer``, ``resolve``, ``render``, ``build``, ``check``) are its parts."""

__version__ = "0.1.0"
