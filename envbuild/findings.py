"""Findings: what a stage found, with a stable code, a severity, a place and a hint.

Codes are grouped by stage (see ``CODES`` and the README table):
EB1xx reader, EB2xx inferrer, EB3xx resolver, EB4xx builder, EB5xx safety, EB6xx model
source, EB8xx failed operations, EB9xx machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from envbuild._compat import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    UNSAFE = "unsafe"  # an unsafe pickle global: fails by default, a class of its own
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where: a file (relative to the model folder when inside it), a field path such as
    ``dependencies[3].pip[1]`` and a 1-based line, each when known."""

    file: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Finding:
    code: str
    severity: Severity
    message: str
    hint: str = ""
    location: Location = Location()

    def one_line(self) -> str:
        where = str(self.location)
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint,
            "file": self.location.file,
            "field": self.location.field,
            "line": self.location.line,
        }


_DECLARED: dict[str, Code] = {}


@dataclass(frozen=True)
class Code:
    """A finding code, declared once by the stage that emits it: its severity and the
    summary the README table shows. ``EB306.at(location, message, hint=...)`` makes a
    finding; ``also`` names the other severities some of its findings carry (a different
    ``severity=`` is a programming error)."""

    code: str
    severity: Severity
    summary: str
    also: tuple[Severity, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        earlier = _DECLARED.setdefault(self.code, self)
        if earlier != self:
            raise ValueError(f"{self.code} is declared twice, differently")

    def at(
        self,
        location: Location,
        message: str,
        *,
        hint: str = "",
        severity: Severity | None = None,
    ) -> Finding:
        if severity is None:
            severity = self.severity
        elif severity is not self.severity and severity not in self.also:
            raise ValueError(f"{self.code} is not declared with severity {severity.value}")
        return Finding(
            code=self.code, severity=severity, message=message, hint=hint, location=location
        )


def table(*codes: Code) -> dict[str, str]:
    """A stage's ``CODES``: code to summary, for ``envbuild.codes`` and the README."""
    return {c.code: c.summary for c in codes}


def declared() -> dict[str, Code]:
    """Every code declared so far (by the modules imported so far)."""
    return dict(_DECLARED)


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """Each finding once, in order: the same file can be read twice (python_env.yaml's
    ``-r requirements.txt`` and requirements.txt itself), a path named by two flavors."""
    seen: set[tuple[str, str | None, int | None, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.location.file, f.location.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def failing(findings: Iterable[Finding], *, strict: bool = False) -> list[Finding]:
    """The findings that fail a command or a check: errors and unsafe ones, warnings too
    when ``strict``. The one severity policy (check's verdict and every exit code)."""
    bad = {Severity.ERROR, Severity.UNSAFE} | ({Severity.WARNING} if strict else set())
    return [f for f in findings if f.severity in bad]


def exit_code_for(findings: Iterable[Finding], *, strict: bool = False) -> int:
    """1 when any finding fails (``failing``), else 0."""
    return 1 if failing(findings, strict=strict) else 0
