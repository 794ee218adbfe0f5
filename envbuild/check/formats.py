"""The report as text, JSON (the envelope), JUnit XML or GitHub annotations."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from envbuild.check.report import ModelReport, OutputFormat, Report
from envbuild.findings import Finding, Severity


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
