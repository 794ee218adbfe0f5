"""Credentials for the indexes a lock names: where they come from and which index each
belongs to. The lock keeps index URLs without them (resolve.lock.strip_credentials); at
build time the URL with credentials is found again here and travels as a BuildKit secret.

Sources, first match wins: the environment files' own index lines (``--extra-index-url
https://user:token@host/simple`` in requirements.txt, ``${VAR}`` references expanded from
the environment), a ``--secret-file`` (one index URL with credentials per line, ``#``
comments), then the environment uv and pip read (UV_DEFAULT_INDEX, UV_INDEX_URL, UV_INDEX,
UV_EXTRA_INDEX_URL, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL). A URL with credentials belongs to
an index of the same scheme, host and port (the realm, as pip and uv match netrc and
keyring credentials), the one with the same path first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from envbuild._redact import has_credentials, strip_credentials
from envbuild.errors import InputError
from envbuild.findings import Location

ENV_VARS = (
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAMED = re.compile(r"^[A-Za-z0-9_.-]+=(?=[A-Za-z][A-Za-z0-9+.-]*://)")  # uv's name=URL


def expand(value: str, environ: Mapping[str, str]) -> str:
    """``${VAR}`` replaced from ``environ`` (unset: empty), as pip does in requirement files."""
    return _REFERENCE.sub(lambda m: environ.get(m.group(1), ""), value)


def unset_references(value: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The ``${VAR}`` names in ``value`` that ``environ`` does not set (or sets empty)."""
    return tuple(n for n in _REFERENCE.findall(value) if not environ.get(n))


def plain(url: str) -> str:
    """``url`` without literal credentials nor ``${VAR}`` references in its user part."""
    return re.sub(r"://[^/@\s]*@", "://", strip_credentials(url))


def read_secret_file(text: str, *, file: str) -> tuple[str, ...]:
    """The URLs of a --secret-file; each must carry credentials."""
    urls: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not has_credentials(line) or "://" not in line:
            raise InputError(
                f"{file}:{n} is not an index URL with credentials",
                hint="write one URL per line, e.g. https://USER:TOKEN@pkgs.example.com/simple/",
                location=Location(file=file, line=n),
            )
        urls.append(line)
    return tuple(urls)


def collect(
    option_values: Iterable[str], environ: Mapping[str, str], secret_urls: Sequence[str] = ()
) -> tuple[str, ...]:
    """Every URL with (expanded) credentials, in the order they are preferred."""
    found: list[str] = []
    for value in option_values:
        found.append(expand(value, environ))
    found.extend(secret_urls)
    for var in ENV_VARS:
        for item in environ.get(var, "").split():
            found.append(_NAMED.sub("", item))
    return tuple(dict.fromkeys(u for u in found if _has_literal(u)))


def _has_literal(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username or parts.password)


def _realm(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def for_url(url: str, credentials: Sequence[str]) -> str | None:
    """The URL with credentials for the index at ``url`` (its path, query and fragment kept),
    or None when no source has any."""
    scheme, host, port, path = _realm(plain(url))
    same = [c for c in credentials if _realm(c)[:3] == (scheme, host, port)]
    if not same:
        return None
    best = next((c for c in same if _realm(c)[3] == path), same[0])
    userinfo = urlsplit(best).netloc.rsplit("@", 1)[0]
    return plain(url).replace("://", f"://{userinfo}@", 1)
