"""``envbuild check``: gather what the stages find into one report per model.

check holds no analysis of its own: it calls the reader, the inferrer's static scan, the
resolver and the override comparison, then filters (--ignore), grades (--strict) and
formats (text, json, junit, github) what they found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from envbuild.check.formats import format_github, format_junit, format_text, render_report
from envbuild.check.report import (
    CheckOptions,
    ModelReport,
    OutputFormat,
    Report,
    Stage,
    ignored,
)
from envbuild.check.settings import SETTINGS_KEYS, load_settings
from envbuild.errors import EnvbuildError, ExitCode
from envbuild.findings import Finding, unique
from envbuild.safety import LOADING_COMMANDS, unsafe

__all__ = [
    "SETTINGS_KEYS",
    "CheckOptions",
    "ModelReport",
    "OutputFormat",
    "Report",
    "Stage",
    "check_model",
    "format_github",
    "format_junit",
    "format_text",
    "ignored",
    "load_settings",
    "render_report",
    "run_check",
]


def check_model(location: str, options: CheckOptions, stages: Sequence[Stage]) -> ModelReport:
    """Read one model and run every stage on it; an unreadable folder is a report with
    ``input_error`` set, so other models in the same run are still checked."""
    import time

    from envbuild.read import read_model

    started = time.perf_counter()
    source: dict[str, Any] = {}
    try:
        path, source = _materialize(location, options)
        folder = read_model(path, env_from=options.env_from)
    except EnvbuildError as exc:
        return ModelReport(
            model=location,
            findings=tuple(_filter(exc.problems, options)),
            input_error=exc.exit_code == ExitCode.INPUT,
            seconds=time.perf_counter() - started,
            source=source,
        )
    findings: list[Finding] = list(folder.findings)
    skipped: list[str] = []
    for stage in stages:
        try:
            found, notes = stage(folder, options)
        except EnvbuildError as exc:
            if exc.exit_code == ExitCode.INPUT:
                return ModelReport(
                    model=location,
                    findings=tuple(_filter([*findings, *exc.problems], options)),
                    input_error=True,
                    seconds=time.perf_counter() - started,
                    source=source,
                )
            found, notes = list(exc.problems), []
        findings.extend(found)
        skipped.extend(notes)
    return ModelReport(
        model=location,
        findings=tuple(_filter(unique(findings), options)),
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
        source=source,
        # from every finding, ignored or not: --ignore does not make image load the model
        refuses=LOADING_COMMANDS if unsafe(findings) else (),
    )


def _materialize(location: str, options: CheckOptions) -> tuple[Path, dict[str, Any]]:
    try:
        from envbuild.sources import materialize
    except ImportError:  # pragma: no cover - source.py ships with envbuild
        return Path(location), {}
    src = materialize(location, tracking_uri=options.tracking_uri)
    return src.path, src.provenance()


def _filter(findings: Iterable[Finding], options: CheckOptions) -> list[Finding]:
    return [f for f in findings if not ignored(f.code, options.ignore)]


def run_check(
    locations: Sequence[str], options: CheckOptions, stages: Sequence[Stage], *, jobs: int = 0
) -> Report:
    """Check several models in parallel (threads: the stages wait on uv and I/O)."""
    workers = jobs or min(8, max(1, len(locations)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reports = list(pool.map(lambda loc: check_model(loc, options, stages), locations))
    return Report(models=tuple(reports), options=options)
