"""Credentials for the indexes a lock names: where they come from and which index each
belongs to. The lock keeps index URLs without them (resolve.lock.strip_credentials); at
build time the URL with credentials is found again here and travels as a BuildKit secret.

Sources, first match wins: the environment files' own index lines (``--extra-index-url
https://user:token@host/simple`` in requirements.txt, ``${VAR}`` references expanded from
the environment), a ``--secret-file`` (one index URL with credentials per line, ``#``
comments), then the environment uv and pip read (UV_DEFAULT_INDEX, UV_INDEX_URL, UV_INDEX,
UV_EXTRA_INDEX_URL, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL; a named ``UV_INDEX`` entry takes
UV_INDEX_<NAME>_USERNAME/_PASSWORD as uv does). A URL with credentials belongs to
an index of the same scheme, host and port (the realm, as pip and uv match netrc and
keyring credentials), the one with the same path first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from envbuild._redact import has_credentials, redact, strip_credentials
from envbuild.errors import InputError
from envbuild.findings import Code, Finding, Location, Severity, table

if TYPE_CHECKING:
    from envbuild.read import PipOption

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


def read_secret_path(path: Path | None) -> tuple[str, ...]:
    """The URLs of the --secret-file at ``path`` (none: no file given)."""
    if path is None:
        return ()
    from envbuild.read._common import read_given_file

    text = read_given_file(
        path,
        what="the secret file",
        hint="give a readable UTF-8 file of index URLs with credentials",
    )
    return read_secret_file(text, file=str(path))


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
            found.append(_with_named_credentials(item, environ))
    return tuple(dict.fromkeys(u for u in found if _has_literal(u)))


def _with_named_credentials(item: str, environ: Mapping[str, str]) -> str:
    """A UV_INDEX item (``name=URL`` or ``URL``) as a URL, with the credentials uv reads for
    a named index from UV_INDEX_<NAME>_USERNAME / UV_INDEX_<NAME>_PASSWORD (the name upper-
    cased, other characters than letters and digits as ``_``) where the URL carries none."""
    named = _NAMED.match(item)
    url = item[named.end() :] if named else item
    if not named or _has_literal(url):
        return url
    key = re.sub(r"[^A-Z0-9]", "_", named.group(0)[:-1].upper())
    user = environ.get(f"UV_INDEX_{key}_USERNAME", "")
    password = environ.get(f"UV_INDEX_{key}_PASSWORD", "")
    if not (user or password):
        return url
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return url.replace("://", f"://{userinfo}@", 1)


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


# --------------------------------------------------------------------------------------
# check: an index the build could not log in to

EB413 = Code("EB413", Severity.ERROR, "an index needs credentials the build will not have")
CODES: dict[str, str] = table(EB413)
_INDEX_OPTIONS = ("--index-url", "--extra-index-url")


def index_findings(
    options: Sequence[PipOption],
    environ: Mapping[str, str],
    *,
    probe: bool,
    secret_urls: Sequence[str] = (),
) -> list[Finding]:
    """EB413 for each index line the build could not log in to: ``${VAR}`` references
    that are unset, or (with ``probe``) an index that answers 401/403 to the credentials
    the build would get (none, or the ones found)."""
    credentials = collect((o.value for o in options if o.value), environ, secret_urls)
    out: list[Finding] = []
    for opt in options:
        if opt.option not in _INDEX_OPTIONS or not opt.value:
            continue
        shown = redact(opt.value)
        if missing := unset_references(opt.value, environ):
            names = ", ".join(missing)
            out.append(
                EB413.at(
                    opt.location,
                    f"{opt.option} {shown} takes its credentials from {names}, which is not set",
                    hint=f"set {names} where envbuild image runs (they reach the build as "
                    "a BuildKit secret), or give --secret-file",
                )
            )
            continue
        if not probe:
            continue
        url = for_url(opt.value, credentials) or expand(opt.value, environ)
        status = _status(url)
        if status in (401, 403):
            given = "the credentials found" if _has_literal(url) else "no credentials"
            out.append(
                EB413.at(
                    opt.location,
                    f"{opt.option} {shown} answers {status} to {given}; the build would fail",
                    hint="put the user and token in the URL (${VAR} references are read "
                    "from the environment), in UV_INDEX_URL/PIP_INDEX_URL, or in a "
                    "--secret-file for envbuild image",
                )
            )
    return out


def _status(url: str) -> int | None:
    """The HTTP status the index gives ``url`` (None: no answer at all)."""
    import base64
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    request = urllib.request.Request(plain(url), method="GET")
    if parts.username or parts.password:
        token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (OSError, ValueError):
        return None
