"""What the routes answer, prepared once per process: MLflow's /invocations, the V2 routes,
/metrics and the OpenAPI document, over the scorer, its prediction pool and the batcher."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
from typing import Any

from .batching import Batcher, row_wise
from .config import Config
from .metrics import Metrics
from .openapi import build_openapi
from .protocol import RequestError, Response, Scorer, error_body
from .v2 import V2, error

log = logging.getLogger("envbuild.serve")


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
                data, params, unwrapped = self.scorer.parse(body, content_type)
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
                data, params, req = self.v2.decode(body, header)
            finally:
                if self.batcher is not None:
                    self.batcher.arriving(-1)
            return self.v2.encode(self.predict(data, params), req)
        except RequestError as exc:
            return error(exc.status, exc.message)
        except Exception as exc:
            log.exception("unexpected error handling an inference request")
            return error(500, f"{type(exc).__name__}: {exc}")


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
