"""What the builder adds to a model's environment so the image or venv can serve it.

The server (envbuild/serve/) is the standard library's HTTP server around MLflow's pyfunc
loader and MLflow's own payload parsers. So the environment needs only ``mlflow-skinny``
(MLflow's pyfunc loader and ``proto_json_utils``; ``mlflow-skinny`` exists from 1.14.0,
older models get the full ``mlflow``), plus pandas and numpy for tabular payloads
(mlflow-skinny does not require them).

One MLflow per environment (``serving_stack``): a model whose requirements name ``mlflow``
or ``mlflow-skinny`` gets that declaration, not a second distribution; MLmodel's
``mlflow_version`` is a preference (tried first as ``==``, dropped when it conflicts with
the model's own requirements), not a pin. A declared ``mlflow`` is served as
``mlflow-skinny`` of the same specifier (``--mlflow skinny``, the default), unless the
model needs something only full MLflow's dependencies bring (the resolver checks the lock
against the static scan and keeps ``mlflow`` then); ``--mlflow full`` keeps it always.

No web framework: FastAPI/uvicorn come with mlflow-skinny from 2.2x on, but not with older ones, and the
measurements below show they buy nothing here. The resolver locks these together with the
model's requirements.

How the builder ships the server: ``render.server_files()`` copies envbuild/serve/ (relative
imports only) into a folder named ``SERVE_PACKAGE`` on the interpreter's path, which runs
``python -m envbuild_serve`` with the settings of envbuild/serve/config.py
(``ENVBUILD_MODEL_DIR`` at least) on ``render.PORT``; health is ``GET render.HEALTH_PATH``.
The source is valid Python 3.8, the oldest model Python served.

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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from packaging.requirements import Requirement as PkgRequirement
from packaging.version import InvalidVersion, Version

from envbuild.findings import Location
from envbuild.read import EnvSpec, ReqKind, Requirement

SERVING_SOURCE = "envbuild serving stack"

# the two distributions of the ``mlflow`` package; envbuild.infer.names holds the MLflow
# family for inference (importing it here would import infer, which imports resolve)
MLFLOW, MLFLOW_SKINNY = MLFLOW_DISTS = ("mlflow", "mlflow-skinny")

# The first mlflow-skinny release on PyPI (checked with `pip index versions`); older
# models need the full mlflow distribution for the same loader.
FIRST_SKINNY = Version("1.14.0")

# MLflow before 2.16 imports pkg_resources at ``import mlflow.pyfunc`` without requiring
# setuptools (mlflow/utils/requirements_utils.py, up to 2.15.1), and setuptools 82.0.0 is
# the first without pkg_resources (81 warns of its removal, hence <81, what that warning
# recommends; both read from the wheels); a uv venv has no setuptools of its own. Applied
# only where the model's environment names no setuptools version itself.
PKG_RESOURCES_UNTIL = Version("2.16.0")
SETUPTOOLS_WITH_PKG_RESOURCES = "setuptools<81"

# The package name the server is copied under (render.server_files).
SERVE_PACKAGE = "envbuild_serve"

# --mlflow: serve a declared ``mlflow`` as mlflow-skinny where nothing needs more, or keep it
MlflowChoice = Literal["skinny", "full"]
MLFLOW_CHOICES: tuple[MlflowChoice, ...] = ("skinny", "full")

_WHY = "added by envbuild so the image/venv can load and serve the model"


def _added(text: str, why: str = _WHY) -> Requirement:
    return Requirement(
        raw=text,
        kind=ReqKind.NAMED,
        requirement=PkgRequirement(text),
        location=Location(file=SERVING_SOURCE),
        reasons=(why,),
    )


def _version(mlflow_version: str | None) -> Version | None:
    if mlflow_version:
        with contextlib.suppress(InvalidVersion):
            return Version(mlflow_version)
    return None


def serving_requirements(mlflow_version: str | None) -> tuple[Requirement, ...]:
    """What the serving stack adds to a model whose requirements name no MLflow:
    mlflow-skinny at the model's version (full mlflow before 1.14), pandas and numpy."""
    version = _version(mlflow_version)
    mlflow = MLFLOW_SKINNY
    if version is not None:
        mlflow = f"{MLFLOW_SKINNY if version >= FIRST_SKINNY else MLFLOW}=={version}"
    return tuple(_added(text) for text in (mlflow, "pandas", "numpy"))


