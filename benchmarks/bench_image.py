#!/usr/bin/env python3
"""envbuild image vs MLflow's Dockerfile (`mlflow models generate-dockerfile` + `docker
build`), envbuild venv vs `mlflow models prepare-env --env-manager uv`, and the load test
against both images, side by side in one run.

    python benchmarks/bench_image.py [--mlflow /work/venvs/examples-mlflow3/bin/mlflow]
        [--models sklearn-credit pyfunc-custom] [--skip-mlflow] [--no-load] [--no-venv]
        [--build-docker] [--keep]
    python benchmarks/bench_image.py --uv-cache [--models FIRST SECOND]

For each model (a copy per tool in a temp folder): cold build time, image size (and what was
added over the base), rebuild time after changing only the weights file, time from
`docker run` to the first 200 on /ping (median of --ping-rounds starts, the two images
alternating), and the median /invocations latency over 200
sequential requests. Then benchmarks/load_test.py (200 connections, 3000 requests, loopback)
against each image. The two tools run phase by phase, back to back (cold envbuild, cold
MLflow, rebuild envbuild, rebuild MLflow, ...), so a change in the machine's load hits both;
the load average is printed at the start and the end. Images it builds are tagged bench-*
and removed at the end (unless --keep); nothing else on the engine is touched. A cold build
is checked to be cold: no layer above the base may predate the build (a reused layer would
make it a warm build; the run stops instead of printing a wrong number).

Both tools get the same model folder. By default (--truth) its requirements.txt is the
manifest's measured truth set (mlflow-skinny for mlflow): as declared, sklearn-credit pins
torch, whose PyPI build is CUDA (GBs), which MLflow's in-container pip would download.
`--declared` keeps the folders as they are and resolves torch from --find-links
(/opt/wheels, the CPU build) for envbuild only; MLflow is then skipped.

MLflow's side, and the two edits this script makes to the Dockerfile MLflow generates
(nothing else is changed; sizes and layers are MLflow's own):
  1. `FROM python:3.11.7-slim` (the model's Python) becomes `FROM bench-base:<run>`, the
     local python:3.11-slim plus a 0-byte LABEL, which envbuild also gets (--base-image):
     this machine reaches no image registry, and a fresh base id keeps both builds cold. The local bases
     are made by ../shared/tools/docker-engine (Debian bookworm, Debian's python3 in a venv
     at /usr/local, this machine's CA bundle at /etc/ssl/certs/ca-certificates.crt).
  2. `ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt` right after FROM. Why: the package
     index is reached through a TLS proxy whose CA is only in that bundle. The base's pip
     (Debian's 23.0.1) is patched by Debian to use the system bundle, so `pip install
     mlflow` works; but MLflow's `_install_pyfunc_deps` step first runs `pip install
     pip==23.2.1 setuptools wheel`, and that PyPI pip verifies against its own vendored
     certifi bundle, so its next call (`pip install gunicorn[gevent]`) fails with
     CERTIFICATE_VERIFY_FAILED. PIP_CERT (= pip --cert) points every later pip at the
     system bundle. It adds no bytes and no layer.
`mlflow models build-docker` generates the same Dockerfile and builds it without a chance
to make either edit, so here it fails (no registry for python:3.11.7-slim; with a local
alias of that name, the pip certificate failure above). --build-docker tries it anyway
(over a local alias) and reports the outcome in its own row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envbuild._adapters import buildkit as _buildkit  # noqa: E402
from envbuild._adapters import docker as _docker  # noqa: E402

WEIGHTS = {"sklearn-credit": "model.skops", "pyfunc-custom": "artifacts/classifier.joblib"}
BASE = "python:3.11-slim"
# Both tools build over bench-base:<run>, python:3.11-slim plus one LABEL (0 bytes): a fresh
# image id, so no layer cached by earlier builds of the same lock (tests, other runs) can
# make a cold build warm, and nothing on the engine has to be pruned.
RUN_BASE = f"bench-base:{os.getpid()}"
CA = "/etc/ssl/certs/ca-certificates.crt"


def sh(argv: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    return time.monotonic() - start, done


def must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}{done.stdout[-2000:]}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def image_size(c: Any, ref: str) -> int:
    return int(c.api.inspect_image(ref)["Size"])


def assert_cold(c: Any, ref: str, since: float) -> None:
    """Every layer with bytes that the build added was made by this build, not taken from
    the cache (0-byte ENV/LABEL steps may be shared with the run's other model)."""
    base_ids = {h["Id"] for h in c.api.history(RUN_BASE) if h["Id"] != "<missing>"}
    base_created = max(h["Created"] for h in c.api.history(RUN_BASE))
    added = [h for h in c.api.history(ref) if h["Id"] not in base_ids]
    stale = [h for h in added if h["Size"] and base_created < h["Created"] < since - 2]
    if stale:
        sys.exit(f"{ref}: the 'cold' build reused {len(stale)} cached layer(s), e.g. "
                 f"{stale[-1]['CreatedBy'][:120]!r}; remove them and run again")  # fmt: skip


def wait_ping(base: str, start: float) -> float:
    while time.monotonic() - start < 180:
        try:
            with urllib.request.urlopen(base + "/ping", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    return float("nan")


def first_pings(c: Any, images: list[str], rounds: int) -> dict[str, list[float]]:
    """Seconds from `docker run` to the first 200 on /ping, ``rounds`` times per image,
    the images alternating so a change in the machine's load hits them alike."""
    out: dict[str, list[float]] = {image: [] for image in images}
    for _ in range(rounds):
        for image in images:
            start = time.monotonic()
            running = _docker.run(c, image, port=8080)
            try:
                out[image].append(wait_ping(f"http://127.0.0.1:{running.port}", start))
            finally:
                _docker.remove(running)
    return out


def serve_metrics(c: Any, image: str, payload: bytes, n: int = 200) -> dict[str, float]:
    """Median /invocations latency over ``n`` sequential requests."""
    running = _docker.run(c, image, port=8080)
    try:
        base = f"http://127.0.0.1:{running.port}"
        wait_ping(base, time.monotonic())
        lat = []
        for _ in range(n):
            req = urllib.request.Request(
                base + "/invocations", data=payload, headers={"Content-Type": "application/json"}
            )
            t = time.monotonic()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            lat.append(time.monotonic() - t)
        return {"p50_ms": statistics.median(lat) * 1000}
    finally:
        _docker.remove(running)


def load(
    c: Any, image: str, payload: Path, expect: Path, requests: int, env: dict[str, str]
) -> dict[str, Any]:
    running = _docker.run(c, image, port=8080, env=env)
    try:
        base = f"http://127.0.0.1:{running.port}"
        wait_ping(base, time.monotonic())
        _, done = sh([sys.executable, str(ROOT / "benchmarks" / "load_test.py"),
                      base + "/invocations", "--payload", str(payload), "--expect", str(expect),
                      "--concurrency", "200", "--requests", str(requests),
                      "--max-seconds", "120", "--json"])  # fmt: skip
        report: dict[str, Any] = json.loads(done.stdout)
        return report
    finally:
        _docker.remove(running)


def touch_weights(model: Path, name: str) -> None:
    p = model / WEIGHTS[name]
    p.write_bytes(p.read_bytes() + b"\0")


def remove(c: Any, *refs: str) -> None:
    for ref in refs:
        _docker.remove_image(c, ref)


class Envbuild:
    label = "envbuild image"

    def __init__(self, c: Any, model: Path, name: str, find_links: str) -> None:
        self.c, self.model, self.name, self.find_links = c, model, name, find_links
        self.tag = f"bench-envbuild-{name}:1"
        self.tags = (self.tag, self.tag.replace(":1", ":2"))
        remove(c, *self.tags)

    def _build(self, tag: str) -> float:
        seconds, done = sh([sys.executable, "-m", "envbuild", "image", str(self.model), "-t", tag,
                            "--find-links", self.find_links, "--base-image", RUN_BASE,
                            "--no-smoke"])  # fmt: skip
        must(done, f"envbuild image -t {tag}")
        return seconds

    def cold(self) -> float:
        start = time.time()
        seconds = self._build(self.tags[0])
        assert_cold(self.c, self.tags[0], start)
        return seconds

    def rebuild(self) -> float:
        touch_weights(self.model, self.name)
        return self._build(self.tags[1])


class MlflowGenerated:
    label = "mlflow generate-dockerfile+build"

    def __init__(self, c: Any, mlflow: str, model: Path, name: str, work: Path) -> None:
        self.c, self.mlflow, self.model, self.name, self.work = c, mlflow, model, name, work
        self.tag = f"bench-mlflow-{name}:1"
        self.tags = (self.tag, self.tag.replace(":1", ":2"))
        remove(c, *self.tags)

    def _build(self, tag: str, *, cache: bool) -> float:
        out = self.work / f"gen-{self.name}-{tag.rsplit(':', 1)[1]}"
        start = time.monotonic()
        _, done = sh([self.mlflow, "models", "generate-dockerfile", "--env-manager", "local",
                      "-m", str(self.model), "-d", str(out)])  # fmt: skip
        must(done, "mlflow models generate-dockerfile")
        dockerfile = out / "Dockerfile"
        text = dockerfile.read_text()
        first = next(line for line in text.splitlines() if line.startswith("FROM "))
        # the two edits documented in the module docstring, and nothing else
        dockerfile.write_text(text.replace(first, f"FROM {RUN_BASE}\nENV PIP_CERT={CA}", 1))
        _, done = sh(["docker", "build", "-q", *([] if cache else ["--no-cache"]), "-t", tag,
                      str(out)], env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
        must(done, f"docker build -t {tag} (MLflow's Dockerfile)")
        return time.monotonic() - start

    def cold(self) -> float:
        start = time.time()
        seconds = self._build(self.tags[0], cache=False)
        assert_cold(self.c, self.tags[0], start)
        return seconds

    def rebuild(self) -> float:
        touch_weights(self.model, self.name)
        return self._build(self.tags[1], cache=True)


def try_build_docker(c: Any, mlflow: str, model: Path, name: str) -> dict[str, Any]:
    """`mlflow models build-docker` as is, over a local alias of the model's base name."""
    tag = f"bench-mlflow-bd-{name}:1"
    alias = "python:3.11.7-slim"
    made = not c.images.list(name=alias)
    if made:
        c.images.get(BASE).tag(alias)
    try:
        seconds, done = sh([mlflow, "models", "build-docker", "--env-manager", "local", "-m",
                            str(model), "-n", tag], env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    finally:
        if made:
            c.images.remove(alias, noprune=True)
    if done.returncode != 0:
        text = done.stdout + done.stderr
        why = "CERTIFICATE_VERIFY_FAILED" if "CERTIFICATE_VERIFY_FAILED" in text else "error"
        return {"failed": f"exit {done.returncode} after {seconds:.0f} s ({why})", "tag": tag}
    return {"cold": seconds, "size": image_size(c, tag), "tag": tag}


def bench_venv(mlflow: str, model: Path, work: Path) -> dict[str, float]:
    """cold: empty uv cache, no env; rebuilt: env deleted, cache kept; unchanged: again."""
    out: dict[str, float] = {}
    venv = work / "venv"
    eb_env = {**os.environ, "UV_CACHE_DIR": str(work / "uv-cache-eb")}
    eb = [sys.executable, "-m", "envbuild", "venv", str(model), "--path", str(venv)]
    ml_root = work / "mlflow-envs"
    from uv import find_uv_bin  # MLflow runs `uv` from PATH: the same uv envbuild uses

    path = f"{Path(find_uv_bin()).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ml_env = {**os.environ, "MLFLOW_ENV_ROOT": str(ml_root), "PATH": path,
              "UV_CACHE_DIR": str(work / "uv-cache-ml")}  # fmt: skip
    ml = [mlflow, "models", "prepare-env", "-m", str(model), "--env-manager", "uv"]
    steps: list[tuple[str, list[str], dict[str, str], Callable[[], None]]] = [
        ("envbuild_cold", eb, eb_env, lambda: None),
        ("mlflow_cold", ml, ml_env, lambda: None),
        ("envbuild_rebuilt", eb, eb_env, lambda: shutil.rmtree(venv)),
        ("mlflow_rebuilt", ml, ml_env, lambda: shutil.rmtree(ml_root)),
        ("envbuild_unchanged", eb, eb_env, lambda: None),
        ("mlflow_unchanged", ml, ml_env, lambda: None),
    ]
    for key, argv, env, before in steps:
        before()
        out[key], done = sh(argv, env=env)
        must(done, " ".join(argv[:4]))
    return out


def prepare(src: Path, dst: Path, declared: bool) -> Path:
    shutil.copytree(src, dst)
    if not declared:
        manifest = json.loads((ROOT / "examples" / "manifest.json").read_text())
        truth = next(e["truth"] for e in manifest["examples"] if e["name"] == src.name)
        lines = [
            f"{'mlflow-skinny' if k == 'mlflow' else k}=={v}" for k, v in sorted(truth.items())
        ]
        (dst / "requirements.txt").write_text("\n".join(lines) + "\n")
    return dst


def ratio(a: Any, b: Any) -> str:
    try:
        return f"{a / b:.2f}"
    except (TypeError, ZeroDivisionError):
        return "-"


def report(
    args: argparse.Namespace,
    base: int,
    table: list[tuple[str, str, dict[str, Any]]],
    loads: list[tuple[str, str, dict[str, Any]]],
) -> None:
    print(f"load average after the image runs: {loadavg()}")
    print(f"base {BASE} {base / 1e6:.0f} MB")
    print(f"{'model':<16}{'tool':<34}{'cold s':>8}{'size MB':>9}{'added MB':>9}"
          f"{'rebuild s':>10}{'1st ping s':>11}{'p50 ms':>8}")  # fmt: skip
    for name, tool, r in table:
        if "failed" in r:
            print(f"{name:<16}{tool:<34}  failed: {r['failed']}")
            continue

        def f(key: str, fmt: str, r: dict[str, Any] = r) -> str:
            return format(r[key], fmt) if key in r else "-"

        print(f"{name:<16}{tool:<34}{r['cold']:>8.1f}{r['size'] / 1e6:>9.0f}"
              f"{(r['size'] - base) / 1e6:>9.0f}{f('rebuild', '.1f'):>10}"
              f"{f('ping', '.2f'):>11}{f('p50_ms', '.1f'):>8}")  # fmt: skip
    for name, tool, r in table:
        if r.get("pings"):
            ps = sorted(r["pings"])
            print(f"{name:<16}{tool:<34}first /ping over {len(ps)} starts: min {ps[0]:.2f} "
                  f"median {statistics.median(ps):.2f} max {ps[-1]:.2f} s")  # fmt: skip
    by = {(n, t): r for n, t, r in table}
    for name in args.models:
        e, m = by.get((name, Envbuild.label)), by.get((name, MlflowGenerated.label))
        if e and m:
            print(f"{name}: envbuild/MLflow  added {ratio(e['size'] - base, m['size'] - base)}"
                  f" (goal <= 0.33)  cold {ratio(e['cold'], m['cold'])} (<= 0.5)"
                  f"  rebuild {ratio(e['rebuild'], m['rebuild'])} (goal <= 2 s: "
                  f"{e['rebuild']:.1f} s)  1st ping {ratio(e['ping'], m['ping'])} (<= 0.5)"
                  f"  p50 {ratio(e['p50_ms'], m['p50_ms'])}")  # fmt: skip
    if loads:
        print("load test: 200 connections, keep-alive, loopback, "
              f"{args.load_requests} requests, responses checked against the stored predictions")  # fmt: skip
        print(f"{'model':<16}{'tool':<34}{'ok':>6}{'errors':>7}{'unsent':>7}{'req/s':>8}"
              f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")  # fmt: skip
        for name, tool, rep in loads:
            lat = rep["latency_ms"]
            print(f"{name:<16}{tool:<34}{rep['ok']:>6}{rep['errors']:>7}{rep['not_sent']:>7}"
                  f"{rep['throughput_rps']:>8}{lat['p50']:>8}{lat['p99']:>8}{lat['max']:>8}")  # fmt: skip


def bench_uv_cache(c: Any, first: str, second: str, find_links: str, work: Path) -> None:
    """--uv-cache: the cold build of ``second`` (every layer new) with BuildKit's uv cache
    mount empty, then again with it warm from a build of ``first``. Each build gets a base
    of its own (no layer cache) and a cache mount id of its own in the rendered Dockerfile
    (`id=bench-uv-<run>-...`, the one edit): nothing the engine's other builds share is
    pruned or reused."""
    kit = _buildkit.choose(_buildkit.Builder.BUILDKIT)
    assert kit is not None
    run = os.getpid()
    bases: list[str] = []

    def build(name: str, cache: str, step: str) -> float:
        base = f"bench-base:{run}-{step}"
        _, done = sh(["docker", "build", "-q", "-t", base, "-"],
                     input=f"FROM {BASE}\nLABEL io.envbuild.bench.run={run}-{step}\n",
                     env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
        must(done, f"docker build -t {base}")
        bases.append(base)
        model = prepare(ROOT / "examples" / name, work / step / name, declared=False)
        ctx = work / step / "context"
        links = ["--find-links", find_links] if Path(find_links).is_dir() else []
        _, done = sh([sys.executable, "-m", "envbuild", "image", str(model), "--output", str(ctx),
                      "--builder", "buildkit", "--base-image", base, *links])  # fmt: skip
        must(done, f"envbuild image {name} --output")
        dockerfile = ctx / "Dockerfile"
        text = dockerfile.read_text()
        mount = "--mount=type=cache,target=/root/.cache/uv"
        assert mount in text, "the rendered Dockerfile has no uv cache mount"
        dockerfile.write_text(
            text.replace(
                mount, f"--mount=type=cache,id=bench-uv-{run}-{cache},target=/root/.cache/uv"
            )
        )
        start = time.monotonic()
        image = _buildkit.build(kit, ctx, secrets={}, on_line=lambda _: None)
        seconds = time.monotonic() - start
        _docker.remove_image(c, image)
        print(f"{name} ({step}): {seconds:.1f} s", file=sys.stderr, flush=True)
        return seconds

    try:
        print(f"load average at start: {loadavg()} ({os.cpu_count()} CPUs)", flush=True)
        empty = build(second, "empty", "second-empty-cache")
        build(first, "warm", "first-warms-cache")
        warm = build(second, "warm", "second-warm-cache")
        print(f"load average at end: {loadavg()}")
        print(f"cold build of {second} (BuildKit, every layer new), seconds")
        print(f"  uv cache mount empty              {empty:>8.1f}")
        print(f"  uv cache warm from {first:<16}{warm:>8.1f}  ({empty / warm:.2f}x faster)")
    finally:
        remove(c, *bases)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mlflow", default="/work/venvs/examples-mlflow3/bin/mlflow")
    ap.add_argument("--models", nargs="+", default=["sklearn-credit", "pyfunc-custom"])
    ap.add_argument("--find-links", default="/opt/wheels")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--declared", action="store_true", help="models as declared (no MLflow)")
    ap.add_argument("--no-load", action="store_true", help="skip the load test")
    ap.add_argument("--ping-rounds", type=int, default=7,
                    help="container starts per image for the first-/ping median")  # fmt: skip
    ap.add_argument("--load-requests", type=int, default=3000)
    ap.add_argument("--no-venv", action="store_true", help="skip envbuild venv vs prepare-env")
    ap.add_argument("--build-docker", action="store_true", help="also try build-docker as is")
    ap.add_argument("--keep", action="store_true", help="keep the bench-* images")
    ap.add_argument("--uv-cache", action="store_true",
                    help="only: the second model's cold BuildKit build with the uv cache "
                    "mount warm from the first model vs empty")  # fmt: skip
    args = ap.parse_args()
    if args.uv_cache:
        with tempfile.TemporaryDirectory(prefix="bench-uv-cache-") as tmp:
            first, second = (args.models * 2)[:2]
            bench_uv_cache(_docker.client(), first, second, args.find_links, Path(tmp))
        return 0
    args.skip_mlflow = args.skip_mlflow or args.declared
    c = _docker.client()
    base = image_size(c, BASE)
    print(f"load average at start: {loadavg()} ({os.cpu_count()} CPUs)", flush=True)
    _, done = sh(["docker", "build", "-q", "-t", RUN_BASE, "-"],
                 input=f"FROM {BASE}\nLABEL io.envbuild.bench.run={time.time()}\n",
                 env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    must(done, f"docker build -t {RUN_BASE}")
    all_tags: list[str] = [RUN_BASE]
    table: list[tuple[str, str, dict[str, Any]]] = []
    loads: list[tuple[str, str, dict[str, Any]]] = []
    venv_row: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
            work = Path(tmp)
            for name in args.models:
                example = ROOT / "examples" / name
                tools: list[Any] = [Envbuild(c, prepare(example, work / "eb" / name,
                                                        args.declared), name, args.find_links)]  # fmt: skip
                if not args.skip_mlflow:
                    model = prepare(example, work / "mlflow" / name, args.declared)
                    tools.append(MlflowGenerated(c, args.mlflow, model, name, work))
                for t in tools:
                    all_tags.extend(t.tags)
                rows = {t.label: {"tag": t.tag} for t in tools}
                for phase in ("cold", "rebuild"):
                    for t in tools:
                        rows[t.label][phase] = getattr(t, phase)()
                        print(name, t.label, phase, f"{rows[t.label][phase]:.1f} s",
                              file=sys.stderr, flush=True)  # fmt: skip
                payload = example / "serving_input_example.json"
                pings = first_pings(c, [t.tag for t in tools], args.ping_rounds)
                for t in tools:
                    rows[t.label]["size"] = image_size(c, t.tag)
                    rows[t.label]["ping"] = statistics.median(pings[t.tag])
                    rows[t.label]["pings"] = pings[t.tag]
                    rows[t.label].update(serve_metrics(c, t.tag, payload.read_bytes()))
                    print(name, t.label, json.dumps(rows[t.label]), file=sys.stderr, flush=True)
                table.extend((name, label, r) for label, r in rows.items())
                if not args.no_load:
                    runs: list[tuple[str, str, dict[str, str]]] = [
                        (t.label, t.tag, {}) for t in tools
                    ]
                    runs.insert(1, (f"{tools[0].label} (1 worker)", tools[0].tag,
                                    {"ENVBUILD_WORKERS": "1"}))  # fmt: skip
                    for label, tag, env in runs:
                        rep = load(c, tag, payload, example / "expected_predictions.json",
                                      args.load_requests, env)  # fmt: skip
                        loads.append((name, label, rep))
                        print(name, label, json.dumps(rep), file=sys.stderr, flush=True)
                if args.build_docker and not args.skip_mlflow:
                    bd = try_build_docker(c, args.mlflow,
                                          prepare(example, work / "bd" / name, args.declared),
                                          name)  # fmt: skip
                    all_tags.append(bd["tag"])
                    table.append((name, "mlflow build-docker (as is)", bd))
            report(args, base, table, loads)
            if not args.skip_mlflow and not args.no_venv:
                m4 = prepare(ROOT / "examples" / args.models[0], work / "venv-model",
                             args.declared)  # fmt: skip
                venv_row = bench_venv(args.mlflow, m4, work)
    finally:
        if not args.keep:
            remove(c, *all_tags[1:])
        remove(c, RUN_BASE)
    if venv_row:
        print(f"load average at end: {loadavg()}")
        v = venv_row
        print(
            f"venv ({args.models[0]}), seconds   cold (empty uv cache)  rebuilt (env deleted)"
            "  unchanged"
        )
        for tool, key in (("envbuild venv", "envbuild"), ("mlflow prepare-env uv", "mlflow")):
            print(f"  {tool:<26}{v[key + '_cold']:>12.2f}{v[key + '_rebuilt']:>22.2f}"
                  f"{v[key + '_unchanged']:>11.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
