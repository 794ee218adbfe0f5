"""envbuild lock MODEL"""

from __future__ import annotations

from pathlib import Path

import click

from envbuild import api
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    common,
    env_from_option,
    env_override_option,
    find_links_option,
    mlflow_option,
    model_argument,
    platform_option,
    present,
    python_version_option,
    torch_option,
)
from envbuild.resolve import LOCK_NAME, MlflowChoice, TorchChoice
from envbuild.sources import ModelSource


@main.command(epilog=EXIT_CODES_HELP)
@python_version_option
@platform_option("linux/amd64", "linux/amd64")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Write the lock here instead of MODEL/{LOCK_NAME}.",
)
@click.option("--dry-run", is_flag=True, help="Resolve and report; write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 when the existing lock is stale.")
@find_links_option
@click.option("--offline", is_flag=True, help="No network: only --find-links and uv's cache.")
@env_override_option
@click.option(
    "--serving/--no-serving",
    default=True,
    show_default=True,
    help="Lock the serving stack (MLflow as the model declares it, else mlflow-skinny at "
    "the model's version; pandas, numpy) too.",
)
@mlflow_option("skinny")
@torch_option("default")
@click.option(
    "--exclude-newer",
    metavar="DATE",
    help="Ignore files uploaded to the index after DATE (e.g. 2026-11-01T00:00:00Z): "
    "the same lock tomorrow.",
)
@env_from_option
@common
@model_argument
def lock(
    model: ModelSource,
    env_from: str | None,
    python_version: str | None,
    target_platform: str,
    output: Path | None,
    dry_run: bool,
    check: bool,
    find_links: tuple[Path, ...],
    offline: bool,
    env_override: Path | None,
    serving: bool,
    exclude_newer: str | None,
    mlflow: MlflowChoice,
    torch: TorchChoice,
    fmt: str,
    command: str,
) -> None:
    """Resolve MODEL's environment for the target Python and platform and write a fully
    pinned requirements.lock with --hash lines (pip install --require-hashes -r ...).

    A conflict is reported as findings naming the requirement lines (file:line) on each
    side and the chain of dependencies between them."""
    result = api.lock(
        model,
        env_from=env_from or "auto",
        python_version=python_version,
        platform=target_platform,
        output=output,
        dry_run=dry_run,
        check=check,
        find_links=find_links,
        offline=offline,
        env_override=env_override,
        serving=serving,
        exclude_newer=exclude_newer,
        mlflow=mlflow,
        torch=torch,
    )
    text = ""
    if result.lock is not None and dry_run:
        text = result.lock.text
    elif result.lock is not None:
        verb = "wrote" if result.written else ("up to date" if result.stale is False else "stale")
        text = (
            f"{verb} {result.path} ({len(result.lock.pins)} packages, {result.target.describe()})\n"
        )
    present(result, fmt=fmt, command=command, text=text)
