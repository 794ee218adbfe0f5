"""``envbuild check``: gather what the stages find into one report per model.

check holds no analysis of its own: it calls the reader, the inferrer's static scan, the
resolver and the override comparison, then filters (--ignore), grades (--strict) and
formats (text, json, junit, github) what they found.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envbuild._compat import tomllib
from envbuild.errors import EnvbuildError, ExitCode, InputError
from envbuild.findings import Finding, Location, Severity, failing, unique
from envbuild.safety import LOADING_COMMANDS, unsafe

log = logging.getLogger("envbuild")

OutputFormat = Literal["text", "json", "junit", "github"]


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    ignore: frozenset[str] = frozenset()
    strict: bool = False
    offline: bool = False
    python_version: str | None = None
    platform: str = "linux/amd64"
    env_override: Path | None = None
    find_links: tuple[Path, ...] = ()
    tracking_uri: str | None = None
    exclude: tuple[str, ...] = ()  # model files left out of the image (gitignore syntax)
    allow_files: tuple[str, ...] = ()  # secret-looking files allowed by name


@dataclass(frozen=True, kw_only=True)
class ModelReport:
    model: str
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...] = ()  # stages not run, and why (e.g. --offline)
    input_error: bool = False  # the folder could not be read at all (exit 2)
    seconds: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    refuses: tuple[str, ...] = ()  # commands that would refuse to load the model

    def failing(self, strict: bool) -> list[Finding]:
        return failing(self.findings, strict=strict)

    def to_json(self, strict: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": not self.input_error and not self.failing(strict),
            "input_error": self.input_error,
            "findings": [f.to_json() for f in self.findings],
            "skipped": list(self.skipped),
            "seconds": round(self.seconds, 3),
            "source": self.source,
            "refuses": list(self.refuses),
        }


@dataclass(frozen=True, kw_only=True)
class Report:
    models: tuple[ModelReport, ...]
    options: CheckOptions

    @property
    def exit_code(self) -> ExitCode:
        if any(m.input_error for m in self.models):
            return ExitCode.INPUT
        if any(m.failing(self.options.strict) for m in self.models):
            return ExitCode.FINDINGS
        return ExitCode.OK

    def findings(self) -> list[Finding]:
        return [f for m in self.models for f in m.findings]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {s.value: 0 for s in Severity}
        for f in self.findings():
            counts[f.severity.value] += 1
        return {
            "models": [m.to_json(self.options.strict) for m in self.models],
            "counts": counts,
            "strict": self.options.strict,
            "offline": self.options.offline,
            "ignored": sorted(self.options.ignore),
        }


# --------------------------------------------------------------------------------------
# settings from pyproject.toml

SETTINGS_KEYS = {
    "ignore": list,
    "strict": bool,
    "offline": bool,
    "python-version": str,
    "platform": str,
    "env-override": str,
    "find-links": list,
    "format": str,
    "exclude": list,
    "allow-file": list,
}


def load_settings(start: Path) -> tuple[dict[str, Any], Path | None]:
    """``[tool.envbuild]`` from the nearest pyproject.toml at or above ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise InputError(
                    f"not valid TOML: {exc}",
                    hint="fix pyproject.toml",
                    location=Location(file=str(candidate)),
                    code="EB130",
                ) from None
            table = data.get("tool", {}).get("envbuild")
            if table is None:
                return {}, candidate
            if not isinstance(table, dict):
                raise InputError(
                    "[tool.envbuild] must be a table",
                    location=Location(file=str(candidate), field="tool.envbuild"),
                    code="EB130",
                )
            for key, value in table.items():
                kind = SETTINGS_KEYS.get(key)
                if kind is None:
                    raise InputError(
                        f"unknown setting {key!r}",
                        hint="known settings: " + ", ".join(sorted(SETTINGS_KEYS)),
                        location=Location(file=str(candidate), field=f"tool.envbuild.{key}"),
                        code="EB130",
                    )
                if not isinstance(value, kind):
                    raise InputError(
                        f"setting {key!r} must be a {kind.__name__}",
                        location=Location(file=str(candidate), field=f"tool.envbuild.{key}"),
                        code="EB130",
                    )
            return table, candidate
    return {}, None


# --------------------------------------------------------------------------------------
# running the stages

Stage = Callable[[Any, CheckOptions], tuple[list[Finding], list[str]]]


def check_model(location: str, options: CheckOptions, stages: Sequence[Stage]) -> ModelReport:
    """Read one model and run every stage on it; an unreadable folder is a report with
    ``input_error`` set, so other models in the same run are still checked."""
    import time

    from envbuild.read import read_model

    started = time.perf_counter()
    source: dict[str, Any] = {}
    try:
        path, source = _materialize(location, options)
        folder = read_model(path)
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


