"""``/metrics``: Prometheus text format (0.0.4), written by hand, shared by every worker.

The image carries no prometheus_client (mlflow-skinny does not bring it), and its
multiprocess mode needs a directory of files; here the counters live in one anonymous
shared mapping the master creates before it forks, one row (slot) per worker. A worker
writes only its own row, under its own lock; ``/metrics``, answered by any worker, sums
the rows, so the numbers are the server's, not one worker's. A restarted worker takes
over its predecessor's row: counters stay monotonic, its in-flight gauges are reset.

Series: requests by route and status, a latency histogram by route, requests in flight
by route, the requests and rows merged into each model call (adaptive batching), and the
model's load time.
"""

from __future__ import annotations

import mmap
import threading
from typing import Iterable

ROUTES = (
    "/invocations",
    "/ping",
    "/health",
    "/version",
    "/openapi.json",
    "/metrics",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/infer",
    "other",
)
STATUSES = (200, 400, 404, 405, 408, 411, 413, 415, 422, 429, 500, 503, 504)
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ROWS_BUCKETS = (1, 10, 100, 1000, 10000, 100000, 1000000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NR, _NS = len(ROUTES), len(STATUSES) + 1  # the last status column counts any other status
_ROUTE = {r: i for i, r in enumerate(ROUTES)}
_STATUS = {s: i for i, s in enumerate(STATUSES)}


def _histogram_size(buckets: tuple[float, ...]) -> int:
    return len(buckets) + 2  # one count per bucket and +Inf (not cumulative), then the sum


# Offsets (in doubles) inside one slot.
_REQ = 0
_LAT = _REQ + _NR * _NS
_LAT_SIZE = _histogram_size(LATENCY_BUCKETS)
_INFLIGHT = _LAT + _NR * _LAT_SIZE
_BATCH = _INFLIGHT + _NR
_ROWS = _BATCH + _histogram_size(BATCH_BUCKETS)
SLOT_SIZE = _ROWS + _histogram_size(ROWS_BUCKETS)


def _bucket(buckets: tuple[float, ...], value: float) -> int:
    for i, bound in enumerate(buckets):
        if value <= bound:
            return i
    return len(buckets)


class Metrics:
    """The counters of ``slots`` processes in one shared mapping (create before forking)."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self._map = mmap.mmap(-1, self.slots * SLOT_SIZE * 8)  # MAP_SHARED|MAP_ANONYMOUS
        self._all = memoryview(self._map).cast("d")
        self.slot = 0
        self._row = self._all[0:SLOT_SIZE]
        self._lock = threading.Lock()
        self.load_seconds = 0.0
        self.workers = 1

    def use_slot(self, slot: int) -> None:
        """Called in a new worker: write to row ``slot``, its in-flight gauges reset."""
        self.slot = slot
        self._row = self._all[slot * SLOT_SIZE : (slot + 1) * SLOT_SIZE]
        self._lock = threading.Lock()  # a lock held by another thread at fork stays held
        for i in range(_NR):
            self._row[_INFLIGHT + i] = 0.0

    # -- recording (a few float additions under this process's lock) ---------------------

    def started(self, route: str) -> None:
        with self._lock:
            self._row[_INFLIGHT + _ROUTE.get(route, _NR - 1)] += 1

    def finished(self, route: str, status: int, seconds: float, in_flight: bool) -> None:
        r = _ROUTE.get(route, _NR - 1)
        row = self._row
        with self._lock:
            if in_flight:
                row[_INFLIGHT + r] -= 1
            row[_REQ + r * _NS + _STATUS.get(status, _NS - 1)] += 1
            base = _LAT + r * _LAT_SIZE
            row[base + _bucket(LATENCY_BUCKETS, seconds)] += 1
            row[base + _LAT_SIZE - 1] += seconds

    def abandoned(self, route: str) -> None:
        """A request ``started`` that gets no answer (its client went away mid-body, or the
        connection broke): out of the in-flight gauge, and in no count."""
        with self._lock:
            self._row[_INFLIGHT + _ROUTE.get(route, _NR - 1)] -= 1

    def batch(self, requests: int, rows: int) -> None:
        row = self._row
        with self._lock:
            row[_BATCH + _bucket(BATCH_BUCKETS, requests)] += 1
            row[_BATCH + len(BATCH_BUCKETS) + 1] += requests
            row[_ROWS + _bucket(ROWS_BUCKETS, rows)] += 1
            row[_ROWS + len(ROWS_BUCKETS) + 1] += rows

    # -- the text format -----------------------------------------------------------------

    def _sums(self) -> list[float]:
        total = [0.0] * SLOT_SIZE
        for s in range(self.slots):
            row = self._all[s * SLOT_SIZE : (s + 1) * SLOT_SIZE]
            total = [a + b for a, b in zip(total, row)]
        return total

    def render(self) -> bytes:
        v = self._sums()
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        head("envbuild_requests_total", "counter", "HTTP requests answered, by route and status.")
        for r, route in enumerate(ROUTES):
            for s in range(_NS):
                n = v[_REQ + r * _NS + s]
                if n:
                    status = str(STATUSES[s]) if s < len(STATUSES) else "other"
                    out.append(
                        f'envbuild_requests_total{{route="{route}",status="{status}"}} {_num(n)}'
                    )
        head(
            "envbuild_request_duration_seconds",
            "histogram",
            "Time from the request line read to the response written, by route.",
        )
        for r, route in enumerate(ROUTES):
            base = _LAT + r * _LAT_SIZE
            counts = v[base : base + len(LATENCY_BUCKETS) + 1]
            if any(counts):
                out.extend(
                    _histogram(
                        "envbuild_request_duration_seconds",
                        f'route="{route}",',
                        LATENCY_BUCKETS,
                        counts,
                        v[base + _LAT_SIZE - 1],
                    )
                )
        head("envbuild_requests_in_flight", "gauge", "Requests being answered now, by route.")
        for r, route in enumerate(ROUTES):
            if r < _NR - 1 or v[_INFLIGHT + r]:
                out.append(
                    f'envbuild_requests_in_flight{{route="{route}"}} {_num(v[_INFLIGHT + r])}'
                )
        for name, buckets, base, text in (
            ("envbuild_batch_requests", BATCH_BUCKETS, _BATCH, "Requests merged into one model call."),
            ("envbuild_batch_rows", ROWS_BUCKETS, _ROWS, "Rows (first dimension) of one model call."),
        ):  # fmt: skip
            head(name, "histogram", text)
            counts = v[base : base + len(buckets) + 1]
            out.extend(_histogram(name, "", buckets, counts, v[base + len(buckets) + 1]))
        head("envbuild_model_load_seconds", "gauge", "Seconds the model took to load.")
        out.append(f"envbuild_model_load_seconds {self.load_seconds!r}")
        head("envbuild_workers", "gauge", "Worker processes configured.")
        out.append(f"envbuild_workers {self.workers}")
        return ("\n".join(out) + "\n").encode("utf-8")


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _histogram(
    name: str, labels: str, buckets: Iterable[float], counts: list[float], total: float
) -> list[str]:
    lines = []
    running = 0.0
    bounds = [*(repr(float(b)) for b in buckets), "+Inf"]
    for bound, n in zip(bounds, counts):
        running += n
        lines.append(f'{name}_bucket{{{labels}le="{bound}"}} {_num(running)}')
    label_set = f"{{{labels.rstrip(',')}}}" if labels else ""
    lines.append(f"{name}_sum{label_set} {total!r}")
    lines.append(f"{name}_count{label_set} {_num(running)}")
    return lines
