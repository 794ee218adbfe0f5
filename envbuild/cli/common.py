"""What every command shares: the options (declared once, as pip-tools does), the MODEL
argument, and the one path from a result or an error to output and an exit code."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar, cast

import click

from envbuild.errors import EnvbuildError
from envbuild.findings import Finding, Severity
from envbuild.output import dumps, envelope
from envbuild.resolve import MLFLOW_CHOICES, TORCH_CHOICES
from envbuild.sources import materialize
from envbuild.versions import PLATFORMS

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


python_version_option = click.option(
    "--python-version",
    default=None,
    help="Target Python X.Y[.Z] (default: the model's; need not be installed).",
)
env_from_option = click.option(
    "--env-from",
    "env_from",
    type=click.Choice(["auto", "conda", "requirements"]),
    default=None,
    help="The model's environment file to follow: conda (conda.yaml, as Azure ML and "
    "MLflow's conda manager build), requirements (python_env.yaml + requirements.txt, "
    "MLflow's virtualenv path), or auto (default: the virtualenv path, unless only "
    "conda.yaml agrees with the versions MLmodel records). Disagreements are EB113.",
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


def mlflow_option(default: str | None) -> Callable[[F], F]:
    return click.option(
        "--mlflow",
        "mlflow",
        type=click.Choice(MLFLOW_CHOICES),
        default=default,
        help="skinny (default): serve a declared mlflow with mlflow-skinny of the same "
        "version unless the model needs something only full MLflow brings; full: keep it.",
    )


def torch_option(default: str | None) -> Callable[[F], F]:
    return click.option(
        "--torch",
        "torch",
        type=click.Choice(TORCH_CHOICES),
        default=default,
        help="cpu: lock torch's CPU build (torch-*+cpu wheels from --find-links, else the "
        "PyTorch CPU index) for a small image; default: what the index gives (PyPI's Linux "
        "torch is a CUDA build).",
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
        type=click.Choice(PLATFORMS),
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
