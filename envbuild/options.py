"""click options several commands share, declared once (as pip-tools does)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from envbuild.sources import materialize

F = TypeVar("F", bound=Callable[..., Any])

PLATFORM_CHOICES = ("linux/amd64", "linux/arm64")

python_version_option = click.option(
    "--python-version",
    default=None,
    help="Target Python X.Y[.Z] (default: the model's; need not be installed).",
)
env_override_option = click.option(
    "--env-override",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Workspace environment YAML (Azure ML style: image + conda_file) used instead of "
    "the model's environment.",
)
find_links_option = click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Also resolve from the wheels in DIR (a wheelhouse, CPU builds of torch); repeatable.",
)

exclude_option = click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave model files matching PATTERN (gitignore syntax, as in the model folder's "
    ".envbuildignore) out of the image; repeatable.",
)
allow_file_option = click.option(
    "--allow-file",
    "allow_files",
    multiple=True,
    metavar="PATH",
    help="Copy this model file (path inside the folder) although it looks like a secret or "
    "is an unused notebook; repeatable.",
)


def platform_option(default: str | None, help_default: str) -> Callable[[F], F]:
    return click.option(
        "--platform",
        "target_platform",
        type=click.Choice(PLATFORM_CHOICES),
        default=default,
        help=f"Target platform (default: {help_default}).",
    )


trust_model_option = click.option(
    "--trust-model",
    is_flag=True,
    help="Load and run the model even though the static scan calls it unsafe (EB501, EB503, "
    "EB502 across Python minors). Printed in the report and labelled on the image.",
)


def model_argument(func: F) -> F:
    """Add the MODEL argument and the options that locate it; call ``func`` with
    ``model=`` a ModelSource. Put it *below* ``@common`` so that its errors become
    envbuild's one-line output::

        @main.command()
        @common
        @model_argument
        def show(model: ModelSource, fmt: str, command: str) -> None: ...
    """

    @click.argument("model", metavar="MODEL")
    @click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        show_envvar=True,
        help="MLflow tracking server for runs:/ and models:/ MODELs.",
    )
    @click.option(
        "--registry-uri",
        envvar="MLFLOW_REGISTRY_URI",
        show_envvar=True,
        help="MLflow model registry, if not the tracking server.",
    )
    @click.option(
        "--cache-dir",
        envvar="ENVBUILD_CACHE_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Where downloaded models are kept [default: ~/.cache/envbuild/models].",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        model: str,
        tracking_uri: str | None,
        registry_uri: str | None,
        cache_dir: Path | None,
        **kwargs: Any,
    ) -> Any:
        source = materialize(
            model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
        )
        return func(*args, model=source, **kwargs)

    return cast(F, wrapper)
