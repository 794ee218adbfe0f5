"""The one credential masker: every message, provenance field, label, lock and cache key
passes what it shows of a URL through here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scheme://userinfo@ : the userinfo part is what carries a user name, password or token
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s]+)@")
_QUERY = re.compile(r"(?P<lead>[A-Za-z][A-Za-z0-9+.-]*:\S*?)\?(?P<query>[^\s#'\"]+)")
_ENV_REFERENCE = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*\}:?)+")


def redact(text: str) -> str:
    """Hide credentials in URLs (``https://user:token@host`` → ``https://****@host``)."""
    return _USERINFO.sub(lambda m: m.group("scheme") + "****@", text)


def redact_uri(text: str) -> str:
    """``redact``, and query values too (``?X-Amz-Signature=abc`` → ``?X-Amz-Signature=****``):
    for model URIs, where signed URLs carry their secret in the query."""
    return _QUERY.sub(lambda m: m.group("lead") + "?" + _mask_query(m.group("query")), redact(text))


def _mask_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, _value = item.partition("=")
        parts.append(f"{key}=****" if eq else key)
    return "&".join(parts)


def strip_credentials(url: str) -> str:
    """``url`` without literal credentials, for files that are kept (the lock). A
    ``${VAR}`` reference stays: pip and uv expand it at install time."""

    def strip(m: re.Match[str]) -> str:
        if _ENV_REFERENCE.fullmatch(m.group("cred")):
            return m.group(0)
        return m.group("scheme")

    return _USERINFO.sub(strip, url)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name, a password or a ``${VAR}`` reference to one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username or parts.password) or "${" in url
