"""Which locked pins have no wheel for the target, so that installing them builds from the
sdist (a compiler, headers, minutes): found before any build, with uv as the judge.

uv answers the question itself: ``uv pip compile --no-deps --only-binary :all:`` of the
lock's exact pins, on the lock's target and indexes, fails naming a pin that has no usable
wheel. That pin is set aside and the rest asked again, until uv agrees; so k pins without
wheels cost k + 1 compiles (cached index pages: about a second each), none when a lock
names none. The lock's hashes cannot answer it: uv lists every file of a release, for every
platform."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from envbuild._adapters import uv as _uv
from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.resolve.lock import Lock

log = logging.getLogger("envbuild")

EB350 = Code(
    "EB350",
    Severity.WARNING,
    "a pin has no wheel for the target: it builds from source (needs a compiler)",
)
CODES: dict[str, str] = table(EB350)


def _request(lock: Lock, names: list[str], *, offline: bool) -> _uv.CompileRequest:
    """The lock's exact pins on its own target and indexes, wheels only, no dependencies."""
    index_url: str | None = None
    extra: list[str] = []
    links: list[str] = []
    no_index = False
    for opt in lock.options:
        if opt.option in ("-i", "--index-url") and opt.value:
            index_url = opt.value
        elif opt.option == "--extra-index-url" and opt.value:
            extra.append(opt.value)
        elif opt.option in ("-f", "--find-links") and opt.value:
            links.append(opt.value.removeprefix("file://"))
        elif opt.option == "--no-index":
            no_index = True
    pins = {p.name: p for p in lock.pins}
    return _uv.CompileRequest(
        requirements=tuple(f"{n}=={pins[n].version}" for n in names),
        python_version=str(lock.target.python),
        platform=lock.target.uv_platform,
        index_url=index_url,
        extra_index_urls=tuple(extra),
        find_links=tuple(links),
        no_index=no_index or (offline and bool(links)),
        offline=offline,
        pre=True,  # an exact pin of a pre-release is what the lock holds
        generate_hashes=False,
        no_deps=True,
        only_binary=(":all:",),
    )


def source_builds(lock: Lock, *, offline: bool = False) -> tuple[str, ...]:
    """The names of the lock's pins that uv finds no wheel for on the lock's target (it
    would build them from their sdists), sorted. A failure uv does not explain by missing
    wheels (an index gone, a network error) ends the search with what was found so far."""
    remaining = [p.name for p in lock.pins]
    found: list[str] = []
    while remaining:
        result = _uv.compile_requirements(_request(lock, remaining, offline=offline))
        if result.ok:
            break
        named = {name for name, _ in _uv.parse_failure(result.stderr).no_wheels}
        missing = [n for n in remaining if n in named]
        if not missing:
            log.debug("wheel check stopped: %s", _uv.error_text(result.stderr)[:300])
            break
        found.extend(missing)
        remaining = [n for n in remaining if n not in named]
    return tuple(sorted(found))


def source_build_findings(
    lock: Lock, located: Mapping[str, Location], *, file: str | None = None
) -> tuple[Finding, ...]:
    """One EB350 per pin in ``lock.source_builds``, at the requirement line that asked for
    it (``located``: canonical name -> where) or else in ``file`` (a lock file), with the
    pins that pulled it in."""
    out: list[Finding] = []
    target = lock.target.describe()
    for name in lock.source_builds:
        pin = lock.pin(name)
        if pin is None:
            continue
        where = located.get(name, Location(file=file))
        via = "" if name in located else f" (via {', '.join(pin.requested_by) or 'the lock'})"
        out.append(
            EB350.at(
                where,
                f"{pin.name}=={pin.version}{via} has no wheel for {target}: installing it "
                "builds from its sdist, which needs a compiler",
                hint=f"pin a {pin.name} release with a wheel for {target}; or keep it: "
                "`envbuild image` compiles it in a throwaway builder stage (no compiler in "
                "the final image), and `--wheels-only` refuses instead",
            )
        )
    return tuple(out)
