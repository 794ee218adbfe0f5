"""The HTTP layer on uvicorn (ENVBUILD_HTTP=uvicorn): an ASGI application over app.py's App.

The routes, their answers, the body limit, the 504 and /metrics are app.py's, as for the
builtin layer (server.py); this module only turns ASGI messages into ``App.answer`` calls.
uvicorn is imported when this layer is chosen, never otherwise.

Processes: server.py's, for both layers. The master binds the socket before the model loads,
then forks ENVBUILD_WORKERS workers that share the loaded model and /metrics's counters; here
each worker runs ``uvicorn.Server`` on that socket (as gunicorn's UvicornWorker does), which
handles SIGTERM itself: stop accepting, close idle connections, wait up to ENVBUILD_GRACE for
the rest. Not ``uvicorn --workers``: it spawns its workers (multiprocessing "spawn"), so each
would import MLflow and load the model again, and /metrics would count one worker's requests.

Differences from the builtin layer: a request uvicorn rejects before the application sees it
(malformed request line, headers, Content-Length or chunked body) gets uvicorn's plain-text
400, not a JSON one; there is no concurrency limit (``--limit-concurrency`` would answer 503
where the builtin layer queues).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import inspect
import logging
import math
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Tuple

from . import __version__
from .app import App, in_flight_route, log_access, too_large
from .protocol import Response
from .v2 import HEADER as V2_HEADER

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("envbuild.serve")

# A POST (a prediction) is answered on a thread of its own, as the builtin layer answers each
# connection on one: its wait for the model must not block the event loop, and no request
# should wait for a free thread, since ENVBUILD_TIMEOUT runs from when the App gets it.
REQUEST_THREADS = 1024

_SERVER = (b"server", f"envbuild-serve/{__version__}".encode("latin-1"))
_CLOSE = (b"connection", b"close")
_CONTENT_TYPE = b"content-type"
_CONTENT_LENGTH = b"content-length"
_V2_HEADER = V2_HEADER.lower().encode("latin-1")

Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = List[Tuple[bytes, bytes]]


def find_uvicorn() -> str | None:
    """None when uvicorn imports, else why not, in one line (checked before the model loads)."""
    if importlib.util.find_spec("uvicorn") is None:
        return (
            "ENVBUILD_HTTP=uvicorn, but uvicorn is not installed in this environment "
            "(mlflow-skinny 3.x installs it, older MLflow does not): install uvicorn or set "
            "ENVBUILD_HTTP=builtin"
        )
    try:
        importlib.import_module("uvicorn")
    except Exception as exc:
        return f"ENVBUILD_HTTP=uvicorn, but uvicorn does not import: {type(exc).__name__}: {exc}"
    return None


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:  # the first, as http.server's headers.get gives
        if key == name:
            return value.decode("latin-1")
    return None


class ASGIApp:
    """``App`` as an ASGI 3 application (HTTP only: uvicorn runs with lifespan off)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.threads: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self) -> None:
        # In the process that serves: a thread pool does not survive os.fork().
        self.threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=REQUEST_THREADS, thread_name_prefix="request"
        )

    def stop(self) -> None:
        if self.threads is not None:
            self.threads.shutdown(wait=False)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        t0 = time.perf_counter()
        app = self.app
        method = scope["method"]
        raw = scope.get("raw_path")  # undecoded, as server.py's routes see the path
        path = raw.decode("latin-1") if raw else scope["path"]
        route = in_flight_route(method, path)
        if route is not None:
            app.metrics.started(route)
        answered = False  # True once metrics.finished counted the answer
        try:
            resp = await self._response(scope, receive, method, path)
            if resp is None:  # the client went away; nothing to answer
                return
            head = [
                _SERVER,
                (_CONTENT_TYPE, resp.content_type.encode("latin-1")),
                (_CONTENT_LENGTH, str(len(resp.body)).encode("latin-1")),
            ]
            head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
            if resp.close:
                head.append(_CLOSE)
            # Counted before the answer leaves, so a client that has it sees it in /metrics.
            elapsed = time.perf_counter() - t0
            app.metrics.finished(route or "other", resp.status, elapsed, route is not None)
            answered = True
            await send({"type": "http.response.start", "status": resp.status, "headers": head})
            await send({"type": "http.response.body", "body": resp.body})  # dropped for HEAD
        finally:
            if route is not None and not answered:  # the client left mid-body
                app.metrics.abandoned(route)
        if app.config.access_log:
            query = scope.get("query_string") or b""
            target = path + ("?" + query.decode("latin-1") if query else "")
            client = scope.get("client")
            log_access(
                client[0] if client else "-",
                f"{method} {target} HTTP/{scope.get('http_version', '1.1')}",
                resp.status,
                len(resp.body),
                elapsed,
            )

    async def _response(
        self, scope: Message, receive: Receive, method: str, path: str
    ) -> Response | None:
        """App's answer to the request; None if the client disconnected before its body."""
        app = self.app
        if method != "POST":
            return app.answer(method, path)
        headers = scope["headers"]
        body = await self._body(headers, receive)
        if body is None or isinstance(body, Response):
            return body
        return await asyncio.get_running_loop().run_in_executor(
            self.threads,
            app.answer,
            method,
            path,
            body,
            _header(headers, _CONTENT_TYPE),
            _header(headers, _V2_HEADER),
        )

    async def _body(self, headers: Headers, receive: Receive) -> bytes | Response | None:
        """The body; a 413 past ENVBUILD_MAX_BODY (unread: the connection then closes);
        None if the client disconnected."""
        limit = self.app.config.max_body
        length = _header(headers, _CONTENT_LENGTH)
        if length is not None and length.strip().isdigit() and int(length) > limit:
            return too_large(limit, int(length))
        parts = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # chunked: no length to refuse it by up front
                return too_large(limit)
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


