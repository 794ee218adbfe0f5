"""Private adapter around MLflow's tracking/registry client and artifact download.

Only ``envbuild.sources`` uses it, and only for locations that are not on the local disk.
MLflow is an optional extra (``envbuild[mlflow]``, i.e. mlflow-skinny); it is imported here,
lazily, through ``importlib`` so that nothing else in envbuild (nor mypy) ever sees it.

What this module smooths over:
- MLflow 2.x ignores ``tracking_uri=`` in ``download_artifacts(artifact_uri=...)`` and has
  no ``registry_uri=``; the URIs are also installed as MLflow's process-wide defaults for
  the duration of a call, then restored.
- MLflow retries a refused connection for minutes; an http(s) tracking server is probed
  once first, so "server down" is a fast, clear error.
- MLflow logs (and urllib3's retry warnings) would print to stderr; they are forwarded to
  envbuild's logger at debug level, credentials masked, and warnings are silenced.
- MlflowException error codes become envbuild errors (EB6xx) naming the URI.
- MLflow 3's usage telemetry is switched off (MLFLOW_DISABLE_TELEMETRY) unless set.
- All of the above is process-wide state, so MLflow calls are serialised by one lock
  (``envbuild check`` materializes models from several threads).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._redact import redact_uri
from envbuild.errors import SourceError

log = logging.getLogger("envbuild")

INSTALL_HINT = "install the MLflow client: pip install 'envbuild[mlflow]'"
PROBE_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
_LOCK = threading.RLock()

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_DENIED = {"PERMISSION_DENIED", "UNAUTHENTICATED", "UNAUTHORIZED"}
_REASONS = re.compile(
    r"Connection refused|Name or service not known|Temporary failure in name resolution|"
    r"No route to host|Network is unreachable|timed out",
    re.IGNORECASE,
)
_UNREACHABLE = re.compile(
    r"Max retries exceeded|Failed to establish a new connection|" + _REASONS.pattern,
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """A registry model version, as much of it as provenance needs."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    model_id: str | None


@dataclass(frozen=True, kw_only=True)
class LoggedModel:
    """An MLflow 3 logged model (``models:/m-...``)."""

    model_id: str
    run_id: str | None
    name: str | None


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return redact_uri(line)[:300]


class _ToEnvbuildLog(logging.Handler):
    """Forward a third-party record to envbuild's logger at debug level, credentials
    masked: MLflow's own output must not reach stderr between envbuild's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log.debug("%s: %s", record.name, redact_uri(record.getMessage()))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with _LOCK:
        yield from _quiet_unlocked()


def _quiet_unlocked() -> Iterator[None]:
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    for name in ("mlflow", "urllib3", "alembic"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers[:] = [_ToEnvbuildLog()]
        logger.propagate = False
    old_bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
        if old_bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old_bar


def import_mlflow(shown: str) -> Any:
    """Import MLflow or raise EB601 naming the extra to install. MLflow's usage telemetry
    (a remote config fetch, events, an id file in ~/.config) stays off unless the user
    turned it on: envbuild only downloads models."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        with _quiet():
            mlflow = importlib.import_module("mlflow")
            importlib.import_module("mlflow.artifacts")
            importlib.import_module("mlflow.exceptions")
            importlib.import_module("mlflow.tracking")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "mlflow":
            raise SourceError(
                f"{shown}: the MLflow client is not installed",
                hint=INSTALL_HINT,
                code="EB601",
            ) from None
        missing = (exc.name or "").split(".")[0]
        package = {"pkg_resources": "setuptools"}.get(missing, missing)
        raise SourceError(
            f"{shown}: MLflow could not be imported: {_first_line(str(exc))}",
            hint=f"pip install {package}" if package else INSTALL_HINT,
            code="EB601",
        ) from None
    except ImportError as exc:
        raise SourceError(
            f"{shown}: MLflow could not be imported: {_first_line(str(exc))}",
            hint="reinstall the MLflow client: pip install --force-reinstall 'envbuild[mlflow]'",
            code="EB601",
        ) from None
    return mlflow


