"""click options several commands share, declared once (as pip-tools does)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

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


def platform_option(default: str | None, help_default: str) -> Callable[[F], F]:
    return click.option(
        "--platform",
        "target_platform",
        type=click.Choice(PLATFORM_CHOICES),
        default=default,
        help=f"Target platform (default: {help_default}).",
    )


def canonical_command(
    command: str, model: str, *options: tuple[str, str | bool | Sequence[str] | None]
) -> str:
    """The command line a generated file's header or label names, built from the parsed
    parameters rather than the caller's argv: options in the order given here, whatever
    order they were typed in, so the same inputs give the same bytes. ``(flag, True)`` is
    a switch, a string a value, a sequence repeats the flag; False, None and empty are
    left out. Credentials in values are masked."""
    from envbuild.source import safe_uri

    parts = [command, shlex.quote(model)]
    for flag, value in options:
        if value is True:
            parts.append(flag)
        elif isinstance(value, str):
            parts += [flag, shlex.quote(value)]
        elif value:
            for item in value:
                parts += [flag, shlex.quote(item)]
    return safe_uri(" ".join(parts))
