"""The builtin HTTP layer: standard library only, threads per connection, optional pre-forked
workers; and the process model both layers use (asgi.py's uvicorn layer, ENVBUILD_HTTP).

Process model: the master binds the socket (a large listen backlog so bursts of
connections queue instead of being refused) before it loads the model, as gunicorn and
uvicorn do: a port in use fails at once, not after the load, and a client that connects
during the load waits in the backlog instead of being refused. Then, with ENVBUILD_WORKERS
> 1, it forks that many workers that share the socket and the loaded model (copy-on-write)
and restarts any that die. Each worker serves one thread per connection (HTTP/1.1 keep-alive)
and runs predictions on a bounded pool (ENVBUILD_THREADS) so a slow model times out with
504 instead of piling up. SIGTERM/SIGINT: stop accepting, close idle keep-alive
connections, let in-flight requests finish (up to ENVBUILD_GRACE seconds), exit 0. A
connection accepted but not yet read from is not idle: its first request is answered.

Routes: MLflow's (/invocations, /ping, /health, /version), /openapi.json, /metrics
(metrics.py, counters shared by the workers) and the Open Inference Protocol V2 (v2.py);
what they answer is app.py, the batching of concurrent predictions batching.py.

Which layer is the default (issue #16): benchmarks/bench_serve.py runs both layers,
``mlflow models serve`` and MLServer side by side on one model. The issue asks for uvicorn
unless builtin wins on throughput, tail latency and cold start together. Against the
uvicorn an image carries (mlflow-skinny 3.x's: h11 on asyncio) builtin did: up to 1.67x the
throughput (V2, 64 connections), the lower p99 in 5 of 6 rows, and the faster cold start.
Against uvicorn with httptools and uvloop, which images do not carry, builtin still had
the higher throughput in 5 of 6 rows and the faster cold start; uvicorn had 2 lower p99s.
So builtin stays the default (README, "The server inside the image", has the figures).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from . import __version__
from .app import App, in_flight_route, log_access, openapi_for, too_large
from .config import Config
from .protocol import Response, Scorer, error_body
from .v2 import HEADER as V2_HEADER

log = logging.getLogger("envbuild.serve")
__all__ = ["App", "Server", "listen", "openapi_for", "serve"]


ACCEPT_TIMEOUT = 1  # seconds a blocking accept() may wait (see Server.server_bind)


class Server(HTTPServer):
    """One thread per connection (tracked, so a stop can wait for in-flight requests)."""

    allow_reuse_address = True
    app: App  # set once the model is loaded (see listen); no request is read before

    def __init__(self, address: tuple[str, int], app: App | None, backlog: int) -> None:
        self.request_queue_size = backlog
        if app is not None:
            self.app = app
        self.stopping = False
        self.parent_pid = os.getppid()
        self.is_worker = False
        self._lock = threading.Lock()
        self._idle: dict[socket.socket, bool] = {}
        self._threads: set[threading.Thread] = set()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
        # Non-blocking accept: the workers share this socket, so select() wakes them all and
        # only one gets the connection (a client may also reset it in between). A blocking
        # accept() would then hang the others until the next connection, deaf to the stop
        # flag; non-blocking, accept() raises BlockingIOError, which serve_forever ignores.
        self.socket.setblocking(False)
        # O_NONBLOCK lives on the open file description the workers share, so any process
        # holding it can clear it for all (a worker was once found blocked in accept() with
        # the flag gone, culprit unknown). A receive timeout on the socket itself bounds a
        # blocking accept() too (Linux applies SO_RCVTIMEO to accept): it returns EAGAIN
        # within a second; service_actions() then puts the flag back and says so.
        with contextlib.suppress(OSError):
            self.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", ACCEPT_TIMEOUT, 0)
            )
        self._nonblock_warned = False

    def _keep_nonblocking(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            flags = fcntl.fcntl(self.socket.fileno(), fcntl.F_GETFL)
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(self.socket.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
                if not self._nonblock_warned:
                    self._nonblock_warned = True
                    log.warning(
                        "the listening socket had been made blocking by another holder; "
                        "made non-blocking again"
                    )

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away; nothing to answer
            log.debug("connection from %s: %s", client_address, exc)
        else:
            log.exception("error on the connection from %s", client_address)

    def close(self, grace: float) -> bool:
        """Close the listening socket, wait up to ``grace`` s for requests; True if all done."""
        self.server_close()
        deadline = time.monotonic() + grace
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            threads[0].join(min(remaining, 0.5))

    # connection bookkeeping, so a graceful stop can close idle keep-alive connections
    def mark(self, sock: socket.socket, idle: bool | None) -> None:
        with self._lock:
            if idle is None:
                self._idle.pop(sock, None)
            else:
                self._idle[sock] = idle
                if idle and self.stopping:
                    _shutdown(sock)

    def begin_stop(self) -> None:
        with self._lock:
            self.stopping = True
            for sock, idle in self._idle.items():
                if idle:
                    _shutdown(sock)
        threading.Thread(target=self.shutdown, name="shutdown", daemon=True).start()

    def service_actions(self) -> None:
        self._keep_nonblocking()
        # A worker whose master died (SIGKILL) stops instead of serving as an orphan.
        if self.is_worker and not self.stopping and os.getppid() != self.parent_pid:
            log.warning("master process gone; worker %d stopping", os.getpid())
            self.begin_stop()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"envbuild-serve/{__version__}"
    sys_version = ""
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        # StreamRequestHandler applies self.timeout to the socket: idle keep-alive limit.
        self.timeout = self.server.app.config.keepalive  # type: ignore[misc]
        super().setup()
        # Not idle: a connection is accepted because a client made it, and its first request
        # is read even if a stop begins now (marked idle here, a connection accepted just
        # before begin_stop was shut down with its request unread). The read is bounded by
        # the keep-alive timeout; after the answer, _send marks it idle.
        self.server.mark(self.connection, idle=False)

    def finish(self) -> None:
        self.server.mark(self.connection, idle=None)
        with contextlib.suppress(OSError):
            super().finish()

    def parse_request(self) -> bool:
        self.server.mark(self.connection, idle=False)
        self._t0 = time.perf_counter()
        self._route = "other"
        self._in_flight = False
        return super().parse_request()

    def _begin(self, route: str) -> None:
        """The request is for ``route`` (its metrics label); counted in flight until sent."""
        self._route = route
        self._in_flight = True
        self.server.app.metrics.started(route)

    # -- responses -----------------------------------------------------------------------

    def _send(self, resp: Response) -> None:
        if self.server.stopping or resp.close:
            self.close_connection = True
        head = [
            f"{self.protocol_version} {resp.status} {self.responses.get(resp.status, ('',))[0]}"
        ]
        head.append(f"Server: {self.server_version}")
        head.append(f"Date: {self.date_time_string()}")
        head.append(f"Content-Type: {resp.content_type}")
        head.append(f"Content-Length: {len(resp.body)}")
        for name, value in resp.headers:
            head.append(f"{name}: {value}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += resp.body
        # Counted before the answer leaves, so a client that has it sees it in /metrics.
        elapsed = time.perf_counter() - self._t0
        app = self.server.app
        app.metrics.finished(
            getattr(self, "_route", "other"),
            resp.status,
            elapsed,
            getattr(self, "_in_flight", False),
        )
        self._in_flight = False
        self.wfile.write(data)
        if app.config.access_log:
            log_access(
                self.client_address[0], self.requestline, resp.status, len(resp.body), elapsed
            )
        self.server.mark(self.connection, idle=True)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(Response(status, error_body(code, message)))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, headers too long): JSON like the rest.
        self.close_connection = True
        if not hasattr(self, "_t0"):
            self._t0 = time.perf_counter()
        if not hasattr(self, "requestline"):
            self.requestline = ""
        self._error(code, "BAD_REQUEST", message or self.responses.get(code, ("error",))[0])

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    # -- body ----------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/413 (connection then closed)."""
        limit = self.server.app.config.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            size = 0
            while True:
                line = self.rfile.readline(1026)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    self._error(400, "BAD_REQUEST", "malformed chunked body")
                    return None
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                size += n
                if size > limit:
                    self._send(too_large(limit))
                    return None
                parts.append(self.rfile.read(n))
                self.rfile.readline(3)
            return b"".join(parts)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(400, "BAD_REQUEST", f"bad Content-Length {raw!r}")
            return None
        if length > limit:
            self._send(too_large(limit, length))
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    # -- routes (app.py decides what each answers) ---------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        route = in_flight_route(self.command, path)
        if route is not None:
            self._begin(route)
        try:
            if self.command == "POST":
                body = self._read_body()
                if body is None:
                    return
                resp = self.server.app.answer(
                    "POST",
                    path,
                    body,
                    self.headers.get("Content-Type"),
                    self.headers.get(V2_HEADER),
                )
            else:
                resp = self.server.app.answer(self.command, path)
            self._send(resp)
        finally:
            if self._in_flight:  # no answer was sent: the client left, or the socket broke
                self._in_flight = False
                self.server.app.metrics.abandoned(self._route)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET


