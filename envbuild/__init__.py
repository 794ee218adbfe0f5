"""envbuild: turn an MLflow model folder into an environment that provably runs it."""

__version__ = "0.1.0"