class Mlflow:
    """One tracking server (and registry) as envbuild needs it: look things up, download."""

    def __init__(self, *, shown: str, tracking_uri: str | None, registry_uri: str | None) -> None:
        self.shown = shown
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._mlflow = import_mlflow(shown)
        self._exc: type[BaseException] = self._mlflow.exceptions.MlflowException
        self._client: Any = None

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _uris(self) -> Iterator[None]:
        """Install the tracking and registry URIs as MLflow's defaults for one call (MLflow
        2.x reads them from there), restoring the previous values afterwards."""
        tracking_utils = self._mlflow.tracking._tracking_service.utils
        registry_utils = self._mlflow.tracking._model_registry.utils
        old_tracking = getattr(tracking_utils, "_tracking_uri", None)
        old_registry = getattr(registry_utils, "_registry_uri", None)
        try:
            if self.tracking_uri:
                tracking_utils._tracking_uri = self.tracking_uri
            if self.registry_uri:
                registry_utils._registry_uri = self.registry_uri
            yield
        finally:
            tracking_utils._tracking_uri = old_tracking
            registry_utils._registry_uri = old_registry

    @contextlib.contextmanager
    def _call(self, what: str, *, not_found: tuple[str, str, str] | None = None) -> Iterator[None]:
        """Run one MLflow call: quiet, with our URIs, its exceptions turned into EB6xx.
        ``not_found`` is (code, message, hint) for a RESOURCE_DOES_NOT_EXIST answer."""
        try:
            with _LOCK, _quiet(), self._uris():
                yield
        except SourceError:
            raise
        except ModuleNotFoundError as exc:
            raise SourceError(
                f"{self.shown}: MLflow needs the Python package {exc.name!r} for this store",
                hint=f"pip install {exc.name}" if exc.name else INSTALL_HINT,
                code="EB611",
            ) from None
        except self._exc as exc:
            raise self._translate(exc, what, not_found) from None
        except OSError as exc:
            raise SourceError(
                f"{self.shown}: {what} failed: {_first_line(str(exc))}",
                hint="check the URI and that the artifact store is reachable",
                code="EB607",
            ) from None

    def _translate(
        self, exc: BaseException, what: str, not_found: tuple[str, str, str] | None
    ) -> SourceError:
        code = str(getattr(exc, "error_code", "") or "")
        message = _first_line(getattr(exc, "message", None) or str(exc))
        missing = code in _NOT_FOUND or (
            code == "INVALID_PARAMETER_VALUE" and "not found" in message.lower()
        )
        if missing and not_found is not None:
            nf_code, nf_message, nf_hint = not_found
            return SourceError(nf_message, hint=nf_hint, code=nf_code)
        if code in _DENIED or re.search(r"\b(401|403)\b", message):
            return SourceError(
                f"{self.shown}: the tracking server refused access ({message})",
                hint="set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD",
                code="EB609",
            )
        if _UNREACHABLE.search(message):
            return SourceError(
                f"{self.shown}: cannot reach the tracking server "
                f"{redact_uri(self.tracking_uri or '')}",
                hint="start the server or fix --tracking-uri / MLFLOW_TRACKING_URI",
                code="EB603",
            )
        if "Could not find a registered artifact repository" in message:
            return SourceError(
                f"{self.shown}: MLflow does not know this artifact store",
                hint="use runs:/, models:/, a local path or an artifact URI MLflow supports "
                "(s3://, gs://, wasbs://, hdfs://, mlflow-artifacts:/, http(s)://)",
                code="EB600",
            )
        if code in _NOT_FOUND:
            return SourceError(
                f"{self.shown}: {what}: not found ({message})",
                hint="check the URI: list the run's artifacts in the MLflow UI",
                code="EB607",
            )
        return SourceError(
            f"{self.shown}: {what} failed: {message}",
            hint="run again with -v for details; check the tracking server's log",
            code="EB610",
        )

    def probe(self) -> None:
        """Fail fast (EB603) when an http(s) tracking server does not answer at all. Any
        HTTP answer counts as up; TLS problems are left to MLflow's own settings."""
        uri = self.tracking_uri or ""
        if not uri.lower().startswith(("http://", "https://")):
            return
        requests = importlib.import_module("requests")
        try:
            with _quiet():
                requests.get(uri, timeout=PROBE_TIMEOUT, allow_redirects=False).close()
        except requests.exceptions.SSLError:
            return
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            reason = _REASONS.search(str(exc))
            why = f" ({reason.group(0).lower()})" if reason else ""
            raise SourceError(
                f"{self.shown}: cannot reach the tracking server {redact_uri(uri)}{why}",
                hint="start the server or fix --tracking-uri / MLFLOW_TRACKING_URI",
                code="EB603",
            ) from None

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._call("connecting to the tracking server"):
                self._client = self._mlflow.tracking.MlflowClient(
                    tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
                )
        return self._client

    # -- look-ups ----------------------------------------------------------------------

    def run(self, run_id: str) -> str | None:
        """Check the run exists; return its artifact root URI."""
        client = self.client
        with self._call(
            f"looking up run {run_id}",
            not_found=(
                "EB604",
                f"{self.shown}: no run {run_id} on {redact_uri(self.tracking_uri or '')}",
                "check the run id (MLflow UI: the run's Overview) and --tracking-uri",
            ),
        ):
            run = client.get_run(run_id)
        return str(run.info.artifact_uri) if run.info.artifact_uri else None

    def _registered(self, name: str) -> None:
        client = self.client
        with self._call(
            f"looking up registered model {name!r}",
            not_found=(
                "EB605",
                f"{self.shown}: no registered model {name!r} on "
                f"{redact_uri(self.registry_uri or self.tracking_uri or '')}",
                "check the name (MLflow UI: Models) and --tracking-uri / MLFLOW_REGISTRY_URI",
            ),
        ):
            client.get_registered_model(name)

    @staticmethod
    def _version(mv: Any) -> ModelVersion:
        return ModelVersion(
            name=str(mv.name),
            version=str(mv.version),
            run_id=str(mv.run_id) if getattr(mv, "run_id", None) else None,
            source=str(mv.source) if getattr(mv, "source", None) else None,
            model_id=str(mv.model_id) if getattr(mv, "model_id", None) else None,
        )

    def model_version(self, name: str, version: str) -> ModelVersion:
        self._registered(name)
        with self._call(
            f"looking up version {version} of {name!r}",
            not_found=(
                "EB606",
                f"{self.shown}: registered model {name!r} has no version {version}",
                f"use an existing version, an alias (models:/{name}@<alias>) or "
                f"models:/{name}/latest",
            ),
        ):
            mv = self.client.get_model_version(name, version)
        return self._version(mv)

    def model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        self._registered(name)
        nf = (
            "EB606",
            f"{self.shown}: registered model {name!r} has no alias {alias!r}",
            f"set it (MlflowClient().set_registered_model_alias) or use models:/{name}/<version>",
        )
        with self._call(f"looking up alias {alias!r} of {name!r}", not_found=nf):
            mv = self.client.get_model_version_by_alias(name, alias)
        if mv is None:
            raise SourceError(nf[1], hint=nf[2], code=nf[0])
        return self._version(mv)

    def latest_version(self, name: str, stage: str | None) -> ModelVersion:
        """The highest version (of a stage, when given), as MLflow resolves
        ``models:/name/latest`` and ``models:/name/<stage>``."""
        self._registered(name)
        what = f"stage {stage!r} of {name!r}" if stage else f"versions of {name!r}"
        with self._call(f"looking up {what}"):
            found = list(self.client.get_latest_versions(name, [stage] if stage else None))
        if not found:
            raise SourceError(
                f"{self.shown}: registered model {name!r} has no "
                + (f"version in stage {stage!r}" if stage else "versions"),
                hint=f"register a version, or use models:/{name}@<alias>",
                code="EB606",
            )
        return self._version(max(found, key=lambda mv: int(mv.version)))

    def logged_model(self, model_id: str) -> LoggedModel:
        client = self.client
        if not hasattr(client, "get_logged_model"):
            raise SourceError(
                f"{self.shown}: models:/<model id> URIs need MLflow 3",
                hint="pip install 'mlflow-skinny>=3', or use runs:/ or models:/<name>/<version>",
                code="EB600",
            )
        with self._call(
            f"looking up logged model {model_id}",
            not_found=(
                "EB606",
                f"{self.shown}: no logged model {model_id} on {redact_uri(self.tracking_uri or '')}",
                "check the model id (MLflow UI: the run's Logged models) and --tracking-uri",
            ),
        ):
            model = client.get_logged_model(model_id)
        return LoggedModel(
            model_id=model_id,
            run_id=str(model.source_run_id) if getattr(model, "source_run_id", None) else None,
            name=str(model.name) if getattr(model, "name", None) else None,
        )

    # -- download ----------------------------------------------------------------------

    def download(self, artifact_uri: str, dst: Path) -> Path:
        """Download ``artifact_uri`` (runs:/, models:/, or an artifact store URI) under
        ``dst`` with MLflow's own machinery; return the local path MLflow reports."""
        download = self._mlflow.artifacts.download_artifacts
        params = inspect.signature(download).parameters
        kwargs: dict[str, Any] = {}
        if "tracking_uri" in params and self.tracking_uri:
            kwargs["tracking_uri"] = self.tracking_uri
        if "registry_uri" in params and self.registry_uri:
            kwargs["registry_uri"] = self.registry_uri
        dst.mkdir(parents=True, exist_ok=True)
        with self._call(
            "downloading the model",
            not_found=(
                "EB607",
                f"{self.shown}: nothing to download at this URI",
                "check the artifact path (MLflow UI: the run's Artifacts tab)",
            ),
        ):
            local = download(artifact_uri=artifact_uri, dst_path=str(dst), **kwargs)
        return Path(local)