# -- processes ---------------------------------------------------------------------------


def _install_stop_handlers(server: Server) -> None:
    def stop(signum: int) -> None:
        log.info("%s: finishing in-flight requests", signal.Signals(signum).name)
        server.begin_stop()

    def on_signal(signum: int, frame: Any) -> None:
        # The handler runs in the main thread between two bytecodes, possibly while that
        # thread holds the server's lock (process_request): taking the lock here would
        # deadlock the worker, so the stop happens on a thread of its own.
        if server.stopping:
            return
        threading.Thread(target=stop, args=(signum,), name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _serve_in_this_process(server: Server) -> None:
    server.app.start_pool()
    _install_stop_handlers(server)
    server.serve_forever(poll_interval=0.5)
    grace = server.app.config.grace
    if not server.close(grace):
        log.warning("requests still running after %gs (ENVBUILD_GRACE); exiting", grace)
    if server.app.pool is not None:
        server.app.pool.shutdown(wait=False)


def _worker(server: Server, run: Callable[[Server], None]) -> None:
    """The body of a forked worker, serving with the HTTP layer ``run``; never returns."""
    code = 0
    try:
        server.is_worker = True
        server.parent_pid = os.getppid()
        log.info("worker %d serving", os.getpid())
        run(server)
    except BaseException:
        log.exception("worker %d crashed", os.getpid())
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


# Libraries whose native thread pools, started by loading the model, are gone in a forked
# child while their state says they run: measured with TensorFlow 2 (Keras 3), where a
# worker forked after the load hangs in its first predict (the corpus tensorflow-keras
# model's image smoke test answered 504 after ENVBUILD_TIMEOUT; its venv, unforked, passed).
FORK_UNSAFE = ("tensorflow",)


def fork_unsafe(modules: Mapping[str, object]) -> str | None:
    """The first loaded library of FORK_UNSAFE (None: forking workers is safe)."""
    return next((name for name in FORK_UNSAFE if name in modules), None)


def _supervise(server: Server, workers: int, run: Callable[[Server], None]) -> int:
    """Fork and watch the workers, each serving with ``run``; returns the exit code."""
    children: dict[int, int] = {}  # pid -> its metrics slot (a restart takes it over)
    stopping = False
    recent_crashes: list[float] = []

    def spawn(slot: int) -> None:
        # The stop signals are blocked across the fork: a SIGTERM sent to a new worker
        # before it reset its handlers ran the master's handler in the worker, which then
        # served on with its stop signal spent (seen: `docker stop` right after the first
        # /ping left a worker running until the master's SIGKILL). A blocked signal waits
        # in the master until the unblock; the child starts with none pending (POSIX).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            for signum in (*_STOP_SIGNALS, signal.SIGALRM):
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            server.app.metrics.use_slot(slot)
            _worker(server, run)
        children[pid] = slot
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        if stopping:  # a signal arrived while forking
            _kill(pid, signal.SIGTERM)

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:  # second signal: do not wait any longer
            for pid in list(children):
                _kill(pid, signal.SIGKILL)
            return
        stopping = True
        log.info("%s: stopping %d worker(s)", signal.Signals(signum).name, len(children))
        for pid in list(children):
            _kill(pid, signal.SIGTERM)
        signal.alarm(max(1, int(server.app.config.grace + 0.999)))

    def on_alarm(signum: int, frame: Any) -> None:
        for pid in list(children):
            log.warning("worker %d still running after ENVBUILD_GRACE; killing it", pid)
            _kill(pid, signal.SIGKILL)

    if threading.active_count() > 1:
        log.warning("forking with %d threads started by the model's code", threading.active_count())
    # Handlers are installed before forking, so a signal cannot be lost in between; the
    # children reset them.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    for slot in range(workers):
        spawn(slot)
    log.info("%d workers started", workers)
    # The workers answer; the master has nothing else to do until one exits.
    _environment_warnings(server.app.scorer)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        slot = children.pop(pid)
        exit_code = (
            os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
        )
        if stopping:
            continue
        log.error("worker %d exited (%s); starting another", pid, exit_code)
        now = time.monotonic()
        recent_crashes = [t for t in recent_crashes if now - t < 10] + [now]
        if len(recent_crashes) > 2 * workers + 3:
            log.error("workers keep dying; giving up")
            stopping = True
            code = 1
            for other in list(children):
                _kill(other, signal.SIGTERM)
            signal.alarm(max(1, int(server.app.config.grace + 0.999)))
            continue
        spawn(slot)
    signal.alarm(0)
    server.socket.close()
    return code


def _environment_warnings(scorer: Scorer) -> None:
    """MLflow's warnings about the environment (see Scorer.environment_warnings), run after
    the server answers so they do not delay the first /ping."""
    check = getattr(scorer, "environment_warnings", None)  # a stand-in scorer may lack it
    if check is not None:
        check()


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def listen(config: Config) -> Server | None:
    """The listening socket, bound before the model loads; None (logged) if it cannot be."""
    try:
        return Server((config.host, config.port), None, config.backlog)
    except OSError as exc:
        log.error(
            "cannot listen on %s:%d: %s (set ENVBUILD_HOST/ENVBUILD_PORT)",
            config.host,
            config.port,
            exc.strerror or exc,
        )
        return None


def serve(
    config: Config,
    scorer: Scorer | None = None,
    started: float | None = None,
    server: Server | None = None,
) -> int:
    """Listen, load the model, serve until SIGTERM; returns the process exit code.

    ``scorer`` and ``server``: the model and the socket (see listen) when the caller made
    them; ``started``: the ``time.perf_counter()`` at which the caller began loading
    ``scorer``, so the log reports the real load time."""
    t0 = time.perf_counter() if started is None else started
    if server is None:
        server = listen(config)
        if server is None:
            return 3
    if scorer is None:
        scorer = Scorer(config.model_dir)
    server.app = App(scorer, config)
    server.app.metrics.load_seconds = time.perf_counter() - t0
    log.info(
        "model %s loaded with MLflow %s in %.2fs",
        config.model_dir,
        scorer.mlflow_version,
        server.app.metrics.load_seconds,
    )
    workers = config.workers
    unsafe = fork_unsafe(sys.modules)
    if workers > 1 and unsafe:
        log.warning(
            "%s is loaded: its thread pools do not survive fork (a forked worker's first "
            "prediction never returns), so one process serves (ENVBUILD_WORKERS=%d ignored)",
            unsafe,
            workers,
        )
        workers = 1
    run: Callable[[Server], None] = _serve_in_this_process
    layer = "builtin"
    if config.http == "uvicorn":
        from .asgi import Uvicorn

        uvicorn = Uvicorn(server.app)  # configured here, before the workers fork
        run, layer = uvicorn.run, uvicorn.describe()
    host, port = server.server_address[:2]
    log.info(
        "listening on http://%s:%d (http %s, workers %d, threads %d, backlog %d, batching %s)",
        host,
        port,
        layer,
        workers,
        config.threads,
        config.backlog,
        "on" if server.app.batching else "off",
    )
    sys.stderr.flush()
    if workers == 1:
        # No fork follows in this mode, so a thread is safe here: it shares the GIL with
        # the first requests for the ~0.1 s the check takes.
        threading.Thread(
            target=_environment_warnings, args=(scorer,), name="environment-check", daemon=True
        ).start()
        run(server)
        log.info("stopped")
        return 0
    code = _supervise(server, workers, run)
    log.info("stopped")
    return code
