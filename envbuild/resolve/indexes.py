"""Where the locked packages came from, against what the build will be told: uv on this
machine also reads its own configuration (``uv.toml`` in the user's or the system's config
folder, ``UV_CONFIG_FILE``, ``UV_FIND_LINKS``), which the image build never sees, so a
package resolved from an index named only there is looked for elsewhere at build time (and
is not found, or is another file than the hash the lock holds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from envbuild._adapters.uv import CompiledPin, CompileRequest
from envbuild._redact import redact_uri, strip_credentials
from envbuild.findings import Code, Finding, Location, Severity, table

PYPI = "https://pypi.org/simple"

EB325 = Code(
    "EB325",
    Severity.WARNING,
    "a locked package came from an index the build will not be told about",
)
CODES: dict[str, str] = table(EB325)


def _key(url: str) -> str:
    """An index URL compared as a value: no credentials, scheme and host in lower case,
    no trailing slash; a local folder as its file: URL."""
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    parts = urlsplit(strip_credentials(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def told_indexes(request: CompileRequest, torch_index: str | None = None) -> tuple[str, ...]:
    """The indexes and find-links locations the lock names, which the build's installer
    gets: the default index (PyPI unless --index-url or --no-index), the extra indexes,
    the find-links locations, and the PyTorch CPU index where --torch cpu used it."""
    told: list[str] = []
    if not request.no_index:
        told.append(request.index_url or PYPI)
        told.extend(request.extra_index_urls)
    told.extend(request.find_links)
    if torch_index:
        told.append(torch_index)
    return tuple(dict.fromkeys(_key(u) for u in told))


def unknown_index_findings(
    compiled: Iterable[CompiledPin], request: CompileRequest, *, torch_index: str | None = None
) -> list[Finding]:
    """EB325 once per index uv took packages from that the lock does not name."""
    told = told_indexes(request, torch_index)
    by_index: dict[str, list[str]] = {}
    for pin in compiled:
        if pin.index and _key(pin.index) not in told:
            by_index.setdefault(pin.index, []).append(f"{pin.name}=={pin.version}")
    return [_finding(index, names) for index, names in by_index.items()]


def _finding(index: str, names: Sequence[str]) -> Finding:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return EB325.at(
        Location(),
        f"{shown} came from {redact_uri(index)}, which uv's own configuration on this machine "
        "names and the lock does not: the build will look for them on the lock's indexes only",
        hint="name the index in the model's requirements.txt (--extra-index-url URL, with "
        "${VAR} references for credentials) or pass --find-links, then lock again",
    )
