#!/usr/bin/env python3
"""envbuild's server (both HTTP layers) vs MLflow's scoring server vs MLServer, in one run.

    python benchmarks/bench_serve.py [--model examples/sklearn-credit] [--workers 2]
        [--connections 1 64 200] [--requests 2000] [--rounds 2] [--cold-rounds 3]
        [--mlserver-venv /tmp/mlserver] [--skip-mlflow] [--skip-mlserver] [--skip-uvicorn]
        [--pin-server 1] [--pin-load 0] [--open-rate 250] [--json]

All serve the same model folder on loopback from local processes (no Docker), each
with --workers worker processes:
  envbuild   ``python -m envbuild.serve`` (the server the images run; batching per its
             default, ``auto``), on /invocations and on V2 /v2/models/model/infer
  envbuild-uvicorn  the same with ENVBUILD_HTTP=uvicorn: the same App and workers, the HTTP
             layer uvicorn's (asgi.py; h11 or httptools, asyncio or uvloop, as installed: its
             log's "listening on" line says which); issue #16 asks this one to be the
             default unless envbuild beats it on throughput, p99 and cold start together
  mlflow     ``mlflow models serve --env-manager local -w N`` (uvicorn in MLflow 3.x)
  mlserver   MLServer 1.7 with mlserver-mlflow, adaptive batching on (max_batch_size 64,
             max_batch_time 2 ms), on its /invocations and its V2 infer route. Its venv
             (--mlserver-venv) is made when missing: ``pip install mlserver==1.7.1
             mlserver-mlflow uvloop==0.21.0`` (uvloop 0.23 crashes MLServer 1.7's workers)
             plus the model's requirements; --skip-mlserver if that cannot be installed.
The servers run one after another, the rounds alternating (envbuild, envbuild-uvicorn,
mlflow, mlserver, envbuild, ...), so a change in the machine's load hits each; the load average is printed
before and after. Cold start first, in a phase of its own: each server started and stopped
in turn, --cold-rounds times after one untimed start of each (so every server finds the
files they share, Python's, pandas', scikit-learn's, MLflow's, in the page cache, and none
is timed against a cold disk because it happened to start first); the median is process
start to the first 200 on its health route. Then, per server and endpoint,
benchmarks/load_test.py's closed loop at each --connections
(every connection sends its next request when the answer came; every /invocations answer is
compared with expected_predictions.json, every V2 answer's first output with its
predictions): req/s, p50, p99, errors; with --open-rate also an open loop at that offered
rate over up to 200 connections (latency from each request's scheduled time, so queueing
counts; the row's conn column reads @RATE/s). --pin-server / --pin-load put the servers and the
load generator on separate CPUs (taskset lists) where the machine has the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def v2_body(payload: dict[str, Any], signature: list[dict[str, Any]]) -> bytes:
    """The stored example as a V2 JSON request, one input per column (or the tensor)."""
    types = {"long": "INT64", "integer": "INT32", "double": "FP64", "float": "FP32",
             "boolean": "BOOL", "string": "BYTES"}  # fmt: skip
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        kinds = {str(s.get("name")): str(s.get("type")) for s in signature}
        inputs = [
            {"name": c, "shape": [len(split["data"])], "datatype": types.get(kinds.get(c, ""), "BYTES"),
             "data": [row[i] for row in split["data"]]}
            for i, c in enumerate(split["columns"])
        ]  # fmt: skip
        # MLServer decodes a column request into a DataFrame only when told to
        return json.dumps({"inputs": inputs, "parameters": {"content_type": "pd"}}).encode()
    data = payload["inputs"]
    shape = [len(data), len(data[0])] if data and isinstance(data[0], list) else [len(data)]
    flat = [x for row in data for x in row] if len(shape) == 2 else data
    return json.dumps({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": flat}]}).encode()  # fmt: skip


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], health: str, port: int,
                 cwd: Path, pin: str | None) -> None:  # fmt: skip
        self.name, self.health, self.port = name, health, port
        if pin:
            argv = ["taskset", "-c", pin, *argv]
        self.log = open(cwd / f"{name}-{port}.log", "wb")  # noqa: SIM115  (closed in stop)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        self.cold = self._wait_ready()

    def _wait_ready(self, limit: float = 180) -> float:
        url = f"http://127.0.0.1:{self.port}{self.health}"
        while time.perf_counter() - self.t0 < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.t0
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready in {limit}s: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        # the whole process group this script started (start_new_session): master and workers
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.log.close()


def start(kind: str, args: argparse.Namespace, model: Path, work: Path) -> Proc:
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    if kind in ("envbuild", "envbuild-uvicorn"):
        env.update(ENVBUILD_MODEL_DIR=str(model), ENVBUILD_PORT=str(port), ENVBUILD_HOST="127.0.0.1",
                   ENVBUILD_WORKERS=str(args.workers), ENVBUILD_ACCESS_LOG="0",
                   ENVBUILD_HTTP="uvicorn" if kind == "envbuild-uvicorn" else "builtin",
                   PYTHONPATH=str(ROOT))  # fmt: skip
        return Proc(
            kind, [args.python, "-m", "envbuild.serve"], env, "/ping", port, work, args.pin_server
        )
    if kind == "mlflow":
        mlflow = str(Path(args.python).with_name("mlflow"))
        argv = [mlflow, "models", "serve", "-m", str(model), "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), "-w", str(args.workers)]  # fmt: skip
        # MLflow runs `uvicorn` (or gunicorn) by name: the one of --python's venv, not
        # whichever PATH finds first
        env["PATH"] = f"{Path(args.python).parent}{os.pathsep}{env.get('PATH', '')}"
        return Proc(kind, argv, env, "/ping", port, work, args.pin_server)
    folder = work / "mlserver-model"
    folder.mkdir(exist_ok=True)
    (folder / "model-settings.json").write_text(json.dumps({
        "name": "model", "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model)}, "max_batch_size": 64, "max_batch_time": 0.002,
    }))  # fmt: skip
    (folder / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
        "parallel_workers": args.workers, "host": "127.0.0.1",
    }))  # fmt: skip
    argv = [str(Path(args.mlserver_venv) / "bin" / "mlserver"), "start", str(folder)]
    return Proc(kind, argv, env, "/v2/models/model/ready", port, work, args.pin_server)


def ensure_mlserver(venv: Path, model: Path) -> str | None:
    """The MLServer venv, made when missing; the reason when it cannot be."""
    if (venv / "bin" / "mlserver").exists():
        return None
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    reqs = [
        r for r in (model / "requirements.txt").read_text().split() if not r.startswith("torch")
    ]
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "mlserver==1.7.1", "mlserver-mlflow",
         "uvloop==0.21.0", *reqs], capture_output=True, text=True, check=False,
    )  # fmt: skip
    return None if done.returncode == 0 else done.stderr[-1000:]


def loop(
    url: str,
    body: Path,
    expect: Path | None,
    connections: int,
    requests: int,
    pin: str | None,
    rate: float = 0.0,
) -> dict[str, Any]:
    """load_test.py's closed loop, or with ``rate`` its open loop at that offered rate."""
    argv = [sys.executable, str(HERE / "load_test.py"), url, "--payload", str(body),
            "--concurrency", str(connections), "--requests", str(requests),
            "--max-seconds", "120", "--json", "--rate", str(rate)]  # fmt: skip
    if expect is not None:
        argv += ["--expect", str(expect)]
    if pin:
        argv = ["taskset", "-c", pin, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def check_v2(url: str, body: bytes, expected: Any) -> None:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        doc = json.loads(r.read())
    first = doc["outputs"][0]
    want = expected if isinstance(expected, list) else next(iter(expected.values()))
    flat = [x for row in want for x in row] if want and isinstance(want[0], list) else want
    if [round(float(x), 6) for x in first["data"]] != [round(float(x), 6) for x in flat]:
        raise AssertionError(f"{url}: V2 answer {first['data']} is not {flat}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=str(ROOT / "examples" / "sklearn-credit"))
    ap.add_argument(
        "--python", default=sys.executable, help="the env with MLflow and the model's libraries"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, nargs="+", default=[1, 64, 200])
    ap.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="per closed-loop run; above ~1,000 req/s 2,000 requests last about a second, "
        "so connection set-up weighs on them: --connections 64 200 --requests 8000",
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cold-rounds", type=int, default=3, help="timed starts of each server")
    ap.add_argument("--mlserver-venv", default="/tmp/bench-mlserver")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-mlserver", action="store_true")
    ap.add_argument("--skip-uvicorn", action="store_true", help="no envbuild-uvicorn")
    ap.add_argument("--pin-server", help="CPUs for the servers, e.g. 1")
    ap.add_argument("--pin-load", help="CPUs for the load generator, e.g. 0")
    ap.add_argument(
        "--open-rate",
        type=float,
        default=0.0,
        help="also an open loop at this many req/s (e.g. half MLflow's peak)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()  # fmt: skip

    model = Path(args.model).resolve()
    payload = json.loads((model / "serving_input_example.json").read_text())
    expected = json.loads((model / "expected_predictions.json").read_text())["predictions"]
    mlmodel = (model / "MLmodel").read_text()
    import yaml

    signature = json.loads((yaml.safe_load(mlmodel).get("signature") or {}).get("inputs") or "[]")
    v2 = v2_body(payload, signature)
    kinds = ["envbuild"] + ([] if args.skip_uvicorn else ["envbuild-uvicorn"])
    kinds += [] if args.skip_mlflow else ["mlflow"]
    if not args.skip_mlserver:
        problem = ensure_mlserver(Path(args.mlserver_venv), model)
        if problem:
            print(f"MLServer skipped: it did not install: {problem}", file=sys.stderr)
        else:
            kinds.append("mlserver")
    both = ["/invocations", "/v2/models/model/infer"]
    routes = {"envbuild": both, "envbuild-uvicorn": both, "mlflow": ["/invocations"],
              "mlserver": both}  # fmt: skip
    print(f"load average before: {loadavg()}", file=sys.stderr)
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    colds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        v2_file = Path(tmp) / "v2.json"
        v2_file.write_bytes(v2)
        body_file = model / "serving_input_example.json"
        expect_file = model / "expected_predictions.json"
        for round_ in range(args.cold_rounds + 1):  # round 0: the untimed warm-up start
            for kind in kinds:
                proc = start(kind, args, model, Path(tmp))
                proc.stop()
                if round_:
                    colds.setdefault(kind, []).append(proc.cold)
                print(f"cold start {'(warm-up) ' if not round_ else ''}{kind}: "
                      f"{proc.cold:.2f} s", file=sys.stderr)  # fmt: skip
        for round_ in range(args.rounds):
            for kind in kinds:
                proc = start(kind, args, model, Path(tmp))
                layer = re.search(r"\(http (.+?), workers", Path(proc.log.name).read_text())
                if layer:  # which HTTP implementation and event loop ran
                    print(f"round {round_ + 1} {kind}: http {layer[1]}", file=sys.stderr)
                try:
                    for route in routes[kind]:
                        url = f"http://127.0.0.1:{proc.port}{route}"
                        is_v2 = route.startswith("/v2")
                        if is_v2:
                            check_v2(url, v2, expected)
                        for n in args.connections:
                            report = loop(url, v2_file if is_v2 else body_file,
                                          None if is_v2 else expect_file,
                                          n, args.requests, args.pin_load)  # fmt: skip
                            rows.setdefault((kind, route, str(n)), []).append(report)
                            print(f"round {round_ + 1} {kind} {route} c={n}: "
                                  f"{report['throughput_rps']} req/s, p50 {report['latency_ms']['p50']} ms, "
                                  f"p99 {report['latency_ms']['p99']} ms, errors {report['errors']}",
                                  file=sys.stderr)  # fmt: skip
                        if args.open_rate:
                            report = loop(url, v2_file if is_v2 else body_file,
                                          None if is_v2 else expect_file, 200,
                                          args.requests, args.pin_load, args.open_rate)  # fmt: skip
                            rows.setdefault((kind, route, f"@{args.open_rate:g}/s"), []).append(
                                report
                            )
                            print(f"round {round_ + 1} {kind} {route} open loop {args.open_rate:g}/s: "
                                  f"p50 {report['latency_ms']['p50']} ms, p99 {report['latency_ms']['p99']} ms, "
                                  f"errors {report['errors']}", file=sys.stderr)  # fmt: skip
                finally:
                    proc.stop()
    print(f"load average after: {loadavg()}", file=sys.stderr)
    table = []
    for (kind, route, n), reports in rows.items():
        table.append({
            "server": kind, "route": route, "connections": n,
            "rps": round(statistics.median(r["throughput_rps"] or 0 for r in reports), 1),
            "p50_ms": round(statistics.median(r["latency_ms"]["p50"] for r in reports), 2),
            "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in reports), 2),
            "errors": sum(r["errors"] + r["not_sent"] for r in reports),
            "cold_start_s": round(statistics.median(colds[kind]), 2),
        })  # fmt: skip
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        print(
            f"{'server':<16} {'route':<24} {'conn':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'cold s':>6}"
        )
        for r in table:
            print(f"{r['server']:<16} {r['route']:<24} {r['connections']:>7} {r['rps']:>8} "
                  f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['errors']:>6} {r['cold_start_s']:>6}")  # fmt: skip
    return 1 if any(r["errors"] for r in table) else 0


if __name__ == "__main__":
    if shutil.which("taskset") is None and ("--pin-server" in sys.argv or "--pin-load" in sys.argv):
        sys.exit("--pin-server/--pin-load need taskset")
    sys.exit(main())
