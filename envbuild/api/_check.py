"""``envbuild check``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envbuild.api._common import ModelLocation
from envbuild.resolve import MlflowChoice, TorchChoice
from envbuild.sources import ModelSource


def check(
    models: Sequence[ModelLocation],
    *,
    ignore: Sequence[str] = (),
    strict: bool = False,
    offline: bool = False,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    env_override: Path | None = None,
    find_links: Sequence[Path] = (),
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    jobs: int = 0,
    env_from: str = "auto",
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
    secret_file: Path | None = None,
) -> Any:
    """The pre-deploy check of every model in ``models`` (in parallel): an
    ``envbuild.check.Report`` whose ``exit_code`` a pipeline can trust. ``mlflow`` and
    ``torch`` shape the resolution as in :func:`envbuild.api.lock`; ``secret_file`` holds
    the index credentials the build will be given (as for :func:`envbuild.api.image`), so
    EB413 asks the indexes with them."""
    from envbuild.check import run_check
    from envbuild.check.settings import options_from
    from envbuild.check.stages import STAGES

    options = options_from(
        {},
        ignore=tuple(ignore),
        strict=strict,
        offline=offline,
        python_version=python_version,
        platform=platform,
        env_override=env_override,
        find_links=tuple(find_links),
        exclude=tuple(exclude),
        allow_files=tuple(allow_files),
        tracking_uri=tracking_uri,
        env_from=env_from,
        mlflow=mlflow,
        torch=torch,
        secret_file=secret_file,
    )
    locations = [m.uri if isinstance(m, ModelSource) else os.fspath(m) for m in models]
    return run_check(locations, options, STAGES, jobs=jobs)
