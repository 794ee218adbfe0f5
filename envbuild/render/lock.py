"""Render's reading of the lock text: its pins and options, and from its ``# via``
comments which distributions only MLflow's serving runtime needs.

(The lock reaches render as text for now; a structured Lock from resolve replaces this.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from envbuild.errors import InputError
from envbuild.findings import Location
from envbuild.render.safety import check_requirement, check_text


@dataclass(frozen=True, kw_only=True)
class Pin:
    name: str
    version: str
    line: int


_PIN_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,-]+\])?==(?P<ver>\S+)"
)


def parse_lock(text: str, *, file: str = "requirements.lock") -> tuple[list[Pin], list[str]]:
    """Pins and option lines of a hashed requirements lock; refuse anything else."""
    pins: list[Pin] = []
    options: list[str] = []
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        if buf.strip():
            logical.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        logical.append((start, buf.strip()))
    for number, line in logical:
        loc = Location(file=file, line=number)
        check_text("lock line", line, loc)
        if line.startswith("-"):
            options.append(line)
            continue
        m = _PIN_LINE.match(line)
        if not m:
            raise InputError(
                f"lock line {line[:80]!r} is not a pinned requirement (name==version --hash=...)",
                hint="regenerate the lock with `envbuild lock`",
                location=loc,
                code="EB402",
            )
        req = check_requirement(line, loc)
        if "--hash=" not in line:
            raise InputError(
                f"lock line for {req.name} has no --hash",
                hint="regenerate the lock with `envbuild lock` (it writes hashes)",
                location=loc,
                code="EB402",
            )
        pins.append(Pin(name=canonicalize_name(m["name"]), version=m["ver"], line=number))
    return pins, options


# The distributions that are MLflow itself; their requirement closure is the serving runtime.
MLFLOW_DISTS = frozenset({"mlflow", "mlflow-skinny", "mlflow-tracing"})
_VIA = re.compile(r"^\s*#\s*via\s+(?P<via>.+)$")
_DIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def serving_runtime_only(text: str) -> tuple[str, ...]:
    """The locked distributions that only MLflow needs (mlflow-skinny, databricks-sdk,
    opentelemetry, ...): MLflow and the closure of its requirements, minus whatever the
    model's own requirements (and the serving stack's pandas and numpy) also need.

    Read from the lock's ``# via`` comments (``envbuild lock`` writes them); a lock
    without them gives ``()``, so everything is treated as the model's own."""
    parents: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _PIN_LINE.match(line)
        if m:
            current = canonicalize_name(m["name"])
            parents[current] = set()
            continue
        v = _VIA.match(line)
        if v and current is not None:
            parents[current].update(p.strip() for p in v["via"].split(","))
    if not any(parents.values()):
        return ()
    children: dict[str, set[str]] = {name: set() for name in parents}
    roots: set[str] = set()
    for name, via in parents.items():
        for parent in via:
            key = canonicalize_name(parent) if _DIST_NAME.match(parent) else ""
            if key in children:
                children[key].add(name)
            else:  # a file reference (requirements.txt:3) or the serving stack
                roots.add(name)

    def closure(start: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(start)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(children.get(name, ()))
        return seen

    runtime = closure(n for n in parents if n in MLFLOW_DISTS)
    model = closure(roots - MLFLOW_DISTS)
    return tuple(sorted(runtime - model))
