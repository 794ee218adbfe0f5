"""The safety gate: whether a command may load or run a model.

Reading a model never executes it. Loading it does: the image and venv smoke tests and
``infer --trace`` unpickle its files and import its code. Before any of them starts, the
static scan (``envbuild.scan``, opcodes and syntax trees only) gives its verdict, and a
model it calls unsafe is refused unless the user passed ``--trust-model``.

Unsafe means: a pickle references a callable that can run code or touch the system
(EB501), or imports or calls something the scan cannot name (EB503), or cannot be opened
at all (EB211: what cannot be read cannot be judged), or carries code by value (EB502)
that was compiled by another Python minor than the one that will load it: cloudpickle's
code objects are bytecode of the saver's minor, and what the loader does with foreign
bytecode is not something the scan can judge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from envbuild.errors import FailedError
from envbuild.findings import Code, Finding, Severity, table
from envbuild.read import ModelFolder
from envbuild.versions import minor_of

EB510 = Code(
    "EB510",
    Severity.WARNING,
    "a command that loads or runs the model refused: the static scan found it "
    "unsafe (EB501, EB503, EB211, or EB502 across Python minors); --trust-model overrides",
)
CODES: dict[str, str] = table(EB510)

# What loads or runs the model, and so refuses an unsafe one (check's JSON lists them).
LOADING_COMMANDS: tuple[str, ...] = ("image", "venv", "infer --trace")

_ALWAYS_UNSAFE = frozenset({"EB501", "EB503", "EB211"})


def grade(
    findings: Iterable[Finding], *, saved_python: str | None, target_python: str | None
) -> list[Finding]:
    """The scan's findings with EB211 (unreadable) raised to ``unsafe``, and EB502 where
    the Python that will load the model is another minor than the one that saved it (both
    must be known)."""
    saved, target = minor_of(saved_python), minor_of(target_python)
    out = []
    for f in findings:
        if f.code == "EB211" and f.severity is not Severity.UNSAFE:
            f = dataclasses.replace(f, severity=Severity.UNSAFE)
        if f.code == "EB502" and saved and target and saved != target:
            f = dataclasses.replace(
                f,
                severity=Severity.UNSAFE,
                message=f"{f.message}; it was saved by Python {saved[0]}.{saved[1]} and would "
                f"be loaded by Python {target[0]}.{target[1]}",
                hint="serve it on the Python that saved it (--python-version "
                f"{saved[0]}.{saved[1]}), or re-save the model on the target Python",
            )
        out.append(f)
    return out


def unsafe(findings: Iterable[Finding]) -> list[Finding]:
    """The graded findings that make loading the model unsafe."""
    return [
        f
        for f in findings
        if f.code in _ALWAYS_UNSAFE or (f.code == "EB502" and f.severity is Severity.UNSAFE)
    ]


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The static scan's word on loading the model, and whether the user overrode it."""

    unsafe: tuple[Finding, ...]
    trusted: bool  # --trust-model was given

    @property
    def refuses(self) -> bool:
        return bool(self.unsafe) and not self.trusted

    def trusted_finding(self) -> Finding | None:
        """The report's line when --trust-model let an unsafe model through."""
        if not (self.unsafe and self.trusted):
            return None
        first = self.unsafe[0]
        return EB510.at(
            first.location,
            f"--trust-model: loading a model the static scan calls unsafe "
            f"({len(self.unsafe)} finding(s), first {first.code}: {first.message})",
            hint="the proof runs sandboxed; a deployment of this model runs the same code",
        )

    @property
    def notices(self) -> tuple[Finding, ...]:
        """What the command's report carries about the verdict (``trusted_finding``)."""
        trusted = self.trusted_finding()
        return (trusted,) if trusted is not None else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "unsafe": [f.to_json() for f in self.unsafe],
            "trust_model": self.trusted,
            "refused": self.refuses,
        }


def scan_findings(folder: ModelFolder) -> tuple[Finding, ...]:
    """Every finding of the static scan of ``folder`` (pickles, skops, torch zips, code)."""
    from envbuild.infer import code_paths
    from envbuild.scan import scan_model

    code_dirs, code_files = code_paths(folder)
    return scan_model(folder.path, code_dirs=code_dirs, code_files=code_files).findings


def verdict(
    folder: ModelFolder,
    *,
    target_python: str | None,
    trusted: bool,
    findings: Sequence[Finding] | None = None,
) -> Verdict:
    """Scan ``folder`` (or take the scan's ``findings``) and judge loading it on
    ``target_python``."""
    scanned = scan_findings(folder) if findings is None else findings
    graded = grade(scanned, saved_python=folder.python_version, target_python=target_python)
    return Verdict(unsafe=tuple(unsafe(graded)), trusted=trusted)


class UnsafeModelError(FailedError):
    """A command that would load the model refused it (exit 1)."""

    code = "EB510"

    def __init__(self, command: str, found: Sequence[Finding]) -> None:
        first = found[0]
        more = f" (and {len(found) - 1} more unsafe finding(s))" if len(found) > 1 else ""
        super().__init__(
            f"{command} refuses to load this model: {first.code} {first.message}{more}",
            hint="`envbuild check` lists every finding; re-save the model from trusted code, "
            "or pass --trust-model to load it anyway (the proof runs sandboxed)",
            location=first.location,
        )


def require_safe(
    folder: ModelFolder, *, command: str, target_python: str | None, trusted: bool
) -> Verdict:
    """Raise UnsafeModelError before ``command`` loads an unsafe model, unless trusted."""
    judged = verdict(folder, target_python=target_python, trusted=trusted)
    if judged.refuses:
        raise UnsafeModelError(command, judged.unsafe)
    return judged
