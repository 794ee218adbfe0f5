"""What the builder adds to a model's environment so the image or venv can serve it.

The server (envbuild/serve/) is the standard library's HTTP server around MLflow's pyfunc
loader and MLflow's own payload parsers. So the environment needs only ``mlflow-skinny``
at the model's own MLflow version (MLflow's pyfunc loader and ``proto_json_utils``;
``mlflow-skinny`` exists from 1.14.0, older models get the full ``mlflow``), plus pandas
and numpy for tabular payloads (mlflow-skinny does not require them). No web framework:
FastAPI/uvicorn come with mlflow-skinny from 2.2x on, but not with older ones, and the
measurements below show they buy nothing here. The resolver locks these together with the
model's requirements.

How the builder ships the server: ``render.server_files()`` copies envbuild/serve/ (relative
imports only) into a folder named ``SERVE_PACKAGE`` on the interpreter's path, which runs
``python -m envbuild_serve`` with the settings of envbuild/serve/config.py
(``ENVBUILD_MODEL_DIR`` at least) on ``render.PORT``; health is ``GET render.HEALTH_PATH``.
The source is valid Python 3.7, the oldest model Python served (3.6 has neither
``from __future__ import annotations`` nor dataclasses).

Measurements, envbuild's server vs MLflow 3.17.2's own scoring server
(``uvicorn mlflow.pyfunc.scoring_server.app:app``) in the same uv venv (Python 3.11,
mlflow-skinny + the model's measured dependencies), examples/sklearn-credit, loopback,
benchmarks/load_test.py. The machine has 2 cores shared with other jobs (load average 4-8
during the runs), so each figure is the median of 3 interleaved runs and only the
comparisons mean much:

* Install size: mlflow-skinny 3.17.2 + pandas + numpy = 176 MB venv (pandas 46, numpy 59,
  mlflow 20, cryptography 15, databricks-sdk 8 MB). FastAPI + starlette + uvicorn are 3 MB
  of that, so the HTTP layer does not decide size; mlflow-skinny 2.9.2 + pandas + numpy is
  134 MB and has no FastAPI at all (MLflow 2.x's scoring server imports Flask: full mlflow).
* Cold start, process start to the first 200 on /ping: 6.7 s ours vs 6.4 s MLflow's with one
  worker; with two workers 7.9 s vs 11.9 s (6.5-28 s), as MLflow's workers each import
  MLflow and load the model while ours fork from a master that has loaded it. Both are
  ``import mlflow`` (1-3.5 s) plus the model load (2.7-3.5 s); importing the HTTP stack
  costs 5 ms (http.server) vs 25 ms (uvicorn; FastAPI comes in with MLflow anyway).
* Latency, one connection, 300 sequential requests, p50: 4.1 ms vs 5.8 ms (one worker);
  4.4 ms vs 52 ms with two workers (MLflow's multi-worker uvicorn pays ~48 ms per request).
* 200 concurrent keep-alive connections, 3000 requests, 0 errors for both:
  one worker 194 vs 151 req/s, p50 1000 vs 1271 ms, p99 2189 vs 1817 ms;
  two workers 240 vs 250 req/s, p50 766 vs 793 ms, p99 1781 vs 1428 ms.
  Memory (PSS, master + workers): 200 vs 211 MB with one worker, 313 vs 416 MB with two.
* ENVBUILD_THREADS (predictions at once per worker), 200 connections, one worker: 1, 2, 4, 8
  threads gave p99 2.3, 1.8-2.0, 1.5-4.7, 3.1-6.3 s at 126-164 req/s: beyond 2 the GIL
  only lengthens the tail for a CPU-bound model, hence the default of 2.
* Where one request's time goes (in-process, no HTTP): parse 1.0 ms, pyfunc predict 4.7 ms
  (the sklearn pipeline 2.6 ms, MLflow's schema enforcement the rest). The HTTP layer is
  not the bottleneck; worker processes (ENVBUILD_WORKERS) are what scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import Requirement as PkgRequirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from envbuild.findings import Location
from envbuild.read import EnvSpec, ReqKind, Requirement

SERVING_SOURCE = "envbuild serving stack"

# The first mlflow-skinny release on PyPI (checked with `pip index versions`); older
# models need the full mlflow distribution for the same loader.
FIRST_SKINNY = Version("1.14.0")

# The package name the server is copied under (render.server_files).
SERVE_PACKAGE = "envbuild_serve"


def _requirement(text: str, reason: str) -> Requirement:
    return Requirement(
        raw=text,
        kind=ReqKind.NAMED,
        requirement=PkgRequirement(text),
        location=Location(file=SERVING_SOURCE),
        reasons=(reason,),
    )


def model_mlflow_version(mlmodel_version: str | None, spec: EnvSpec) -> str | None:
    """The MLflow that serves the model: MLmodel's ``mlflow_version``, else the version the
    environment pins for ``mlflow`` or ``mlflow-skinny`` (old MLflow releases wrote no
    ``mlflow_version``, and hand-made folders drop it)."""
    if mlmodel_version:
        return mlmodel_version
    for req in spec.requirements:
        if req.name in ("mlflow", "mlflow-skinny") and req.pinned_version:
            return req.pinned_version
    return None


def serving_requirements(mlflow_version: str | None) -> tuple[Requirement, ...]:
    mlflow = "mlflow-skinny"
    if mlflow_version:
        with contextlib.suppress(InvalidVersion):
            version = Version(mlflow_version)
            mlflow = (
                f"mlflow-skinny=={version}" if version >= FIRST_SKINNY else f"mlflow=={version}"
            )
    reason = "added by envbuild so the image/venv can load and serve the model"
    return tuple(_requirement(text, reason) for text in (mlflow, "pandas", "numpy"))


@dataclass(frozen=True, kw_only=True)
class MlflowNeed:
    """A package the MLflow releases in ``mlflow`` need at run time but do not require."""

    mlflow: SpecifierSet
    requirement: str
    why: str


# The one table of what old MLflow releases need beyond their own requirements, applied when
# the model's environment names the package without a version (uv venvs seed nothing). Read
# from MLflow's wheels: mlflow/utils/requirements_utils.py has `import pkg_resources` (which
# `import mlflow.pyfunc` reaches) up to 2.15.1, and 2.16.0 is the first release without it;
# setuptools 82.0.0 is the first without pkg_resources (81 warns of its removal, hence <81,
# what that warning recommends). MLflow 1.x imports it from more modules; same bound.
MLFLOW_NEEDS = (
    MlflowNeed(
        mlflow=SpecifierSet("<2.16"),
        requirement="setuptools<81",
        why="MLflow before 2.16 imports pkg_resources, which setuptools 82 removed",
    ),
)


def _says(spec: EnvSpec, name: str) -> bool:
    """Whether the environment names ``name`` with a version (a specifier, or a URL)."""
    lines: Iterable[Requirement] = (*spec.requirements, *spec.build_dependencies, *spec.constraints)
    return any(
        r.name == name
        and r.requirement is not None
        and bool(r.requirement.specifier or r.requirement.url)
        for r in lines
    )


def mlflow_needs(mlflow_version: str | None, spec: EnvSpec) -> tuple[Requirement, ...]:
    """The MLFLOW_NEEDS rows for the model's MLflow the environment does not decide itself."""
    try:
        version = Version(mlflow_version) if mlflow_version else None
    except InvalidVersion:
        return ()
    if version is None:
        return ()
    out = []
    for need in MLFLOW_NEEDS:
        req = _requirement(need.requirement, need.why)
        if need.mlflow.contains(version, prereleases=True) and not _says(spec, req.name or ""):
            out.append(req)
    return tuple(out)


def serving_constraints(mlflow_version: str | None, spec: EnvSpec) -> tuple[Requirement, ...]:
    """``mlflow==V`` for a model saved by MLflow V whose environment names ``mlflow`` with no
    version: the full distribution then resolves to V too, not to the newest release beside
    the serving stack's mlflow-skinny V (both install the ``mlflow`` package: the newer
    files would win, and a 1.x model would be served by a 2.x MLflow)."""
    try:
        version = Version(mlflow_version) if mlflow_version else None
    except InvalidVersion:
        return ()
    if version is None or version < FIRST_SKINNY or _says(spec, "mlflow"):
        return ()
    if not any(r.name == "mlflow" for r in spec.requirements):
        return ()
    return (_requirement(f"mlflow=={version}", "the MLflow version the model was saved by"),)
