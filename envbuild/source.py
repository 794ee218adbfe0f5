"""Where a model lives: a local folder, ``file://``, ``runs:/``, ``models:/`` or an
artifact-store URI, turned into a local model folder.

``materialize(location)`` returns a ``ModelSource``: the local ``path`` to read, the URI
(credentials masked), and what it resolved to (run id, registered name and version, alias).
Local paths and ``file://`` return at once and never import MLflow. Everything else goes
through MLflow's own client and artifact download (``envbuild._mlflow``, the optional extra
``envbuild[mlflow]``) into a download cache::

    $ENVBUILD_CACHE_DIR  or  $XDG_CACHE_HOME/envbuild/models  or  ~/.cache/envbuild/models
        runs/<run-id>-<hash>/          one entry per resolved model version
            source.json                what it is (written last, before the rename)
            files/...                  what MLflow downloaded
        models/<name>-v<version>-<hash>/
        .tmp-<pid>-<random>/           a download under way

The cache key is the resolved version: the tracking server plus run id and artifact path,
or the registry plus name and version (an alias or ``latest`` is resolved first, so it is
cached under the version it points to). A download goes into a temporary folder inside the
cache and is renamed into place only when complete: a failed or interrupted download leaves
nothing behind. Artifact-store URIs (``s3://...``) carry no version and are downloaded
again each time.

Credentials in URIs (``https://user:token@host``, signed query strings) never reach a
message, a provenance field, a label or the cache: ``safe_uri`` masks them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click
import yaml

from envbuild.errors import InputError
from envbuild.output import write_atomic
from envbuild.spec import redact

if TYPE_CHECKING:
    from envbuild._mlflow import Mlflow, ModelVersion

log = logging.getLogger("envbuild")

Kind = Literal["local", "file", "runs", "models", "artifact"]

CODES: dict[str, str] = {
    "EB600": "malformed or unsupported model URI",
    "EB601": "the MLflow client is not installed (pip install 'envbuild[mlflow]')",
    "EB602": "runs:/ or models:/ without a tracking server (--tracking-uri, MLFLOW_TRACKING_URI)",
    "EB603": "the tracking server cannot be reached",
    "EB604": "no such run on the tracking server",
    "EB605": "no such registered model",
    "EB606": "no such model version, alias, stage or logged model",
    "EB607": "nothing to download at the URI, or the download is not an MLflow model folder",
    "EB608": "the download cache cannot be used (--cache-dir, ENVBUILD_CACHE_DIR)",
    "EB609": "the tracking server refused access (credentials)",
    "EB610": "another MLflow error",
    "EB611": "MLflow needs another package for this store (boto3, sqlalchemy, ...)",
    "EB612": "a command would write into a downloaded model (use --output, --check, --dry-run)",
}

SOURCE_FILE = "source.json"
FILES = "files"
REGISTERED_MODEL_META = "registered_model_meta"
LABEL_PREFIX = "io.envbuild.source."

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class SourceError(InputError):
    """A model location that cannot be turned into a local folder (exit 2)."""

    code = "EB600"


# --------------------------------------------------------------------------------------
# credentials


def safe_uri(text: str) -> str:
    """Mask credentials in every URI inside ``text``: the user-info part
    (``https://user:token@host`` → ``https://****@host``) and query values
    (``?X-Amz-Signature=abc`` → ``?X-Amz-Signature=****``)."""
    text = redact(text)
    return re.sub(
        r"(?P<lead>[A-Za-z][A-Za-z0-9+.-]*:\S*?)\?(?P<query>[^\s#'\"]+)",
        lambda m: m.group("lead") + "?" + _mask_query(m.group("query")),
        text,
    )


def _mask_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, _value = item.partition("=")
        parts.append(f"{key}=****" if eq else key)
    return "&".join(parts)


# --------------------------------------------------------------------------------------
# parsing


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
    shown = safe_uri(location)
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


# --------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """A model location made local. ``uri`` is what the user named (credentials masked);
    ``path`` the local folder to read. ``cached`` is true when no download was needed."""

    path: Path
    uri: str
    kind: Kind
    run_id: str | None = None
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    stage: str | None = None
    model_id: str | None = None
    artifact_path: str | None = None
    tracking_uri: str | None = None
    cached: bool = False

    def provenance(self) -> dict[str, str | None]:
        """Where the model came from, for JSON results and reports (no credentials; no
        local cache path, which differs between machines)."""
        return {
            "uri": self.uri,
            "kind": self.kind,
            "run_id": self.run_id,
            "registered_name": self.registered_name,
            "version": self.version,
            "alias": self.alias,
            "stage": self.stage,
            "model_id": self.model_id,
            "artifact_path": self.artifact_path,
            "tracking_uri": self.tracking_uri,
        }

    def labels(self) -> dict[str, str]:
        """OCI image labels (``io.envbuild.source.*``) for the fields that are set,
        sorted; values are single-line and credential-free. A local folder's path says
        nothing on another machine (and would make the Dockerfile depend on how the path
        was typed): only its registered name and version, when known, are labels."""
        local = self.kind in ("local", "file")
        out = {}
        for key, value in sorted(self.provenance().items()):
            if local and key not in ("registered_name", "version"):
                continue
            if value:
                out[LABEL_PREFIX + key.replace("_", "-")] = " ".join(str(value).split())
        return out

    def require_local(self, action: str, hint: str) -> None:
        """Raise EB612 when ``action`` would write into a downloaded model: the cache copy
        must stay what the server holds."""
        if self.kind not in ("local", "file"):
            raise SourceError(
                f"{self.uri}: {action} would write into the downloaded copy",
                hint=hint,
                code="EB612",
            )

    def describe(self) -> str:
        """One line for text output: the URI and what it resolved to."""
        bits = []
        if self.registered_name and self.version:
            bits.append(f"{self.registered_name} version {self.version}")
        if self.alias:
            bits.append(f"alias {self.alias}")
        if self.model_id:
            bits.append(f"model {self.model_id}")
        if self.run_id:
            bits.append(f"run {self.run_id}")
        return self.uri + (f" ({', '.join(bits)})" if bits else "")


# --------------------------------------------------------------------------------------
# the cache


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


def _entry_name(slug: str, *key: str) -> str:
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


def _read_entry(entry: Path) -> dict[str, Any] | None:
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


def _download(
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
                if _read_entry(entry) is None:
                    raise
                # Another envbuild finished the same download first: use its copy.
                shutil.rmtree(tmp, ignore_errors=True)
                return _read_entry(entry) or meta
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


# --------------------------------------------------------------------------------------
# resolving


def _registered_meta(path: Path) -> tuple[str | None, str | None]:
    """(name, version) from the ``registered_model_meta`` file MLflow writes into a model
    downloaded from the registry, when there is one."""
    folder = path if path.is_dir() else path.parent
    try:
        doc = yaml.safe_load((folder / REGISTERED_MODEL_META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    name, version = doc.get("model_name"), doc.get("model_version")
    return (
        str(name) if isinstance(name, (str, int)) else None,
        str(version) if isinstance(version, (str, int)) else None,
    )


def _source(
    ref: ModelRef, path: Path, *, tracking_uri: str | None, cached: bool, **fields: Any
) -> ModelSource:
    meta_name, meta_version = _registered_meta(path)
    name = fields.pop("registered_name", None) or meta_name
    version = fields.pop("version", None) or (meta_version if name == meta_name else None)
    return ModelSource(
        path=path,
        uri=ref.shown,
        kind=ref.kind,
        registered_name=name,
        version=version,
        tracking_uri=safe_uri(tracking_uri) if tracking_uri else None,
        cached=cached,
        **fields,
    )


def _connect(ref: ModelRef, tracking_uri: str | None, registry_uri: str | None) -> Mlflow:
    from envbuild._mlflow import Mlflow

    mlflow = Mlflow(shown=ref.shown, tracking_uri=tracking_uri, registry_uri=registry_uri)
    mlflow.probe()
    return mlflow


def materialize(
    location: str,
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ModelSource:
    """Turn ``location`` into a local model folder (see the module docstring).

    ``tracking_uri`` defaults to $MLFLOW_TRACKING_URI, ``registry_uri`` to
    $MLFLOW_REGISTRY_URI, then to the tracking URI. Raises SourceError (exit 2, EB6xx)."""
    ref = parse(location)
    if ref.kind in ("local", "file"):
        assert ref.path is not None
        return _source(ref, ref.path, tracking_uri=None, cached=False)

    tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    registry = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or tracking
    root = cache_root(cache_dir)
    if ref.kind == "artifact":
        return _artifact(ref, tracking, registry, root)
    if not tracking:
        raise SourceError(
            f"{ref.shown}: no tracking server to ask",
            hint="pass --tracking-uri http://host:5000 (or file:./mlruns), or set "
            "MLFLOW_TRACKING_URI",
            code="EB602",
        )
    if ref.kind == "runs":
        return _runs(ref, tracking, registry, root)
    return _models(ref, tracking, registry, root)


def _hit(ref: ModelRef, entry: Path, tracking: str | None) -> ModelSource | None:
    meta = _read_entry(entry)
    if meta is None:
        return None
    log.info("%s: using the cached copy %s", ref.shown, entry)
    return _from_meta(ref, entry, meta, tracking, cached=True)


def _from_meta(
    ref: ModelRef, entry: Path, meta: dict[str, Any], tracking: str | None, *, cached: bool
) -> ModelSource:
    def get(key: str) -> str | None:
        value = meta.get(key)
        return str(value) if value is not None else None

    return _source(
        ref,
        entry / str(meta["path"]),
        tracking_uri=tracking,
        cached=cached,
        run_id=get("run_id"),
        registered_name=get("registered_name"),
        version=get("version"),
        alias=ref.alias,
        stage=ref.stage,
        model_id=get("model_id"),
        artifact_path=get("artifact_path"),
    )


def _runs(ref: ModelRef, tracking: str, registry: str | None, root: Path) -> ModelSource:
    assert ref.run_id is not None and ref.artifact_path is not None
    entry = (
        root
        / "runs"
        / _entry_name(
            f"{ref.run_id}-{ref.artifact_path}",
            "runs",
            server_id(tracking),
            ref.run_id,
            ref.artifact_path,
        )
    )
    hit = _hit(ref, entry, tracking)
    if hit is not None:
        return hit
    mlflow = _connect(ref, tracking, registry)
    artifact_root = mlflow.run(ref.run_id)
    # MLflow takes no runs:/<id> without a path: the run's whole artifact root is its URI.
    uri = f"runs:/{ref.run_id}/{ref.artifact_path}" if ref.artifact_path else artifact_root
    if uri is None:
        raise SourceError(
            f"{ref.shown}: run {ref.run_id} has no artifact location",
            hint="name the artifact path: runs:/<run_id>/<artifact path>",
            code="EB607",
        )
    meta = _download(
        mlflow,
        ref=ref,
        uri=uri,
        root=root,
        entry=entry,
        meta={"uri": ref.shown, "run_id": ref.run_id, "artifact_path": ref.artifact_path},
    )
    return _from_meta(ref, entry, meta, tracking, cached=False)


def _models(ref: ModelRef, tracking: str, registry: str | None, root: Path) -> ModelSource:
    if ref.model_id is not None:
        entry = (
            root
            / "models"
            / _entry_name(ref.model_id, "model-id", server_id(tracking), ref.model_id)
        )
        hit = _hit(ref, entry, tracking)
        if hit is not None:
            return hit
        server = _connect(ref, tracking, registry)
        logged = server.logged_model(ref.model_id)
        meta = _download(
            server,
            ref=ref,
            folder=ref.model_id,
            uri=f"models:/{ref.model_id}",
            root=root,
            entry=entry,
            meta={"uri": ref.shown, "model_id": ref.model_id, "run_id": logged.run_id},
        )
        return _from_meta(ref, entry, meta, tracking, cached=False)

    assert ref.name is not None
    name = ref.name
    mlflow: Mlflow | None = None
    mv: ModelVersion | None = None
    if ref.version is not None:
        version = ref.version
    else:
        # An alias, a stage or "latest" moves: ask the registry which version it is now.
        mlflow = _connect(ref, tracking, registry)
        if ref.alias is not None:
            mv = mlflow.model_version_by_alias(name, ref.alias)
        else:
            mv = mlflow.latest_version(name, ref.stage)
        version = mv.version
        log.info("%s: resolved to version %s", ref.shown, version)
    entry = (
        root
        / "models"
        / _entry_name(f"{name}-v{version}", "models", server_id(registry), name, version)
    )
    hit = _hit(ref, entry, tracking)
    if hit is not None:
        return hit
    if mlflow is None:
        mlflow = _connect(ref, tracking, registry)
    if mv is None:
        mv = mlflow.model_version(name, version)
    meta = _download(
        mlflow,
        ref=ref,
        folder=name,
        uri=f"models:/{name}/{version}",
        root=root,
        entry=entry,
        meta={
            "uri": f"models:/{name}/{version}",
            "registered_name": name,
            "version": version,
            "run_id": mv.run_id,
            "model_id": mv.model_id,
        },
    )
    return _from_meta(ref, entry, meta, tracking, cached=False)


def _artifact(ref: ModelRef, tracking: str | None, registry: str | None, root: Path) -> ModelSource:
    if ref.raw.lower().startswith("mlflow-artifacts:") and not tracking:
        raise SourceError(
            f"{ref.shown}: mlflow-artifacts:/ URIs are served by a tracking server",
            hint="pass --tracking-uri http://host:5000 or set MLFLOW_TRACKING_URI",
            code="EB602",
        )
    # No version to key by: the same URI is downloaded again and replaces the old copy.
    tail = ref.raw.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    entry = root / "artifact" / _entry_name(tail, "artifact", server_id(ref.raw), ref.raw)
    from envbuild._mlflow import Mlflow

    mlflow = Mlflow(shown=ref.shown, tracking_uri=tracking, registry_uri=registry)
    if ref.raw.lower().startswith("mlflow-artifacts:"):
        mlflow.probe()
    meta = _download(
        mlflow,
        ref=ref,
        uri=ref.raw,
        root=root,
        entry=entry,
        meta={"uri": ref.shown},
        replace=True,
    )
    return _from_meta(ref, entry, meta, tracking, cached=False)


# --------------------------------------------------------------------------------------
# the CLI side: MODEL plus --tracking-uri, --registry-uri, --cache-dir

F = TypeVar("F", bound=Callable[..., Any])


def model_argument(func: F) -> F:
    """Add the MODEL argument and the options that locate it; call ``func`` with
    ``model=`` a ModelSource. Put it *below* ``@common`` so that its errors become
    envbuild's one-line output::

        @main.command()
        @common
        @model_argument
        def show(model: ModelSource, fmt: str, command: str) -> None: ...
    """

    @click.argument("model", metavar="MODEL")
    @click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        show_envvar=True,
        help="MLflow tracking server for runs:/ and models:/ MODELs.",
    )
    @click.option(
        "--registry-uri",
        envvar="MLFLOW_REGISTRY_URI",
        show_envvar=True,
        help="MLflow model registry, if not the tracking server.",
    )
    @click.option(
        "--cache-dir",
        envvar="ENVBUILD_CACHE_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Where downloaded models are kept [default: ~/.cache/envbuild/models].",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        model: str,
        tracking_uri: str | None,
        registry_uri: str | None,
        cache_dir: Path | None,
        **kwargs: Any,
    ) -> Any:
        source = materialize(
            model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
        )
        return func(*args, model=source, **kwargs)

    return cast(F, wrapper)
