"""envbuild show MODEL"""

from __future__ import annotations

from envbuild import api
from envbuild._text import files_text, show_text
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    allow_file_option,
    common,
    env_from_option,
    exclude_option,
    model_argument,
    present,
)
from envbuild.sources import ModelSource


@main.command(epilog=EXIT_CODES_HELP)
@exclude_option
@allow_file_option
@env_from_option
@common
@model_argument
def show(
    model: ModelSource,
    env_from: str | None,
    exclude: tuple[str, ...],
    allow_files: tuple[str, ...],
    fmt: str,
    command: str,
) -> None:
    """Print what envbuild read from MODEL: flavors, loader, Python, requirements with their
    source file, signature and input example, and which files an image would carry (files
    nothing in the MLmodel uses, and what is left out and why). MODEL is a folder, or a
    runs:/, models:/ or artifact URI (downloaded through MLflow)."""
    result = api.show(model, env_from=env_from or "auto", exclude=exclude, allow_files=allow_files)
    text = f"source     {model.describe()}\n" if model.kind != "local" else ""
    text += show_text(result.folder) + files_text(result.files)
    present(result, fmt=fmt, command=command, text=text)
