"""What the builder adds to a model's environment so the image or venv can serve it.

The server (envbuild/serve/) is the standard library's HTTP server around MLflow's pyfunc
loader and MLflow's own payload parsers. So the environment needs only ``mlflow-skinny``
at the model's own MLflow version (MLflow's pyfunc loader and ``proto_json_utils``;
``mlflow-skinny`` exists from 1.14.0, older models get the full ``mlflow``), plus pandas
and numpy for tabular payloads (mlflow-skinny does not require them). No web framework:
FastAPI/uvicorn come with mlflow-skinny from 2.2x on, but not with older ones, and the
measurements below show they buy nothing here. The resolver locks these together with the
model's requirements.

How the builder ships the server: copy ``serve_files()`` (envbuild/serve/*.py, relative
imports only) into a folder named ``SERVE_PACKAGE`` on the interpreter's path and run
``SERVE_COMMAND`` (``python -m envbuild_serve``) with the settings in ``SERVE_ENV``
(``ENVBUILD_MODEL_DIR`` at least); health is ``GET HEALTH_PATH``. The source is valid
Python 3.8, the oldest model Python served.

Measurements (this machine: 2 cores shared with other jobs, load average 4-9 during the
runs, so absolute times are noisy; the comparisons were run back to back). Model:
examples/sklearn-credit, MLflow 3.17.2, Python 3.11, venv made with uv.

* Install size: mlflow-skinny 3.17.2 + pandas + numpy = 176 MB venv (pandas 46, numpy 59,
  mlflow 20, cryptography 15, databricks-sdk 8 MB); FastAPI + starlette + uvicorn inside
  that are 3 MB, so the HTTP layer does not decide size. mlflow-skinny 2.9.2 + pandas +
  numpy = 134 MB and has no FastAPI at all (MLflow 2.x's own scoring server needs Flask,
  i.e. the full mlflow). The full ``mlflow`` is what makes MLflow's images 1 GB+.
* Cold start (process start to the first 200 on /ping): dominated by ``import mlflow``
  (1.1-3.5 s) and loading the model (2.7-3.5 s, mostly skops/sklearn imports); the HTTP
  layer adds ~0.05 s (stdlib) vs ~0.3 s (uvicorn + FastAPI app). SEE_COLD_START
* Latency, one connection, sequential (p50): SEE_LATENCY
* 200 concurrent keep-alive connections, 3000 requests: SEE_LOAD
* Where a request's time goes (in-process, no HTTP): parse 1.0 ms, pyfunc predict 4.7 ms
  (of which the sklearn pipeline 2.6 ms, MLflow schema enforcement the rest). The server
  itself is not the bottleneck; worker processes (ENVBUILD_WORKERS) are what scale.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from packaging.requirements import Requirement as PkgRequirement
from packaging.version import InvalidVersion, Version

from envbuild.findings import Location
from envbuild.serve.config import ENV_VARS
from envbuild.spec import ReqKind, Requirement

SERVING_SOURCE = "envbuild serving stack"

# The first mlflow-skinny release on PyPI (checked with `pip index versions`); older
# models need the full mlflow distribution for the same loader.
FIRST_SKINNY = Version("1.14.0")

# The package name the server is copied under, and how it is started and probed.
SERVE_PACKAGE = "envbuild_serve"
SERVE_COMMAND = ("python", "-m", SERVE_PACKAGE)
HEALTH_PATH = "/ping"
DEFAULT_PORT = int(ENV_VARS["ENVBUILD_PORT"][0])
# Every setting the server reads, with its default (see envbuild/serve/config.py).
SERVE_ENV: dict[str, str] = {name: default for name, (default, _) in ENV_VARS.items()}

_SERVE_DIR = Path(__file__).resolve().parent / "serve"


def serving_requirements(mlflow_version: str | None) -> tuple[Requirement, ...]:
    mlflow = "mlflow-skinny"
    if mlflow_version:
        with contextlib.suppress(InvalidVersion):
            version = Version(mlflow_version)
            mlflow = (
                f"mlflow-skinny=={version}" if version >= FIRST_SKINNY else f"mlflow=={version}"
            )
    out = []
    for text in (mlflow, "pandas", "numpy"):
        out.append(
            Requirement(
                raw=text,
                kind=ReqKind.NAMED,
                requirement=PkgRequirement(text),
                location=Location(file=SERVING_SOURCE),
                reasons=("added by envbuild so the image/venv can load and serve the model",),
            )
        )
    return tuple(out)


def serve_files() -> dict[str, bytes]:
    """The server's source, ``{"envbuild_serve/<name>.py": bytes}``, sorted by path."""
    files = sorted(p for p in _SERVE_DIR.glob("*.py"))
    return {f"{SERVE_PACKAGE}/{p.name}": p.read_bytes() for p in files}
