"""The lock: every package pinned with its hashes and where it came from, rendered as a
pip requirements file (requirements.lock), and read back (``read_lock``: the one parser,
for ``lock --check`` and ``image --lock FILE``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from envbuild._redact import redact_uri, strip_credentials
from envbuild.errors import InputError
from envbuild.findings import Code, Location, Severity, table
from envbuild.output import header
from envbuild.read import PipOption
from envbuild.resolve.target import Target
from envbuild.versions import PLATFORMS, python_of

LOCK_NAME = "requirements.lock"

EB340 = Code(
    "EB340", Severity.ERROR, "the lock file is stale: resolving again gives a different lock"
)
CODES: dict[str, str] = table(EB340)


@dataclass(frozen=True, kw_only=True)
class Pin:
    name: str  # canonical name
    version: Version
    hashes: tuple[str, ...]
    requested_by: tuple[str, ...]  # "requirements.txt:3", "envbuild serving stack", "pandas"
    # the index uv took it from, as ``source_label`` shows it (None: a lock without it)
    index: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version),
            "hashes": list(self.hashes),
            "requested_by": list(self.requested_by),
            "index": self.index,
        }


def source_label(location: str) -> str:
    """An index or find-links location as a lock or SBOM shows it: a URL with its
    credentials and query values masked, a local directory by its name only (a host path
    would make the lock differ between machines)."""
    value = redact_uri(location.strip())
    if value.startswith("file:") or "://" not in value:
        return "local directory " + unquote(value.rstrip("/").split("/")[-1])
    return value.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class Lock:
    target: Target
    pins: tuple[Pin, ...]
    text: str  # the requirements.lock content
    options: tuple[PipOption, ...]  # index/find-links lines needed (values unredacted)
    # pins uv finds no wheel for on the target (resolve/wheels.py): built from their sdists
    source_builds: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def python_version(self) -> str:
        """The target's X.Y."""
        return f"{self.target.python.major}.{self.target.python.minor}"

    @property
    def platform(self) -> str:
        return self.target.platform

    def pin(self, name: str) -> Pin | None:
        key = canonicalize_name(name)
        return next((p for p in self.pins if p.name == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "sha256": self.sha256,
            "pins": [p.to_json() for p in self.pins],
            "options": [o.to_json() for o in self.options],
            "source_builds": list(self.source_builds),
        }


def render_lock(
    pins: Sequence[Pin],
    *,
    target: Target,
    options: Sequence[PipOption],
    command: str,
    sources: str,
    exclude_newer: str | None = None,
) -> str:
    """The requirements.lock text: header, option lines, one pin per package with every
    hash, and where each came from. Sorted and free of timestamps: the same inputs give
    the same bytes."""
    out = [
        header(command),
        f"# target: {target.describe()} ({target.uv_platform})\n",
        f"# from: {sources}\n",
        "# install: pip install --require-hashes -r requirements.lock\n",
    ]
    if exclude_newer:
        out.insert(3, f"# index as of: {exclude_newer} (files uploaded later are ignored)\n")
    seen: set[str] = set()
    for opt in options:
        line = f"{opt.option} {strip_credentials(opt.value)}" if opt.value else opt.option
        if line not in seen:
            seen.add(line)
            out.append(line + "\n")
    for pin in pins:
        hashes = list(pin.hashes)
        out.append(f"{pin.name}=={pin.version}" + (" \\\n" if hashes else "\n"))
        for i, h in enumerate(hashes):
            out.append(f"    --hash={h}" + (" \\\n" if i < len(hashes) - 1 else "\n"))
        if pin.requested_by:
            out.append(f"    # via {', '.join(pin.requested_by)}\n")
        if pin.index:
            out.append(f"    # from {pin.index}\n")
    return "".join(out)


def parse_lock(text: str) -> dict[str, str]:
    """name -> version of a requirements.lock (for --check diffs)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            out[canonicalize_name(match.group(1))] = match.group(2)
    return out


_PIN_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[A-Za-z0-9._,-]+\])?==(?P<ver>[^\s;\\]+)"
)
_HASH = re.compile(r"--hash=(\S+)")
_VIA = re.compile(r"^\s*#\s*via\s+(?P<via>.+)$")
_FROM = re.compile(r"^\s+#\s*from\s+(?P<index>\S.*)$")
_TARGET = re.compile(r"^# target: Python (?P<python>\S+) on (?P<platform>\S+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _bad_line(line: str, why: str, location: Location) -> InputError:
    return InputError(
        f"lock line {line[:80]!r} {why}",
        hint="regenerate the lock with `envbuild lock`",
        location=location,
        code="EB402",
    )


def read_lock(text: str, *, file: str = LOCK_NAME) -> Lock:
    """The Lock a requirements.lock holds (as ``render_lock`` writes it: the target in the
    header, option lines, ``name==version`` with every ``--hash`` and a ``# via`` line);
    anything else is refused (EB402), since an image installs exactly these lines."""
    target: Target | None = None
    pins: list[Pin] = []
    options: list[PipOption] = []
    current: dict[str, object] | None = None
    buf, start = "", 0

    def finish() -> None:
        if current is not None:
            pins.append(
                Pin(
                    name=str(current["name"]),
                    version=Version(str(current["version"])),
                    hashes=tuple(current["hashes"]),  # type: ignore[arg-type]
                    requested_by=tuple(current["via"]),  # type: ignore[arg-type]
                    index=current["index"],  # type: ignore[arg-type]
                )
            )

    for number, line in enumerate(text.splitlines(), 1):
        loc = Location(file=file, line=number)
        if _CONTROL.search(line):
            raise _bad_line(line, "holds a control character", loc)
        if not buf and line.lstrip().startswith("#"):
            if (m := _TARGET.match(line)) and (python := python_of(m["python"])):
                platform = m["platform"]
                if platform in PLATFORMS:
                    target = Target(python=python, platform=platform)  # type: ignore[arg-type]
            elif (v := _VIA.match(line)) and current is not None:
                current["via"] = [p.strip() for p in v["via"].split(",") if p.strip()]
            elif (f := _FROM.match(line)) and current is not None:
                current["index"] = f["index"].strip()
            continue
        stripped = line.split(" #", 1)[0].strip()
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        logical, buf = (buf + stripped).strip(), ""
        if not logical:
            continue
        loc = Location(file=file, line=start)
        if logical.startswith("-"):
            option, _, value = logical.partition(" ")
            options.append(PipOption(option=option, value=value.strip() or None, location=loc))
            continue
        m = _PIN_LINE.match(logical)
        if not m:
            raise _bad_line(logical, "is not a pinned requirement (name==version --hash=...)", loc)
        try:
            Requirement(logical.split(" --hash", 1)[0].strip())
        except InvalidRequirement as exc:
            raise _bad_line(logical, f"is not a valid requirement ({exc})", loc) from None
        hashes = _HASH.findall(logical)
        if not hashes:
            raise _bad_line(logical, "has no --hash (envbuild lock writes them)", loc)
        finish()
        current = {
            "name": canonicalize_name(m["name"]),
            "version": m["ver"],
            "hashes": hashes,
            "via": [],
            "index": None,
        }
    finish()
    if target is None:
        raise InputError(
            f"{file} names no target (its '# target: Python X.Y on PLATFORM' header line)",
            hint="write the lock with `envbuild lock`",
            location=Location(file=file, line=1),
            code="EB402",
        )
    return Lock(target=target, pins=tuple(pins), text=text, options=tuple(options))
