"""envbuild show MODEL"""

from __future__ import annotations

import sys

import click

from envbuild._text import files_text, show_text
from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.contents import select
from envbuild.model import read_model
from envbuild.options import allow_file_option, exclude_option, model_argument
from envbuild.output import dumps, envelope
from envbuild.sources import ModelSource


@main.command(epilog=EXIT_CODES_HELP)
@exclude_option
@allow_file_option
@common
@model_argument
def show(
    model: ModelSource,
    exclude: tuple[str, ...],
    allow_files: tuple[str, ...],
    fmt: str,
    command: str,
) -> None:
    """Print what envbuild read from MODEL: flavors, loader, Python, requirements with their
    source file, signature and input example, and which files an image would carry (files
    nothing in the MLmodel uses, and what is left out and why). MODEL is a folder, or a
    runs:/, models:/ or artifact URI (downloaded through MLflow)."""
    folder = read_model(model.path)
    selection = select(folder, exclude=exclude, allow_files=allow_files)
    code = exit_for(folder.findings)
    if fmt == "json":
        result = {
            **folder.to_json(),
            "files": selection.to_json(),
            "source": model.provenance(),
        }
        click.echo(
            dumps(envelope(command, result=result, findings=folder.findings, exit_code=code)),
            nl=False,
        )
    else:
        if model.kind != "local":
            click.echo(f"source     {model.describe()}")
        click.echo(show_text(folder), nl=False)
        click.echo(files_text(selection), nl=False)
        emit_findings(folder.findings)
    sys.exit(code)
