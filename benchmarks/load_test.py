#!/usr/bin/env python3
"""Bounded HTTP load generator for a model server on loopback (standard library only).

    python benchmarks/load_test.py http://127.0.0.1:8080/invocations \
        --payload examples/sklearn-credit/serving_input_example.json \
        --concurrency 200 --requests 3000 --max-seconds 60

Opens ``--concurrency`` connections at once (all of them are connected before the first
request is sent, so the server sees that many simultaneous clients), then sends
``--requests`` POSTs in all over those connections (HTTP/1.1 keep-alive; ``--no-keepalive``
opens a new connection per request instead, which exercises the accept queue). Everything is
bounded: the whole run stops after ``--max-seconds`` and each request after ``--timeout``.
A request counts as an error when it fails to connect, times out, the connection drops, the
status differs from ``--expect-status`` or, with ``--expect``, the JSON body differs from the
expected one. Prints p50/p90/p99/max latency, throughput and errors (``--json`` for one JSON
document); exits 1 when any request erred or was not sent.

Runs on asyncio streams with a minimal HTTP/1.1 client: a thread per connection would make the
generator, not the server, the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str = ""


class HttpError(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise HttpError("connection closed before the response")
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError(f"bad status line {status_line!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line:
            raise HttpError("connection closed in the headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return status, headers, body


@dataclass
class Plan:
    host: str
    port: int
    request: bytes
    total: int
    deadline: float
    timeout: float
    keepalive: bool
    expect_status: int
    expect: Any
    sent: int = 0
    connected: int = 0
    rate: float = 0.0  # requests per second offered (open loop); 0: closed loop
    started: float = 0.0


def _classify(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed mid-response"
    if isinstance(exc, HttpError):
        return "protocol error"
    return type(exc).__name__


async def _connect(plan: Plan) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(plan.host, plan.port, limit=2**24), plan.timeout
    )


async def _client(plan: Plan, stats: Stats, start: asyncio.Event) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        conn = await _connect(plan)
    except (OSError, asyncio.TimeoutError) as exc:
        stats.errors[_classify(exc)] += 1
        stats.first_error = stats.first_error or repr(exc)
    plan.connected += 1
    await start.wait()
    while plan.sent < plan.total and time.monotonic() < plan.deadline:
        index = plan.sent
        plan.sent += 1
        t0 = time.perf_counter()
        if plan.rate:
            # Open loop: request i is due at started + i/rate; its latency counts from then,
            # so a late start (every connection busy) is charged to the server.
            t0 = plan.started + index / plan.rate
            if t0 > time.perf_counter():
                await asyncio.sleep(t0 - time.perf_counter())
        try:
            if conn is None:
                conn = await _connect(plan)
            reader, writer = conn
            writer.write(plan.request)
            status, headers, body = await asyncio.wait_for(_read_response(reader), plan.timeout)
            elapsed = time.perf_counter() - t0
            stats.statuses[status] += 1
            if status != plan.expect_status:
                stats.errors[f"status {status}"] += 1
                stats.first_error = stats.first_error or f"status {status}: {body[:300]!r}"
            elif plan.expect is not None and json.loads(body) != plan.expect:
                stats.errors["unexpected body"] += 1
                stats.first_error = stats.first_error or f"unexpected body {body[:300]!r}"
            else:
                stats.latencies.append(elapsed)
            if not plan.keepalive or headers.get("connection", "").lower() == "close":
                writer.close()
                conn = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, HttpError) as exc:
            stats.errors[_classify(exc)] += 1
            stats.first_error = stats.first_error or repr(exc)
            if conn is not None:
                conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    concurrency: int = 200,
    requests: int = 3000,
    max_seconds: float = 60.0,
    timeout: float = 30.0,
    keepalive: bool = True,
    expect_status: int = 200,
    expect: Any = None,
    rate: float = 0.0,
) -> dict[str, Any]:
    """Run the load and return the report (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = parts.netloc
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keepalive else 'close'}\r\n\r\n"
    ).encode("latin-1") + body
    plan = Plan(
        host=parts.hostname,
        port=parts.port or 80,
        request=request,
        total=requests,
        deadline=time.monotonic() + max_seconds,
        timeout=timeout,
        keepalive=keepalive,
        expect_status=expect_status,
        expect=expect,
        rate=rate,
    )
    stats = Stats()
    start = asyncio.Event()
    tasks = [asyncio.create_task(_client(plan, stats, start)) for _ in range(concurrency)]
    # Every connection is open (or has failed) before the first request goes out.
    connect_wait = time.monotonic() + min(timeout, max_seconds)
    while plan.connected < concurrency and time.monotonic() < connect_wait:
        await asyncio.sleep(0.005)
    t0 = time.perf_counter()
    plan.started = t0
    start.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    lat = sorted(stats.latencies)
    latency_ms = {
        name: round(_percentile(lat, q) * 1000, 2)
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
    }
    latency_ms["mean"] = round(sum(lat) / len(lat) * 1000, 2) if lat else math.nan
    not_sent = max(0, requests - plan.sent)
    errors = sum(stats.errors.values())
    return {
        "url": url,
        "concurrency": concurrency,
        "offered_rps": rate or None,
        "keepalive": keepalive,
        "requests_planned": requests,
        "requests_sent": plan.sent,
        "not_sent": not_sent,
        "ok": len(lat),
        "errors": errors,
        "errors_by_kind": dict(stats.errors),
        "first_error": stats.first_error,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "seconds": round(wall, 3),
        "throughput_rps": round(len(lat) / wall, 1) if wall > 0 else None,
        "latency_ms": latency_ms,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="e.g. http://127.0.0.1:8080/invocations")
    ap.add_argument("--payload", required=True, help="file whose bytes are POSTed")
    ap.add_argument("--content-type", default="application/json")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--requests", type=int, default=3000, help="total requests")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="bound on the whole run")
    ap.add_argument("--timeout", type=float, default=30.0, help="bound on each request")
    ap.add_argument("--no-keepalive", action="store_true", help="one connection per request")
    ap.add_argument("--expect-status", type=int, default=200)
    ap.add_argument(
        "--expect",
        help="JSON file; each response body must equal it (or its 'predictions' "
        "wrapped as {'predictions': ...} when it is an expected_predictions.json)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: offer this many requests per second (latency from each request's "
        "scheduled time; --concurrency bounds the connections); default: closed loop",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1:
        ap.error("--concurrency and --requests must be at least 1")
    with open(args.payload, "rb") as f:
        body = f.read()
    expect = None
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            expect = json.load(f)
        if isinstance(expect, dict) and "input" in expect and "predictions" in expect:
            expect = {"predictions": expect["predictions"]}
    report = asyncio.run(
        run(
            args.url,
            body,
            content_type=args.content_type,
            concurrency=args.concurrency,
            requests=args.requests,
            max_seconds=args.max_seconds,
            timeout=args.timeout,
            keepalive=not args.no_keepalive,
            expect_status=args.expect_status,
            expect=expect,
            rate=args.rate,
        )
    )
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        lat = report["latency_ms"]
        print(
            f"{report['ok']}/{report['requests_planned']} ok, {report['errors']} errors, "
            f"{report['not_sent']} not sent in {report['seconds']} s "
            f"({report['concurrency']} connections, keep-alive {report['keepalive']})\n"
            f"throughput {report['throughput_rps']} req/s; latency ms p50 {lat['p50']} "
            f"p90 {lat['p90']} p99 {lat['p99']} max {lat['max']}"
        )
        if report["errors"]:
            print(f"errors: {report['errors_by_kind']}; first: {report['first_error']}")
    return 1 if report["errors"] or report["not_sent"] else 0


if __name__ == "__main__":
    sys.exit(main())
