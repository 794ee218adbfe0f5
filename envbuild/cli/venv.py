"""envbuild venv MODEL --path DIR"""

from __future__ import annotations

from pathlib import Path

import click

from envbuild import api
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    common,
    env_from_option,
    find_links_option,
    mlflow_option,
    model_argument,
    present,
    torch_option,
    trust_model_option,
)
from envbuild.resolve import MlflowChoice, TorchChoice
from envbuild.sources import ModelSource


@main.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--path",
    "path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the virtualenv.",
)
@click.option(
    "--python",
    "python",
    help="Interpreter path or X.Y (default: the model's Python, found on PATH or in pyenv).",
)
@find_links_option
@click.option(
    "--smoke/--no-smoke",
    default=True,
    show_default=True,
    help="Predict on the input example in the venv and compare with stored predictions.",
)
@mlflow_option("skinny")
@torch_option("default")
@trust_model_option
@env_from_option
@common
@model_argument
def venv(
    model: ModelSource,
    env_from: str | None,
    path: Path,
    python: str | None,
    find_links: tuple[Path, ...],
    smoke: bool,
    mlflow: MlflowChoice,
    torch: TorchChoice,
    trust_model: bool,
    fmt: str,
    command: str,
) -> None:
    """Create a virtualenv at --path with MODEL's locked environment (uv), the serving
    stack and envbuild's server, then prove it with a prediction in that venv. Re-running
    on an unchanged model only checks a stamp file."""
    result = api.venv(
        model,
        env_from=env_from or "auto",
        path=path,
        python=python,
        find_links=find_links,
        smoke=smoke,
        trust_model=trust_model,
        mlflow=mlflow,
        torch=torch,
    )
    text = ""
    made = result.venv
    if made is not None:
        state = "unchanged (stamp matches)" if made.reused else "ready"
        text = f"venv {made.path}: Python {made.python}, {state} in {made.seconds:.1f} s\n"
        if made.smoke:
            kind = (made.smoke.sandbox or {}).get("kind")
            text += f"smoke ok ({made.smoke.proof}, {kind} sandbox): {made.smoke.message}\n"
    present(result, fmt=fmt, command=command, text=text)
