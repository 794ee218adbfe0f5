"""The command line: click commands that unpack options and call the library.

Exit codes: 0 ok; 1 findings at error level or a failed build/resolve/smoke test; 2 usage
or input error; 3 environment error (no Docker daemon, missing interpreter).
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from envbuild import __version__
from envbuild.cli.common import EXIT_CODES_HELP

# One module per command in this package; each registers itself on `main` when
# imported. Imported on demand, so `envbuild lock` does not pay for docker or jinja2.
COMMANDS = ("show", "infer", "lock", "image", "venv", "check")


def _load(name: str) -> None:
    if importlib.util.find_spec(f"envbuild.cli.{name}") is not None:
        importlib.import_module(f"envbuild.cli.{name}")


class _LazyGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            _load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in COMMANDS:
            _load(name)
        return super().list_commands(ctx)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="envbuild")
def main() -> None:
    """Turn an MLflow model folder into an environment that provably runs it."""
