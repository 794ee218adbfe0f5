"""What check reports: the options it ran with, one report per model, and the run's
verdict (the one failing policy is envbuild.findings.failing)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envbuild.errors import ExitCode
from envbuild.findings import Finding, Severity, failing
from envbuild.resolve.stack import TorchChoice
from envbuild.serving import MlflowChoice

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
    env_from: str = "auto"  # the environment file followed (read.EnvFrom)
    mlflow: MlflowChoice = "skinny"  # --mlflow: the serving MLflow distribution
    torch: TorchChoice = "default"  # --torch: torch's build (cpu: the CPU wheels)
    secret_urls: tuple[str, ...] = ()  # --secret-file: index URLs with credentials (EB413)


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


Stage = Callable[[Any, CheckOptions], tuple[list[Finding], list[str]]]


def ignored(code: str, patterns: Iterable[str]) -> bool:
    """``EB306`` ignores that code; ``EB3xx`` (x as a wildcard digit) a whole stage."""
    return any(
        len(p) == len(code) and all(pc in "xX" or pc == cc for pc, cc in zip(p, code, strict=True))
        for p in patterns
    )
