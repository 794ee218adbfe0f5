"""Model locations parsed, not resolved: a local folder, ``file://``, ``runs:/``,
``models:/`` or an artifact-store URI (``parse``)."""

from __future__ import annotations

import logging
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from envbuild._redact import redact_uri
from envbuild.errors import SourceError

if TYPE_CHECKING:
    pass

log = logging.getLogger("envbuild")


Kind = Literal["local", "file", "runs", "models", "artifact"]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, kw_only=True)
class ModelRef:
    """A model location, parsed but not resolved. ``raw`` may hold credentials: show
    ``shown`` instead."""

    kind: Kind
    raw: str
    shown: str
    path: Path | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    latest: bool = False
    model_id: str | None = None


def _bad(shown: str, why: str, hint: str) -> SourceError:
    return SourceError(f"{shown}: {why}", hint=hint, code="EB600")


MODELS_HINT = (
    "write models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest "
    "or models:/<model id>"
)


def _clean_artifact_path(shown: str, path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(shown, "'..' is not allowed in an artifact path", "name the artifact path")
    return "/".join(parts)


def parse(location: str) -> ModelRef:
    """Classify ``location``; raise EB600 for a malformed ``runs:/``, ``models:/`` or
    ``file:`` URI. Anything without a scheme is a local path."""
    shown = redact_uri(location)
    m = _SCHEME.match(location)
    if m is None:
        return ModelRef(kind="local", raw=location, shown=shown, path=Path(location))
    scheme = m.group("scheme").lower()
    if scheme == "file":
        parsed = urllib.parse.urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            raise _bad(shown, "file:// URIs name a local path", "write file:///absolute/path")
        if not parsed.path:
            raise _bad(shown, "no path in the file: URI", "write file:///absolute/path")
        # only for file:// URIs: urllib.request pulls in http.client, slow to import
        from urllib.request import url2pathname

        path = Path(url2pathname(parsed.path))
        return ModelRef(kind="file", raw=location, shown=shown, path=path)
    if scheme == "runs":
        parsed = urllib.parse.urlparse(location)
        if parsed.netloc:
            raise _bad(
                shown,
                "runs:// with a profile is not supported",
                "write runs:/<run_id>/<artifact path> and pass the server with --tracking-uri",
            )
        run_id, _, rest = parsed.path.lstrip("/").partition("/")
        if not run_id or not _RUN_ID.match(run_id) or parsed.query or parsed.fragment:
            raise _bad(shown, "not a runs:/ URI", "write runs:/<run_id>/<artifact path>")
        return ModelRef(
            kind="runs",
            raw=location,
            shown=shown,
            run_id=run_id,
            artifact_path=_clean_artifact_path(shown, rest),
        )
    if scheme == "models":
        return _parse_models(location, shown)
    return ModelRef(kind="artifact", raw=location, shown=shown)


def _parse_models(location: str, shown: str) -> ModelRef:
    # The forms MLflow accepts (mlflow.store.artifact.utils.models._parse_model_uri).
    parsed = urllib.parse.urlparse(location, allow_fragments=False)
    if parsed.netloc:
        raise _bad(shown, "models:// with a profile is not supported", MODELS_HINT)
    parts = parsed.path.lstrip("/").split("/") if parsed.path.startswith("/") else []
    if not parts or not parts[0].strip() or len(parts) > 2 or parsed.query:
        raise _bad(shown, "not a models:/ URI", MODELS_HINT)
    if len(parts) == 2:
        name, suffix = parts
        if not suffix.strip():
            raise _bad(shown, "not a models:/ URI", MODELS_HINT)
        if suffix.isdigit():
            return ModelRef(
                kind="models", raw=location, shown=shown, name=name, version=str(int(suffix))
            )
        if suffix.lower() == "latest":
            return ModelRef(kind="models", raw=location, shown=shown, name=name, latest=True)
        return ModelRef(kind="models", raw=location, shown=shown, name=name, stage=suffix)
    if "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if not name.strip() or not alias.strip():
            raise _bad(shown, "not a models:/ URI", MODELS_HINT)
        return ModelRef(kind="models", raw=location, shown=shown, name=name, alias=alias)
    return ModelRef(kind="models", raw=location, shown=shown, model_id=parts[0])
