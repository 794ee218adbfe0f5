"""What the builder adds to a model's environment so the image or venv can serve it.

The server (envbuild/serve/) needs MLflow's pyfunc loader, which ships in the small
``mlflow-skinny`` distribution, at the model's own MLflow version, plus pandas and numpy
for tabular payloads. The resolver locks these together with the model's requirements.
"""

from __future__ import annotations

import contextlib

from packaging.requirements import Requirement as PkgRequirement
from packaging.version import InvalidVersion, Version

from envbuild.findings import Location
from envbuild.spec import ReqKind, Requirement

SERVING_SOURCE = "envbuild serving stack"


def serving_requirements(mlflow_version: str | None) -> tuple[Requirement, ...]:
    mlflow = "mlflow-skinny"
    if mlflow_version:
        with contextlib.suppress(InvalidVersion):
            mlflow += f"=={Version(mlflow_version)}"
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