class Uvicorn:
    """uvicorn serving an App: configured once (in the master, before the workers fork),
    then ``run`` in each process that serves."""

    def __init__(self, app: App) -> None:
        import uvicorn

        self.asgi = ASGIApp(app)
        config = app.config
        wanted: dict[str, Any] = {
            "lifespan": "off",
            "ws": "none",
            "interface": "asgi3",
            "log_config": None,  # keep the server's logging (stderr, its format)
            "log_level": config.log_level.lower(),
            "access_log": False,  # app.py's access log, as for the builtin layer
            "proxy_headers": False,  # the peer address, as the builtin layer logs it
            "server_header": False,  # the App's Server header instead
            "date_header": True,
            "timeout_keep_alive": config.keepalive,
            "timeout_graceful_shutdown": math.ceil(config.grace),
        }
        # Older uvicorn lacks some of these (timeout_graceful_shutdown: 0.24); it still runs.
        known = inspect.signature(uvicorn.Config).parameters
        self.config = uvicorn.Config(self.asgi, **{k: v for k, v in wanted.items() if k in known})
        self.config.load()  # imports the protocol classes once, in the master
        self.version = uvicorn.__version__
        self.server: Any = None  # the uvicorn.Server while run() serves

    def describe(self) -> str:
        """e.g. ``uvicorn 0.38.0 (h11, asyncio)``: what the benchmark ran."""
        protocol = getattr(self.config, "http_protocol_class", None)
        name = getattr(protocol, "__name__", "?")
        http = {"H11Protocol": "h11", "HttpToolsProtocol": "httptools"}.get(name, name)
        loop = self.config.loop
        if loop == "auto":
            loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
        return f"uvicorn {self.version} ({http}, {loop})"

    def run(self, server: Server) -> None:
        """Serve on the server's bound socket until SIGTERM/SIGINT (or the master is gone)."""
        import uvicorn

        parent: int | None = server.parent_pid if server.is_worker else None

        class Worker(uvicorn.Server):
            async def on_tick(self, counter: int) -> bool:
                # A worker whose master died (SIGKILL) stops instead of serving as an orphan.
                if parent is not None and not self.should_exit and os.getppid() != parent:
                    log.warning("master process gone; worker %d stopping", os.getpid())
                    self.should_exit = True
                return await super().on_tick(counter)

        app = self.asgi.app
        app.start_pool()
        self.asgi.start()
        worker = self.server = Worker(self.config)

        def stop(signum: int, frame: Any) -> None:
            # Until uvicorn installs its handlers (a stop then still stops it), and after:
            # uvicorn raises the signal again to the handler it found once it has stopped,
            # and the process goes on to exit 0, as with the builtin layer.
            worker.should_exit = True

        if threading.current_thread() is threading.main_thread():  # else: tests, in-process
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        # A copy whose proto is IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections of
        # such a socket, and http.server made this one with proto 0; without it uvicorn's two
        # writes (head, body) waited for the client's delayed ACK, ~40 ms per request at c=1.
        sock = socket.fromfd(
            server.socket.fileno(), server.socket.family, server.socket.type, socket.IPPROTO_TCP
        )
        try:
            worker.run(sockets=[sock])
        finally:
            server.server_close()  # the original too: uvicorn closed its copy
            self.asgi.stop()
            if app.pool is not None:
                app.pool.shutdown(wait=False)
