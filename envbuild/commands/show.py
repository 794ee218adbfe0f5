"""envbuild show MODEL"""

from __future__ import annotations

import sys

import click

from envbuild._text import show_text
from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.model import read_model
from envbuild.output import dumps, envelope


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("model", type=click.Path(file_okay=True, dir_okay=True, path_type=str))
@common
def show(model: str, fmt: str, command: str) -> None:
    """Print what envbuild read from MODEL: flavors, loader, Python, requirements with their
    source file, signature and input example."""
    folder = read_model(model)
    code = exit_for(folder.findings)
    if fmt == "json":
        click.echo(
            dumps(
                envelope(command, result=folder.to_json(), findings=folder.findings, exit_code=code)
            ),
            nl=False,
        )
    else:
        click.echo(show_text(folder), nl=False)
        emit_findings(folder.findings)
    sys.exit(code)
