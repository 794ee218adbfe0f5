"""What the routes answer, prepared once per process: MLflow's /invocations, the V2 routes,
/metrics and the OpenAPI document, over the scorer, its prediction pool and the batcher.

Both HTTP layers (server.py's own, asgi.py's under uvicorn) read a request's head and body
and call the two dispatchers here: ``in_flight_route`` once the head is read (the /metrics
label, counted in flight while the body is read and answered) and ``App.answer``."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from .batching import Batcher, row_wise
from .config import Config
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics
from .openapi import build_openapi
from .protocol import RequestError, Response, Scorer, error_body
from .v2 import V2, error

log = logging.getLogger("envbuild.serve")
access_log = logging.getLogger("envbuild.serve.access")

_PING = Response(200, b"\n")
_EMPTY = Response(200, b"")
_V2_MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(?:/(ready|infer))?$")
GET_ROUTES = ("/ping", "/health", "/version", "/openapi.json", "/metrics", "/v2",
              "/v2/health/live", "/v2/health/ready")  # fmt: skip
_ROUTES_HELP = (
    "routes: /invocations (POST), /ping, /health, /version, /openapi.json, /metrics, "
    "/v2/health/live, /v2/health/ready, /v2/models/<name>, /v2/models/<name>/ready, "
    "/v2/models/<name>/infer (POST)"
)


def in_flight_route(method: str, path: str) -> str | None:
    """The /metrics route a request is counted under from when its head is read, or None
    (then it counts as "other" once answered, never in flight). ``path``: undecoded."""
    if method in ("GET", "HEAD"):
        if path in GET_ROUTES or path == "/invocations":
            return path
        match = _V2_MODEL.match(path)
        if match is None:
            return None
        return f"/v2/models/{{name}}/{match[3]}" if match[3] else "/v2/models/{name}"
    if method == "POST":
        if path == "/invocations":
            return path
        match = _V2_MODEL.match(path)
        if match is not None and match[3] == "infer":
            return "/v2/models/{name}/infer"
    return None


def too_large(limit: int, length: int | None = None) -> Response:
    """413 for a body over ENVBUILD_MAX_BODY: ``length`` from Content-Length, None for a
    chunked body found over the limit while reading it."""
    if length is None:
        message = f"body over {limit} bytes"
    else:
        message = f"body of {length} bytes is over the limit of {limit} (ENVBUILD_MAX_BODY)"
    return Response(413, error_body("REQUEST_LIMIT_EXCEEDED", message), close=True)


def log_access(client: str, requestline: str, status: int, size: int, seconds: float) -> None:
    access_log.info('%s "%s" %d %d %.1fms', client, requestline, status, size, seconds * 1000)


class App:
    """Routes to bytes; everything the handler needs, prepared once per process."""

    def __init__(self, scorer: Scorer, config: Config) -> None:
        self.scorer = scorer
        self.config = config
        self.version = Response(200, scorer.mlflow_version.encode(), "text/plain; charset=utf-8")
        self.openapi = Response(200, json.dumps(openapi_for(scorer), indent=1).encode())
        # Created here, in the master before it forks: the workers share the counters.
        self.metrics = Metrics(config.workers)
        self.metrics.workers = config.workers
        self.v2 = V2(scorer, config.model_name)
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.batcher: Batcher | None = None

    @property
    def batching(self) -> bool:
        """Whether requests get merged (ENVBUILD_BATCH; auto: row-wise flavors only)."""
        if not hasattr(self.scorer, "parse") or self.config.batch == "0":
            return False
        return self.config.batch == "1" or row_wise(self.scorer.metadata)

    def start_pool(self) -> None:
        # Created after fork: a thread pool does not survive os.fork().
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.threads, thread_name_prefix="predict"
        )
        if self.batching:
            self.batcher = Batcher(
                self.scorer.predict,
                self.pool,
                self.config.threads,
                self.config.batch_max,
                self.config.batch_wait,
                self.metrics.batch,
            )

    def answer(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        v2_header: str | None = None,
    ) -> Response:
        """The answer to ``method path`` (``path`` undecoded, no query string); ``body``
        and the headers matter for POST only. HEAD is answered as GET (the layer drops
        the body)."""
        if method in ("GET", "HEAD"):
            return self._get(path)
        if method == "POST":
            return self._post(path, body, content_type, v2_header)
        return Response(
            405,
            error_body("BAD_REQUEST", f"method {method} not allowed"),
            headers=(("Allow", "GET, HEAD, POST"),),
            close=True,
        )

    def _get(self, path: str) -> Response:
        if path in ("/ping", "/health"):
            return _PING
        if path == "/version":
            return self.version
        if path == "/openapi.json":
            return self.openapi
        if path == "/metrics":
            return Response(200, self.metrics.render(), METRICS_TYPE)
        if path == "/v2":
            return self.v2.server_metadata
        if path in ("/v2/health/live", "/v2/health/ready"):
            return _EMPTY
        if path == "/invocations":
            return Response(
                405,
                error_body("BAD_REQUEST", "use POST for /invocations"),
                headers=(("Allow", "POST"),),
            )
        match = _V2_MODEL.match(path)
        if match is None:
            return _not_found(path)
        name, version = unquote(match[1]), match[2] and unquote(match[2])
        bad = self.v2.check(name, version)
        if bad is not None:
            return bad
        if match[3] == "infer":
            error_405 = self.v2.error_405
            return replace(error_405, headers=(*error_405.headers, ("Allow", "POST")))
        return _EMPTY if match[3] == "ready" else self.v2.model_metadata

    def _post(
        self, path: str, body: bytes, content_type: str | None, v2_header: str | None
    ) -> Response:
        if path == "/invocations":
            return self.invocations(body, content_type)
        match = _V2_MODEL.match(path)
        if match is not None and match[3] == "infer":
            name, version = unquote(match[1]), match[2] and unquote(match[2])
            return self.infer(name, version, body, v2_header)
        if path in GET_ROUTES or match is not None:
            return Response(
                405,
                error_body("BAD_REQUEST", f"use GET for {path}"),
                headers=(("Allow", "GET, HEAD"),),
            )
        return _not_found(path)

    def _deadline(self) -> RequestError:
        log.error("prediction took longer than %gs (ENVBUILD_TIMEOUT)", self.config.timeout)
        return RequestError(
            504,
            f"the prediction took longer than {self.config.timeout:g}s (ENVBUILD_TIMEOUT)",
            "DEADLINE_EXCEEDED",
        )

    def _wait(self, future: concurrent.futures.Future[Any]) -> Any:
        try:
            return future.result(timeout=self.config.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._deadline() from None

    def invocations(self, body: bytes, content_type: str | None) -> Response:
        if self.batcher is None:
            if self.pool is None:
                return self.scorer.invoke(body, content_type)
            try:
                result: Response = self._wait(
                    self.pool.submit(self.scorer.invoke, body, content_type)
                )
                return result
            except RequestError as exc:
                return exc.response()
        try:
            self.batcher.arriving(1)
            try:
                data, params, unwrapped = self.scorer.parse(body, content_type, defer=True)
                future = self.batcher.submit(data, params)
            finally:
                self.batcher.arriving(-1)
            return Response(200, self.scorer.serialize(self._wait(future), unwrapped))
        except RequestError as exc:
            return exc.response()
        except Exception as exc:  # a bug here must still answer, not drop the connection
            log.exception("unexpected error handling a request")
            return Response(500, error_body("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"))

    def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """The model's raw answer, through the batcher or the pool; raises RequestError."""
        if self.batcher is not None:
            return self._wait(self.batcher.submit(data, params))
        if self.pool is not None:
            return self._wait(self.pool.submit(self.scorer.predict, data, params))
        return self.scorer.predict(data, params)

    def infer(self, name: str, version: str | None, body: bytes, header: str | None) -> Response:
        """POST /v2/models/{name}[/versions/{version}]/infer."""
        bad = self.v2.check(name, version)
        if bad is not None:
            return bad
        try:
            if self.batcher is not None:
                self.batcher.arriving(1)
            try:
                data, params, req = self.v2.decode(body, header, self.batcher is not None)
            finally:
                if self.batcher is not None:
                    self.batcher.arriving(-1)
            return self.v2.encode(self.predict(data, params), req)
        except RequestError as exc:
            return error(exc.status, exc.message)
        except Exception as exc:
            log.exception("unexpected error handling an inference request")
            return error(500, f"{type(exc).__name__}: {exc}")


def _not_found(path: str) -> Response:
    return Response(404, error_body("ENDPOINT_NOT_FOUND", f"no route {path!r}; {_ROUTES_HELP}"))


def openapi_for(scorer: Scorer) -> dict[str, Any]:
    meta = scorer.metadata
    example = None
    info = getattr(meta, "saved_input_example_info", None) or {}
    path = info.get("serving_input_path") if isinstance(info, dict) else None
    model_dir = getattr(scorer, "model_dir", None)
    if path and model_dir:
        full = os.path.join(model_dir, path)
        try:
            if os.path.getsize(full) <= 65536:
                with open(full, encoding="utf-8") as f:
                    example = json.load(f)
        except (OSError, ValueError):
            example = None
    uuid = getattr(meta, "model_uuid", None)
    return build_openapi(
        scorer.signature_dict(),
        title=f"MLflow model {uuid}" if uuid else "MLflow model",
        version=str(uuid or "1"),
        mlflow_version=scorer.mlflow_version,
        example=example,
    )