def ignored(code: str, patterns: Iterable[str]) -> bool:
    """``EB306`` ignores that code; ``EB3xx`` (x as a wildcard digit) a whole stage."""
    return any(
        len(p) == len(code) and all(pc in "xX" or pc == cc for pc, cc in zip(p, code, strict=True))
        for p in patterns
    )


def run_check(
    locations: Sequence[str], options: CheckOptions, stages: Sequence[Stage], *, jobs: int = 0
) -> Report:
    """Check several models in parallel (threads: the stages wait on uv and I/O)."""
    workers = jobs or min(8, max(1, len(locations)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reports = list(pool.map(lambda loc: check_model(loc, options, stages), locations))
    return Report(models=tuple(reports), options=options)


# --------------------------------------------------------------------------------------
# output formats


def _model_file(report: ModelReport, f: Finding) -> str | None:
    """A path a CI system can annotate: the model folder joined with the finding's file."""
    if not f.location.file:
        return None
    p = Path(f.location.file)
    if p.is_absolute() or report.source.get("kind", "local") != "local":
        return f.location.file
    return (Path(report.model) / p).as_posix()


_COLORS = {
    Severity.ERROR: "red",
    Severity.UNSAFE: "magenta",
    Severity.WARNING: "yellow",
    Severity.INFO: "blue",
}


def _style(text: str, fg: str) -> str:
    import click

    return click.style(text, fg=fg, bold=True)


def format_text(report: Report, *, color: bool = False) -> str:
    lines: list[str] = []
    for m in report.models:
        failing = m.failing(report.options.strict)
        status = "INPUT ERROR" if m.input_error else ("FAIL" if failing else "ok")
        if color:
            status = _style(status, "green" if status == "ok" else "red")
        lines.append(f"{m.model}: {status} ({len(m.findings)} finding(s), {m.seconds:.2f}s)")
        for f in m.findings:
            where = str(f.location)
            label = f"{f.severity.value.upper():7}"
            if color:
                label = _style(label, _COLORS[f.severity])
            lines.append(f"  {label} {f.code} {where + ': ' if where else ''}{f.message}")
            if f.hint:
                lines.append(f"          TIP {f.hint}")
        for note in m.skipped:
            lines.append(f"  skipped: {note}")
        if m.refuses:
            lines.append(
                f"  refuses: {', '.join(m.refuses)} would not load this model (--trust-model)"
            )
    return "\n".join(lines) + "\n"


def _escape_gh(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands: ``::error file=...,line=...::message``."""
    lines = []
    for m in report.models:
        for f in m.findings:
            level = {
                Severity.ERROR: "error",
                Severity.UNSAFE: "error",
                Severity.WARNING: "error" if report.options.strict else "warning",
                Severity.INFO: "notice",
            }[f.severity]
            props = []
            path = _model_file(m, f)
            if path:
                props.append(f"file={_escape_gh(path, prop=True)}")
            if f.location.line:
                props.append(f"line={f.location.line}")
            props.append(f"title={_escape_gh(f.code, prop=True)}")
            message = f.message + (f" (tip: {f.hint})" if f.hint else "")
            lines.append(f"::{level} {','.join(props)}::{_escape_gh(message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_junit(report: Report) -> str:
    """JUnit XML: a testsuite per model, a testcase per finding code group; failures for
    the findings that fail the run."""
    suites = ET.Element("testsuites", name="envbuild check")
    total_tests = total_failures = 0
    for m in report.models:
        failing = set(map(id, m.failing(report.options.strict)))
        suite = ET.SubElement(suites, "testsuite", name=m.model, time=f"{m.seconds:.3f}")
        tests = failures = 0
        if not m.findings:
            ET.SubElement(suite, "testcase", classname=m.model, name="envbuild check")
            tests += 1
        for f in m.findings:
            tests += 1
            name = f"{f.code} {f.location}" if str(f.location) else f.code
            case = ET.SubElement(suite, "testcase", classname=m.model, name=name)
            if id(f) in failing or m.input_error:
                failures += 1
                failure = ET.SubElement(case, "failure", type=f.code, message=f.message)
                failure.text = f"{f.one_line()}\n{f.hint}".strip()
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{f.severity.value}: {f.one_line()}"
        for note in m.skipped:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=m.model, name=f"skipped: {note}")
            ET.SubElement(case, "skipped", message=note)
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        total_tests += tests
        total_failures += failures
    suites.set("tests", str(total_tests))
    suites.set("failures", str(total_failures))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def render_report(report: Report, fmt: OutputFormat, *, color: bool = False) -> str:
    if fmt == "junit":
        return format_junit(report)
    if fmt == "github":
        return format_github(report)
    return format_text(report, color=color)
