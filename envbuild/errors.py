"""Errors and exit codes.

The library raises these; only the CLI turns them into output. Every error can say where
(file, field, line) and what to do next (hint).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from envbuild.findings import Finding, Location, Severity


class ExitCode(enum.IntEnum):
    OK = 0
    FINDINGS = 1  # findings at error level, a failed build, resolve or smoke test
    INPUT = 2  # usage or input error: bad flag, unreadable or malformed model folder
    ENVIRONMENT = 3  # the machine lacks something: no Docker daemon, no such Python


class EnvbuildError(Exception):
    """Base class: an error envbuild explains to the user (no traceback)."""

    exit_code: ExitCode = ExitCode.FINDINGS
    code: str = "EB000"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        location: Location | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location or Location()
        if code is not None:
            self.code = code
        self.earlier: tuple[Finding, ...] = ()

    def after(self, findings: Iterable[Finding]) -> EnvbuildError:
        """This error, reported after ``findings`` the command had gathered before it
        failed (a resolution's warnings, --trust-model's notice): the report keeps them."""
        self.earlier = tuple(findings)
        return self

    @property
    def problems(self) -> Sequence[Finding]:
        return (
            Finding(
                code=self.code,
                severity=Severity.ERROR,
                message=self.message,
                hint=self.hint,
                location=self.location,
            ),
        )

    def __str__(self) -> str:
        return self.problems[0].one_line() if len(self.problems) == 1 else self.message


class InputError(EnvbuildError):
    """The input is wrong: a malformed file, a missing file, a path that escapes."""

    exit_code = ExitCode.INPUT
    code = "EB100"


class SourceError(InputError):
    """A model location that cannot be turned into a local folder (exit 2)."""

    code = "EB600"


class ToolError(EnvbuildError):
    """The machine lacks something envbuild needs (Docker, an interpreter, uv)."""

    exit_code = ExitCode.ENVIRONMENT
    code = "EB900"


class FailedError(EnvbuildError):
    """An operation ran and failed: resolution, a build, a smoke test."""

    exit_code = ExitCode.FINDINGS
    code = "EB800"


class _Gathered(EnvbuildError):
    """An error that reports several problems at once (every one, not the first)."""

    def __init__(self, problems: Iterable[Finding]) -> None:
        self._problems = tuple(problems)
        first = self._problems[0]
        super().__init__(first.message, hint=first.hint, location=first.location, code=first.code)

    @property
    def problems(self) -> Sequence[Finding]:
        return self._problems

    def __str__(self) -> str:
        return "; ".join(p.one_line() for p in self._problems)


class ProblemsError(_Gathered, InputError):
    """Several input problems gathered at once (all problems in a folder, not the first)."""


class FindingsError(_Gathered, FailedError):
    """Several findings that stop a command before it does its work (exit 1)."""
