"""The command line: click commands that unpack options and call the library.

Exit codes: 0 ok; 1 findings at error level or a failed build/resolve/smoke test; 2 usage
or input error; 3 environment error (no Docker daemon, missing interpreter).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

import click

from envbuild import __version__
from envbuild.errors import EnvbuildError
from envbuild.findings import Finding, Severity
from envbuild.output import dumps, envelope

log = logging.getLogger("envbuild")

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  findings at error level, or a failed resolve, build or smoke test
  2  usage or input error (bad flag, unreadable or malformed model folder)
  3  environment error (no Docker daemon, missing Python interpreter)
"""

F = TypeVar("F", bound=Callable[..., Any])


def use_color(ctx_stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(ctx_stream, "isatty") and ctx_stream.isatty()


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("envbuild")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def format_finding(f: Finding, color: bool = False) -> str:
    label = f.severity.value.upper()
    if color:
        fg = {"error": "red", "unsafe": "magenta", "warning": "yellow", "info": "blue"}[
            f.severity.value
        ]
        label = click.style(label, fg=fg, bold=True)
    line = f"{label} {f.code} {f.one_line()}"
    if f.hint:
        line += f"\n  TIP {f.hint}"
    return line


def make_common(formats: tuple[str, ...] = ("text", "json")) -> Callable[[F], F]:
    """Options every command shares: --format (from ``formats``), -v, -q; and the one
    place that turns an EnvbuildError into output and an exit code."""

    def decorate(func: F) -> F:
        @click.option(
            "--format",
            "fmt",
            type=click.Choice(list(formats)),
            default="text",
            show_default=True,
            help="Output format on stdout.",
        )
        @click.option(
            "-v", "--verbose", count=True, help="More detail on stderr; tracebacks on errors."
        )
        @click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
        @functools.wraps(func)
        def wrapper(*args: Any, fmt: str, verbose: int, quiet: bool, **kwargs: Any) -> Any:
            _setup_logging(verbose, quiet)
            ctx = click.get_current_context()
            command = ctx.command_path.replace(
                ctx.find_root().info_name or "envbuild", "envbuild", 1
            )
            try:
                return func(*args, fmt=fmt, command=command, **kwargs)
            except EnvbuildError as exc:
                if verbose:
                    log.exception("traceback")
                emit_error(exc, fmt=fmt, command=command)
                sys.exit(int(exc.exit_code))

        return wrapper  # type: ignore[return-value]

    return decorate


common = make_common()


def emit_error(exc: EnvbuildError, *, fmt: str, command: str) -> None:
    problems = list(exc.problems)
    if fmt == "json":
        click.echo(
            dumps(
                envelope(
                    command,
                    findings=[*exc.earlier, *problems],
                    error=problems[0] if problems else None,
                    exit_code=int(exc.exit_code),
                )
            ),
            nl=False,
        )
    else:
        emit_findings(exc.earlier)
    color = use_color(sys.stderr)
    for problem in problems:
        click.echo(format_finding(problem, color), err=True)


def emit_findings(findings: Iterable[Finding]) -> None:
    color = use_color(sys.stderr)
    for f in findings:
        if f.severity is Severity.INFO and not log.isEnabledFor(logging.INFO):
            continue  # -q: warnings and errors only
        click.echo(format_finding(f, color), err=True)


class Presentable(Protocol):
    """What the library API returns (envbuild.api): JSON, findings and an exit code."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def exit_code(self) -> int: ...

    def to_json(self) -> dict[str, Any] | None: ...


def present(result: Presentable, *, fmt: str, command: str, text: str) -> NoReturn:
    """The one tail of every command: the JSON envelope, or ``text`` on stdout and the
    findings on stderr; then exit with the result's code."""
    code = result.exit_code
    if fmt == "json":
        doc = envelope(command, result=result.to_json(), findings=result.findings, exit_code=code)
        click.echo(dumps(doc), nl=False)
    else:
        if text:
            click.echo(text, nl=False)
        emit_findings(result.findings)
    sys.exit(code)


# One module per command under envbuild/commands/; each registers itself on `main` when
# imported. Imported on demand, so `envbuild lock` does not pay for docker or jinja2.
COMMANDS = ("show", "infer", "lock", "image", "venv", "check")


def _load(name: str) -> None:
    if importlib.util.find_spec(f"envbuild.commands.{name}") is not None:
        importlib.import_module(f"envbuild.commands.{name}")


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


if __name__ == "__main__":  # pragma: no cover
    main()
