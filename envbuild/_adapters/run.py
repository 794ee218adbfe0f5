"""The one way envbuild runs another program and reads what it said: captured output, an
optional timeout, and the last non-blank lines of stderr for messages."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Ran:
    argv: tuple[str, ...]
    returncode: int  # -1 when it could not start or timed out
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 4) -> list[str]:
        """The last non-blank lines of stderr (what a failing tool says last)."""
        return [ln for ln in self.stderr.splitlines() if ln.strip()][-lines:]


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Ran:
    """Run ``argv`` to completion; never raises for the program's own failure, a missing
    executable or a timeout (``returncode`` -1, the reason in ``stderr``)."""
    args = tuple(str(a) for a in argv)
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Ran(
            argv=args,
            returncode=-1,
            stdout="",
            stderr=f"timed out after {timeout} s",
            timed_out=True,
        )
    except OSError as exc:
        return Ran(argv=args, returncode=-1, stdout="", stderr=str(exc))
    return Ran(argv=args, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)
