"""envbuild check MODEL [MODEL ...]"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from envbuild.check import load_settings, render_report, run_check
from envbuild.check.settings import options_from
from envbuild.check.stages import STAGES
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    allow_file_option,
    env_from_option,
    env_override_option,
    exclude_option,
    find_links_option,
    make_common,
    mlflow_option,
    platform_option,
    python_version_option,
    torch_option,
    use_color,
)
from envbuild.output import dumps, envelope
from envbuild.resolve import MlflowChoice, TorchChoice


def _model_folders(arguments: tuple[str, ...]) -> list[str]:
    """Files (as pre-commit passes them) become their model folder: the nearest parent
    holding an MLmodel. Folders and URIs pass through; duplicates are dropped."""
    out: list[str] = []
    for arg in arguments:
        path = Path(arg)
        if path.is_file():
            found = next(
                (p for p in (path.parent, *path.parent.parents) if (p / "MLmodel").is_file()), None
            )
            if found is None:
                continue  # a requirements.txt that belongs to no model folder
            arg = str(found)
        if arg not in out:
            out.append(arg)
    return out


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="CODE[,CODE]",
    help="Finding codes to ignore (EB305, or a group such as EB3xx).",
)
@click.option("--strict", is_flag=True, default=None, help="Warnings fail the check too.")
@click.option(
    "--offline", is_flag=True, default=None, help="Skip what needs the package index, and say so."
)
@python_version_option
@platform_option(None, "linux/amd64, or [tool.envbuild] platform")
@env_from_option
@env_override_option
@find_links_option
@exclude_option
@allow_file_option
@mlflow_option(None)
@torch_option(None)
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking server for runs:/ and models:/ URIs.",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Index URLs with credentials, one a line, as envbuild image will be given them: "
    "EB413 asks the indexes with these.",
)
@click.option(
    "-j", "--jobs", type=int, default=0, help="Models checked at once (default: up to 8)."
)
@make_common(("text", "json", "junit", "github"))
def check(
    models: tuple[str, ...],
    ignore: tuple[str, ...],
    strict: bool | None,
    offline: bool | None,
    python_version: str | None,
    target_platform: str | None,
    env_from: str | None,
    env_override: Path | None,
    find_links: tuple[Path, ...],
    exclude: tuple[str, ...],
    allow_files: tuple[str, ...],
    mlflow: MlflowChoice | None,
    torch: TorchChoice | None,
    tracking_uri: str | None,
    secret_file: Path | None,
    jobs: int,
    fmt: str,
    command: str,
) -> None:
    """Check that each MODEL will deploy: the MLmodel contract, path safety, signature and
    input example, environment files, undeclared dependencies, resolution for the target
    Python and platform, drift from the trained versions, the workspace override, unsafe
    pickles, and what the image would carry: secret-looking files, Git LFS pointers and
    files nothing in the MLmodel uses. Settings may come from [tool.envbuild] in pyproject.toml."""
    settings, _ = load_settings(Path.cwd())
    source = click.get_current_context().get_parameter_source("fmt")
    explicit = source is not None and source.name != "DEFAULT"
    chosen = fmt if explicit else settings.get("format", fmt)
    options = options_from(
        settings,
        ignore=ignore,
        strict=strict,
        offline=offline,
        python_version=python_version,
        platform=target_platform,
        env_override=env_override,
        find_links=find_links,
        exclude=exclude,
        allow_files=allow_files,
        tracking_uri=tracking_uri,
        env_from=env_from,
        mlflow=mlflow,
        torch=torch,
        secret_file=secret_file,
    )
    folders = _model_folders(models)
    if not folders:
        sys.exit(0)
    report = run_check(folders, options, STAGES, jobs=jobs)
    code = int(report.exit_code)
    if chosen == "json":
        click.echo(
            dumps(
                envelope(
                    command, result=report.to_json(), findings=report.findings(), exit_code=code
                )
            ),
            nl=False,
        )
    else:
        click.echo(render_report(report, chosen, color=use_color(sys.stdout)), nl=False)  # type: ignore[arg-type]
    sys.exit(code)
