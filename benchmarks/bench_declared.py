"""`python benchmarks/bench_image.py --declared`: issue #14's image-size goal, envbuild adds
<= 1/3 of what MLflow's Dockerfile adds over the same base, both tools on the same unedited
model folder (bench_image.py's docstring says how MLflow's side is built and why).

Not run on its own: bench_image.py parses the arguments and calls run_declared().
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_image import (
    BASE,
    ROOT,
    assert_cold,
    image_size,
    loadavg,
    make_run_base,
    mlflow_dockerfile,
    remove,
    sh,
)

from tests.corpus.generate import VENVS as CORPUS_VENVS  # generate.py's per-version venvs
from tests.corpus.generate import pyenv_python

# venvs this benchmark makes for an MLflow version no corpus venv has
OWN_VENVS = Path(os.environ.get("ENVBUILD_BENCH_VENVS", "~/.cache/envbuild-bench/venvs"))
GOAL = 1 / 3


@dataclasses.dataclass
class Model:
    path: Path
    name: str
    mlflow: str | None  # MLmodel's mlflow_version
    python: str | None  # "3.11"

    @property
    def base(self) -> str:
        return f"python:{self.python}-slim" if self.python else BASE


def model_folder(arg: str) -> Model:
    """``arg``: a path to a folder with an MLmodel, or the name of one of examples/."""
    path = Path(arg)
    if not (path / "MLmodel").is_file():
        path = ROOT / "examples" / arg
    if not (path / "MLmodel").is_file():
        sys.exit(f"{arg}: no MLmodel there nor in examples/{arg}; give a model folder")
    path = path.resolve()
    # regexes, not YAML: `python: 3.10` would load as the float 3.1
    mlmodel = (path / "MLmodel").read_text()
    version = re.search(r"^mlflow_version:\s*['\"]?([^\s'\"]+)", mlmodel, re.M)
    env = path / "python_env.yaml"
    found = (
        re.search(r"^python:\s*['\"]?(\d+\.\d+)", env.read_text(), re.M) if env.is_file() else None
    )
    found = found or re.search(r"^\s*python_version:\s*['\"]?(\d+\.\d+)", mlmodel, re.M)
    return Model(path, path.name, version and version.group(1), found and found.group(1))


def last_error(text: str) -> str:
    """The last log line that says error (pip's `ERROR: ...`), else the last line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # docker's colours around pip's stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error", line, re.I)]
    return ((errors or lines or ["(no output)"])[-1])[:160]


def _has_mlflow(venv: Path, version: str) -> bool:
    return (venv / "bin" / "mlflow").exists() and any(
        venv.glob(f"lib/python*/site-packages/mlflow-{version}.dist-info")
    )


def mlflow_cli(version: str, python: str | None) -> str:
    """bin/mlflow of a venv with MLflow ``version``: a corpus venv that has it, else one made
    (once) with uv under OWN_VENVS on the model's Python. RuntimeError if it cannot be."""
    own = OWN_VENVS.expanduser()
    for root in (CORPUS_VENVS, own):
        for venv in sorted(root.glob("*")) if root.is_dir() else []:
            if _has_mlflow(venv, version):
                return str(venv / "bin" / "mlflow")
    from uv import find_uv_bin

    venv = own / f"mlflow{version}"
    if venv.exists():
        shutil.rmtree(venv)
    try:
        py = str(pyenv_python(python)) if python else sys.executable
    except SystemExit:  # no pyenv CPython of that minor
        py = sys.executable
    # MLflow <= 2.16 imports pkg_resources (tests/corpus/generate.py pins the same)
    old = tuple(int(x) for x in re.findall(r"\d+", version)[:2]) <= (2, 16)
    for argv in (
        [find_uv_bin(), "venv", "-q", "--python", py, str(venv)],
        [find_uv_bin(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         f"mlflow=={version}", *(["setuptools<81"] if old else [])],
    ):  # fmt: skip
        print("+", " ".join(argv), file=sys.stderr, flush=True)
        _, done = sh(argv)
        if done.returncode != 0:
            raise RuntimeError(f"mlflow=={version} venv: {last_error(done.stderr)}")
    return str(venv / "bin" / "mlflow")


def envbuild_cold(c: Any, model: Path, tag: str, run_base: str, find_links: str) -> dict[str, Any]:
    start = time.time()
    seconds, done = sh([sys.executable, "-m", "envbuild", "image", str(model), "-t", tag,
                        "--find-links", find_links, "--base-image", run_base, "--no-smoke"])  # fmt: skip
    if done.returncode != 0:
        return {"failed": f"{seconds:.0f} s: {last_error(done.stderr + done.stdout)}"}
    assert_cold(c, tag, start, run_base)
    return {"cold": seconds, "size": image_size(c, tag)}


def mlflow_cold(
    c: Any, cli: str, model: Path, out: Path, tag: str, run_base: str
) -> dict[str, Any]:
    """generate-dockerfile (+ the two edits) and `docker build --no-cache`, timed together."""
    start, t0 = time.time(), time.monotonic()
    done = mlflow_dockerfile(cli, model, out, run_base)
    if done.returncode == 0:
        _, done = sh(["docker", "build", "--no-cache", "-t", tag, str(out)],
                     env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        return {"failed": f"{seconds:.0f} s: {last_error(done.stdout + done.stderr)}"}
    assert_cold(c, tag, start, run_base)
    return {"cold": seconds, "size": image_size(c, tag)}


def bench_model(
    c: Any, model: Model, i: int, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model}
    if not c.images.list(name=model.base):
        row["envbuild"] = row["mlflow"] = {"failed": f"no local base {model.base}"}
        return row
    run_base = f"bench-base-{i}:{os.getpid()}"  # fresh per model: no layer of another counts
    make_run_base(model.base, run_base)
    row["base_size"] = image_size(c, run_base)
    tags = (f"bench-envbuild-{i}:{os.getpid()}", f"bench-mlflow-{i}:{os.getpid()}")
    try:
        eb_copy, ml_copy = work / f"eb-{i}" / model.name, work / f"ml-{i}" / model.name
        shutil.copytree(model.path, eb_copy)
        shutil.copytree(model.path, ml_copy)
        row["envbuild"] = envbuild_cold(c, eb_copy, tags[0], run_base, args.find_links)
        print(model.name, "envbuild", row["envbuild"], file=sys.stderr, flush=True)
        try:
            cli = mlflow_cli(model.mlflow, model.python) if model.mlflow else args.mlflow
            row["mlflow_cli"] = cli
            row["mlflow"] = mlflow_cold(c, cli, ml_copy, work / f"gen-{i}", tags[1], run_base)
        except RuntimeError as e:
            row["mlflow"] = {"failed": str(e)}
        print(model.name, "mlflow", row["mlflow"], file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            remove(c, *tags)
        remove(c, run_base)
    return row


def _mb(r: dict[str, Any], base: int) -> str:
    return f"{(r['size'] - base) / 1e6:.0f}" if "size" in r else "-"


def report(rows: list[dict[str, Any]]) -> None:
    print(f"load average at end: {loadavg()}")
    print(f"{'model':<46}{'MLflow':>8} {'base':<17}{'base MB':>8}{'envbuild +MB':>13}"
          f"{'MLflow +MB':>11}{'ratio':>7}{'envbuild s':>11}{'MLflow s':>9}")  # fmt: skip
    met = failed = 0
    for row in rows:
        m, e, f = row["model"], row["envbuild"], row["mlflow"]
        base = row.get("base_size", 0)
        ratio = "-"
        if "size" in e and "size" in f and f["size"] > base:
            value = (e["size"] - base) / (f["size"] - base)
            met += value <= GOAL
            ratio = f"{value:.2f}"
        cold = (format(r["cold"], ".0f") if "cold" in r else "-" for r in (e, f))
        print(f"{m.name:<46}{m.mlflow or '?':>8} {m.base:<17}{base / 1e6:>8.0f}{_mb(e, base):>13}"
              f"{_mb(f, base):>11}{ratio:>7}{next(cold):>11}{next(cold):>9}")  # fmt: skip
        for tool, r in (("envbuild", e), ("MLflow", f)):
            if "failed" in r:
                failed += tool == "MLflow"
                print(f"    {tool} build failed after {r['failed']}")
    print(f"{met} of {len(rows)} models meet the goal (envbuild adds <= 1/3 of what MLflow adds,"
          f" ratio <= {GOAL:.2f}); MLflow's build failed for {failed}")  # fmt: skip


def run_declared(c: Any, args: argparse.Namespace) -> int:
    models = [model_folder(arg) for arg in args.models]
    print(f"load average at start: {loadavg()} ({os.cpu_count()} CPUs)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-declared-") as tmp:
        for i, model in enumerate(models):
            rows.append(bench_model(c, model, i, Path(tmp), args))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit("run it as: python benchmarks/bench_image.py --declared --models ...")
