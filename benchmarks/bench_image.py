#!/usr/bin/env python3
"""envbuild image vs `mlflow models build-docker` (and generate-dockerfile + docker build),
and envbuild venv vs `mlflow models prepare-env --env-manager uv`, side by side.

    python benchmarks/bench_image.py [--mlflow /work/venvs/examples-mlflow3/bin/mlflow]
        [--models sklearn-credit pyfunc-custom] [--skip-mlflow] [--keep]

For each model (a copy in a temp folder): cold build time, image size (and what was added
over the base), rebuild time after changing only the weights file, time from `docker run`
to the first 200 on /ping, and the median /invocations latency over 200 requests. Images
it builds are tagged bench-* and removed at the end (unless --keep); base images and
anything else on the engine are left alone. Needs a Docker engine and the package index.

Both tools get the same model folder. By default (--truth) its requirements.txt is the
manifest's measured truth set (mlflow-skinny for mlflow): as declared, sklearn-credit pins
torch, whose PyPI build is CUDA (GBs), which MLflow's in-container pip would download.
`--declared` keeps the folders as they are and resolves torch from --find-links
(/opt/wheels, the CPU build) for envbuild only; MLflow is then skipped.

MLflow picks `python:<model python>-slim` (3.11.7) with --env-manager local; this script
tags the local python:3.11-slim under that name for the run and removes the alias after.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envbuild import _docker  # noqa: E402

WEIGHTS = {"sklearn-credit": "model.skops", "pyfunc-custom": "artifacts/classifier.joblib"}


def sh(argv: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    return time.monotonic() - start, done


def must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}{done.stdout[-2000:]}")


def image_size(c: Any, ref: str) -> int:
    return int(c.api.inspect_image(ref)["Size"])


def serve_metrics(c: Any, image: str, payload: bytes, n: int = 200) -> tuple[float, float]:
    start = time.monotonic()
    running = _docker.run(c, image, port=8080)
    try:
        base = f"http://127.0.0.1:{running.port}"
        first_ping = float("nan")
        while time.monotonic() - start < 180:
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2) as r:
                    if r.status == 200:
                        first_ping = time.monotonic() - start
                        break
            except OSError:
                time.sleep(0.05)
        lat = []
        for _ in range(n):
            req = urllib.request.Request(
                base + "/invocations", data=payload, headers={"Content-Type": "application/json"}
            )
            t = time.monotonic()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            lat.append(time.monotonic() - t)
        return first_ping, statistics.median(lat) * 1000
    finally:
        _docker.remove(running)


def touch_weights(model: Path, name: str) -> None:
    p = model / WEIGHTS[name]
    p.write_bytes(p.read_bytes() + b"\0")


def remove(c: Any, *refs: str) -> None:
    for ref in refs:
        _docker.remove_image(c, ref)
    c.images.prune(filters={"dangling": True})


def bench_envbuild(
    c: Any, model: Path, name: str, find_links: str, payload: bytes
) -> dict[str, Any]:
    tag = f"bench-envbuild-{name}:1"
    envbuild = [sys.executable, "-m", "envbuild", "image"]
    remove(c, tag, tag.replace(":1", ":2"))
    cold, done = sh([*envbuild, str(model), "-t", tag, "--find-links", find_links, "--no-smoke"])
    must(done, "envbuild image")
    touch_weights(model, name)
    rebuild, done = sh([*envbuild, str(model), "-t", tag.replace(":1", ":2"), "--find-links",
                        find_links, "--no-smoke"])  # fmt: skip
    must(done, "envbuild image (weights changed)")
    ping, p50 = serve_metrics(c, tag, payload)
    return {"cold": cold, "size": image_size(c, tag), "rebuild": rebuild, "ping": ping,
            "p50_ms": p50, "tag": tag}  # fmt: skip


def bench_mlflow(c: Any, mlflow: str, model: Path, name: str, payload: bytes) -> dict[str, Any]:
    tag = f"bench-mlflow-{name}:1"
    remove(c, tag, tag.replace(":1", ":2"))
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    argv = [mlflow, "models", "build-docker", "--env-manager", "local", "-m", str(model)]
    cold, done = sh([*argv, "-n", tag], env=env)
    must(done, "mlflow models build-docker")
    touch_weights(model, name)
    rebuild, done = sh([*argv, "-n", tag.replace(":1", ":2")], env=env)
    must(done, "mlflow models build-docker (weights changed)")
    ping, p50 = serve_metrics(c, tag, payload)
    return {"cold": cold, "size": image_size(c, tag), "rebuild": rebuild, "ping": ping,
            "p50_ms": p50, "tag": tag}  # fmt: skip


def bench_generate(c: Any, mlflow: str, model: Path, work: Path) -> dict[str, Any]:
    tag = "bench-mlflow-gen:1"
    remove(c, tag)
    out = work / "gen"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    t1, done = sh(
        [mlflow, "models", "generate-dockerfile", "--env-manager", "local", "-m", str(model),
         "-d", str(out)]
    )  # fmt: skip
    must(done, "mlflow models generate-dockerfile")
    t2, done = sh(["docker", "build", "-q", "-t", tag, str(out)], env=env)
    must(done, "docker build (generated)")
    return {"cold": t1 + t2, "size": image_size(c, tag), "tag": tag}


def bench_venv(mlflow: str, model: Path, work: Path) -> dict[str, float]:
    venv = work / "venv"
    eb = [sys.executable, "-m", "envbuild", "venv", str(model), "--path", str(venv)]
    cold, done = sh(eb)
    must(done, "envbuild venv")
    again, done = sh(eb)
    must(done, "envbuild venv (unchanged)")
    env = {**os.environ, "MLFLOW_ENV_ROOT": str(work / "mlflow-envs")}
    prep = [mlflow, "models", "prepare-env", "-m", str(model), "--env-manager", "uv"]
    m_cold, done = sh(prep, env=env)
    must(done, "mlflow models prepare-env")
    m_again, done = sh(prep, env=env)
    must(done, "mlflow models prepare-env (again)")
    return {"envbuild_cold": cold, "envbuild_rerun": again, "mlflow_cold": m_cold,
            "mlflow_rerun": m_again}  # fmt: skip


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


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mlflow", default="/work/venvs/examples-mlflow3/bin/mlflow")
    ap.add_argument("--models", nargs="+", default=["sklearn-credit", "pyfunc-custom"])
    ap.add_argument("--find-links", default="/opt/wheels")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--declared", action="store_true", help="models as declared (no MLflow)")
    ap.add_argument("--keep", action="store_true", help="keep the bench-* images")
    args = ap.parse_args()
    args.skip_mlflow = args.skip_mlflow or args.declared
    c = _docker.client()
    alias = "python:3.11.7-slim"
    made_alias = not args.skip_mlflow and not c.images.list(name=alias)
    if made_alias:
        c.images.get("python:3.11-slim").tag(alias)
    base = image_size(c, "python:3.11-slim")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    venv_row: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        work = Path(tmp)
        for name in args.models:
            payload = (ROOT / "examples" / name / "serving_input_example.json").read_bytes()
            m1 = work / "eb" / name
            prepare(ROOT / "examples" / name, m1, args.declared)
            rows.append(
                (name, "envbuild image", bench_envbuild(c, m1, name, args.find_links, payload))
            )
            print(name, "envbuild", json.dumps(rows[-1][2]), file=sys.stderr, flush=True)
            if not args.skip_mlflow:
                m2 = work / "mlflow" / name
                prepare(ROOT / "examples" / name, m2, args.declared)
                rows.append(
                    (name, "mlflow build-docker", bench_mlflow(c, args.mlflow, m2, name, payload))
                )
                print(name, "mlflow", json.dumps(rows[-1][2]), file=sys.stderr, flush=True)
        if not args.skip_mlflow:
            m3 = work / "gen-model"
            prepare(ROOT / "examples" / args.models[0], m3, args.declared)
            rows.append(
                (
                    args.models[0],
                    "mlflow generate-dockerfile+build",
                    bench_generate(c, args.mlflow, m3, work),
                )
            )
            m4 = work / "venv-model"
            prepare(ROOT / "examples" / args.models[0], m4, args.declared)
            venv_row = bench_venv(args.mlflow, m4, work)
        print(f"base python:3.11-slim {base / 1e6:.0f} MB")
        print(f"{'model':<16}{'tool':<34}{'cold s':>8}{'size MB':>9}{'added MB':>9}"
              f"{'rebuild s':>10}{'1st ping s':>11}{'p50 ms':>8}")  # fmt: skip
        for name, tool, r in rows:

            def f(key: str, fmt: str, r: dict[str, Any] = r) -> str:
                return format(r[key], fmt) if key in r else "-"

            print(f"{name:<16}{tool:<34}{r['cold']:>8.1f}{r['size'] / 1e6:>9.0f}"
                  f"{(r['size'] - base) / 1e6:>9.0f}{f('rebuild', '.1f'):>10}"
                  f"{f('ping', '.2f'):>11}{f('p50_ms', '.1f'):>8}")  # fmt: skip
        if venv_row:
            print(f"venv ({args.models[0]}): envbuild venv cold {venv_row['envbuild_cold']:.1f} s, "
                  f"re-run {venv_row['envbuild_rerun']:.2f} s; mlflow prepare-env --env-manager uv "
                  f"cold {venv_row['mlflow_cold']:.1f} s, again {venv_row['mlflow_rerun']:.2f} s")  # fmt: skip
    if not args.keep:
        for _, _, r in rows:
            remove(c, r["tag"], r["tag"].replace(":1", ":2"))
    if made_alias:
        c.images.remove(alias, noprune=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