@dataclass(frozen=True, kw_only=True)
class ServingStack:
    """What goes to the resolver for serving, beside the model's own lines.

    ``swapped`` maps a declared line to the line sent instead (``mlflow`` -> ``mlflow-skinny``
    with the same specifier and location); ``added`` is what envbuild adds in every
    attempt (pandas, numpy; an MLflow line when the model names none); ``preferred`` is
    ``mlflow_version`` as ``==``, sent only in the first attempt."""

    swapped: tuple[tuple[Requirement, Requirement], ...] = ()
    added: tuple[Requirement, ...] = ()
    preferred: Requirement | None = None

    def lines(self, reqs: list[Requirement], *, prefer: bool) -> list[Requirement]:
        swap = {id(old): new for old, new in self.swapped}
        out = [swap.get(id(r), r) for r in reqs]
        names = {r.name for r in out if r.name}
        versioned = {r.name for r in out if r.name and _has_version(r)}
        # a serving package the model already names: the model's line decides; a bare
        # name (python_env.yaml's `- setuptools`) leaves a version bound of ours in force
        out.extend(s for s in self.added if s.name not in (versioned if _has_version(s) else names))
        if prefer and self.preferred is not None:
            out.append(self.preferred)
        return out

    def describe(self) -> str:
        parts = [f"{old.raw} as {new.raw}" for old, new in self.swapped]
        parts += [s.raw for s in self.added]
        if self.preferred is not None:
            parts.append(f"{self.preferred.raw} preferred")
        return ", ".join(parts)


def declared_mlflow(reqs: list[Requirement]) -> list[Requirement]:
    return [r for r in reqs if r.name in MLFLOW_DISTS and r.requirement is not None]


def model_mlflow_version(mlmodel_version: str | None, spec: EnvSpec) -> str | None:
    """The MLflow that serves the model: MLmodel's ``mlflow_version``, else the version the
    environment pins for ``mlflow`` or ``mlflow-skinny`` (old MLflow releases wrote no
    ``mlflow_version``, and hand-made folders drop it)."""
    if mlmodel_version:
        return mlmodel_version
    for req in spec.requirements:
        if req.name in MLFLOW_DISTS and req.pinned_version:
            return req.pinned_version
    return None


def _has_version(r: Requirement) -> bool:
    """A specifier or a URL: the line decides the version."""
    return r.requirement is not None and bool(r.requirement.specifier or r.requirement.url)


def _names_version(reqs: Sequence[Requirement], name: str) -> bool:
    """Whether ``reqs`` name ``name`` with a version (a specifier, or a URL)."""
    return any(r.name == name and _has_version(r) for r in reqs)


def serving_stack(
    mlflow_version: str | None,
    reqs: list[Requirement],
    *,
    mlflow: MlflowChoice = "skinny",
    decided: Sequence[Requirement] = (),
) -> ServingStack:
    """The serving lines for a model with requirement lines ``reqs`` (see the module doc);
    ``decided`` are other lines of the environment (python_env.yaml's build dependencies)
    whose versions envbuild does not second-guess."""
    version = _version(mlflow_version)
    declared = declared_mlflow(reqs)
    pandas_numpy = tuple(_added(text) for text in ("pandas", "numpy"))
    versions = [version] + [_version(r.pinned_version) for r in declared]
    old = any(v is not None and v < PKG_RESOURCES_UNTIL for v in versions)
    if old and not _names_version([*reqs, *decided], "setuptools"):
        pandas_numpy += (
            _added(
                SETUPTOOLS_WITH_PKG_RESOURCES,
                "MLflow before 2.16 imports pkg_resources, which setuptools 82 removed",
            ),
        )
    if not declared:
        added = serving_requirements(mlflow_version)
        if version is None:
            return ServingStack(added=added)
        # the model's version first; a conflict with the model's own lines falls back to
        # any release from that version on
        dist = added[0].name or MLFLOW_SKINNY
        return ServingStack(added=(_added(f"{dist}>={version}"), *pandas_numpy), preferred=added[0])
    swapped: list[tuple[Requirement, Requirement]] = []
    if mlflow == "skinny":
        for req in declared:
            assert req.requirement is not None
            if req.name != MLFLOW or not _skinny_can_serve(req.requirement):
                continue
            pkg = PkgRequirement(str(req.requirement))
            pkg.name = MLFLOW_SKINNY
            pkg.extras = set()
            new = replace(
                req,
                raw=str(pkg),
                requirement=pkg,
                reasons=(f"{req.raw!r} served by mlflow-skinny of the same version",),
            )
            swapped.append((req, new))
    preferred = None
    if version is not None and all(
        r.requirement is not None and r.requirement.specifier.contains(version, prereleases=True)
        for r in declared
    ):
        pins = {r.pinned_version for r in declared}
        if not any(pins):  # a bare or ranged declaration: the model's version is preferred
            swapped_names = {new.name for _, new in swapped}
            served = MLFLOW_SKINNY if MLFLOW_SKINNY in swapped_names else declared[0].name
            preferred = _added(
                f"{served}=={version}", "MLmodel's mlflow_version, preferred (not required)"
            )
    return ServingStack(swapped=tuple(swapped), added=pandas_numpy, preferred=preferred)


def _skinny_can_serve(req: PkgRequirement) -> bool:
    """mlflow-skinny exists from 1.14.0: a declaration that allows only older releases
    keeps the full distribution."""
    for spec in req.specifier:
        bound = _version(spec.version.removesuffix(".*"))
        if bound is None:
            continue
        if spec.operator in ("==", "===", "<=", "~=") and bound < FIRST_SKINNY:
            return False
        if spec.operator == "<" and bound <= FIRST_SKINNY:
            return False
    return True
