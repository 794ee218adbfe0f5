"""``materialize``: a model location made a local folder, through the download cache when
it is remote; ``ModelSource`` is the result."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from envbuild._redact import redact_uri
from envbuild.errors import SourceError

if TYPE_CHECKING:
    from envbuild._adapters.mlflow import Mlflow, ModelVersion


from envbuild.findings import Code, Severity, table
from envbuild.sources.cache import (
    cache_root,
    download,
    entry_name,
    read_entry,
    server_id,
)
from envbuild.sources.uri import Kind, ModelRef, parse

log = logging.getLogger("envbuild")


EB600 = Code("EB600", Severity.ERROR, "malformed or unsupported model URI")
EB601 = Code(
    "EB601", Severity.ERROR, "the MLflow client is not installed (pip install 'envbuild[mlflow]')"
)
EB602 = Code(
    "EB602",
    Severity.ERROR,
    "runs:/ or models:/ without a tracking server (--tracking-uri, MLFLOW_TRACKING_URI)",
)
EB603 = Code("EB603", Severity.ERROR, "the tracking server cannot be reached")
EB604 = Code("EB604", Severity.ERROR, "no such run on the tracking server")
EB605 = Code("EB605", Severity.ERROR, "no such registered model")
EB606 = Code("EB606", Severity.ERROR, "no such model version, alias, stage or logged model")
EB607 = Code(
    "EB607",
    Severity.ERROR,
    "nothing to download at the URI, or the download is not an MLflow model folder",
)
EB608 = Code(
    "EB608", Severity.ERROR, "the download cache cannot be used (--cache-dir, ENVBUILD_CACHE_DIR)"
)
EB609 = Code("EB609", Severity.ERROR, "the tracking server refused access (credentials)")
EB610 = Code("EB610", Severity.ERROR, "another MLflow error")
EB611 = Code(
    "EB611", Severity.ERROR, "MLflow needs another package for this store (boto3, sqlalchemy, ...)"
)
EB612 = Code(
    "EB612",
    Severity.ERROR,
    "a command would write into a downloaded model (use --output, --check, --dry-run)",
)
CODES: dict[str, str] = table(
    EB600, EB601, EB602, EB603, EB604, EB605, EB606, EB607, EB608, EB609, EB610, EB611, EB612
)

SOURCE_FILE = "source.json"

REGISTERED_MODEL_META = "registered_model_meta"
LABEL_PREFIX = "io.envbuild.source."

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
        tracking_uri=redact_uri(tracking_uri) if tracking_uri else None,
        cached=cached,
        **fields,
    )


def _connect(ref: ModelRef, tracking_uri: str | None, registry_uri: str | None) -> Mlflow:
    from envbuild._adapters.mlflow import Mlflow

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
    meta = read_entry(entry)
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
        / entry_name(
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
    meta = download(
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
            / entry_name(ref.model_id, "model-id", server_id(tracking), ref.model_id)
        )
        hit = _hit(ref, entry, tracking)
        if hit is not None:
            return hit
        server = _connect(ref, tracking, registry)
        logged = server.logged_model(ref.model_id)
        meta = download(
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
        / entry_name(f"{name}-v{version}", "models", server_id(registry), name, version)
    )
    hit = _hit(ref, entry, tracking)
    if hit is not None:
        return hit
    if mlflow is None:
        mlflow = _connect(ref, tracking, registry)
    if mv is None:
        mv = mlflow.model_version(name, version)
    meta = download(
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
    entry = root / "artifact" / entry_name(tail, "artifact", server_id(ref.raw), ref.raw)
    from envbuild._adapters.mlflow import Mlflow

    mlflow = Mlflow(shown=ref.shown, tracking_uri=tracking, registry_uri=registry)
    if ref.raw.lower().startswith("mlflow-artifacts:"):
        mlflow.probe()
    meta = download(
        mlflow,
        ref=ref,
        uri=ref.raw,
        root=root,
        entry=entry,
        meta={"uri": ref.shown},
        replace=True,
    )
    return _from_meta(ref, entry, meta, tracking, cached=False)
