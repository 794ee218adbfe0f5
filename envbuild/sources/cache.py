"""The download cache: one entry per resolved model version, written into a temporary
folder and renamed into place when complete (layout in ``envbuild.sources``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envbuild.errors import SourceError
from envbuild.output import write_atomic

if TYPE_CHECKING:
    from envbuild._adapters.mlflow import Mlflow


from envbuild.sources.uri import ModelRef

log = logging.getLogger("envbuild")

SOURCE_FILE = "source.json"
FILES = "files"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def cache_root(cache_dir: Path | None = None) -> Path:
    """The download cache: ``cache_dir``, else $ENVBUILD_CACHE_DIR, else
    $XDG_CACHE_HOME/envbuild/models, else ~/.cache/envbuild/models."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("ENVBUILD_CACHE_DIR"):
        return Path(os.environ["ENVBUILD_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "envbuild" / "models"


def server_id(uri: str | None) -> str:
    """A tracking/registry URI as part of a cache key: no credentials, no query, host
    lower-cased, no trailing slash."""
    if not uri:
        return ""
    parsed = urllib.parse.urlsplit(uri)
    host = (parsed.hostname or "").lower()
    if parsed.port:
        host += f":{parsed.port}"
    return (
        urllib.parse.urlunsplit((parsed.scheme.lower(), host, parsed.path.rstrip("/"), "", ""))
        or uri.split("?")[0]
    )


def entry_name(slug: str, *key: str) -> str:
    digest = hashlib.sha256("\0".join(key).encode("utf-8")).hexdigest()[:16]
    slug = _SLUG.sub("_", slug).strip("._")[:60] or "model"
    return f"{slug}-{digest}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(root: Path) -> None:
    """Remove what a killed download left: temporary folders whose process is gone."""
    for tmp in root.glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            log.debug("removing %s left by an interrupted download", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def read_entry(entry: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((entry / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("path"), str):
        return None
    if not (entry / meta["path"]).exists():
        return None
    return meta


def _cache_error(root: Path, exc: OSError) -> SourceError:
    return SourceError(
        f"cannot use the model cache {root}: {exc.strerror or exc}",
        hint="pass a writable --cache-dir or set ENVBUILD_CACHE_DIR",
        code="EB608",
    )


def download(
    mlflow: Mlflow,
    *,
    ref: ModelRef,
    uri: str,
    root: Path,
    entry: Path,
    meta: dict[str, Any],
    folder: str = "",
    replace: bool = False,
) -> dict[str, Any]:
    """Download ``uri`` into a temporary folder inside the cache, check it is a model
    folder, write source.json and rename the folder to ``entry``. On any failure, the
    temporary folder goes. ``folder`` names the model folder when MLflow would not (a
    registry download lands in the folder it is given; the image is titled after it)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=root))
    except OSError as exc:
        raise _cache_error(root, exc) from None
    try:
        log.info("%s: downloading into %s", ref.shown, entry)
        dst = tmp / FILES / _SLUG.sub("_", folder).strip("._")[:80] if folder else tmp / FILES
        local = mlflow.download(uri, dst).resolve()
        try:
            rel = local.relative_to(tmp.resolve())
        except ValueError:
            raise SourceError(
                f"{ref.shown}: MLflow put the download outside the cache",
                hint="report this with the URI and the MLflow version",
                code="EB607",
            ) from None
        _check_model(ref, local)
        meta = {**meta, "path": rel.as_posix()}
        write_atomic(tmp / SOURCE_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        entry.parent.mkdir(parents=True, exist_ok=True)
        if replace and entry.exists():
            old = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-old-", dir=root))
            os.replace(entry, old / "entry")
            os.replace(tmp, entry)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, entry)
            except OSError:
                if read_entry(entry) is None:
                    raise
                # Another envbuild finished the same download first: use its copy.
                shutil.rmtree(tmp, ignore_errors=True)
                return read_entry(entry) or meta
        return meta
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _cache_error(root, exc) from None
        raise


def _check_model(ref: ModelRef, local: Path) -> None:
    if local.is_dir() and (local / "MLmodel").is_file():
        return
    if local.is_file() and local.name == "MLmodel":
        return
    nested = sorted(p.parent.relative_to(local).as_posix() for p in local.glob("*/MLmodel"))
    hint = (
        f"the model is one level down: add /{nested[0]} to the URI"
        if nested and local.is_dir()
        else "point the URI at the folder holding MLmodel (the artifact path the model was "
        "logged under)"
    )
    raise SourceError(
        f"{ref.shown}: the download is not an MLflow model folder (no MLmodel)",
        hint=hint,
        code="EB607",
    )
