"""Benchmark: `envbuild infer --dry-run` against `mlflow.models.infer_pip_requirements`.

For every model in examples/, in the same training environment (the examples' venv) and on
the same folder, run both several rounds and print per model: both median wall times, the
ratio, and both requirement sets against the truth stored with the example (missing /
extra). Both timings include interpreter start: envbuild is run as its CLI (from this
interpreter, inspecting the training venv with --python), MLflow as a fresh
`python -c` in the training venv (it imports and loads the model).

    python benchmarks/bench_infer.py [--python /work/venvs/examples-mlflow3/bin/python] [--rounds 5]

"missing" = truth packages the written requirements would not install at all (not even as
a dependency of a written one); "implied" = truth packages installed only as a dependency
(unpinned); "extra" = written packages the model does not need.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from envbuild.infer.names import MLFLOW_DISTS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

MLFLOW_INFER = """
import json, sys, warnings
warnings.simplefilter("ignore")
from mlflow.models import Model
from mlflow.utils.requirements_utils import _infer_requirements
from mlflow.models import infer_pip_requirements
path = sys.argv[1]
m = Model.load(path)
flavor = next((f for f in m.flavors if f != "python_function"), "python_function")
reqs = infer_pip_requirements(path, flavor)
print("BENCH:" + json.dumps(reqs))
"""


def _name(req: str) -> str | None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    req = req.split("#", 1)[0].strip()
    if not req or req.startswith("-"):
        return None
    try:
        return canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return None


def _closure(names: set[str], env: object) -> set[str]:
    out: set[str] = set()
    for n in names:
        out |= env.closure(n)  # type: ignore[attr-defined]
    return out


def _compare(written: set[str], truth: set[str], env: object) -> dict[str, list[str]]:
    alias = {n: "mlflow" if n in MLFLOW_DISTS else n for n in written}
    have = set(alias.values())
    closure = _closure(written, env)
    missing = sorted(t for t in truth if t not in have and t not in closure)
    implied = sorted(t for t in truth if t not in have and t in closure)
    extra = sorted(n for n in have if n not in truth)
    return {"missing": missing, "implied": implied, "extra": extra}


def run_envbuild(model: Path, python: str) -> tuple[float, set[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "envbuild", "infer", str(model), "--python", python,
         "--dry-run", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    doc = json.loads(done.stdout)
    names = {r["name"] for r in doc["result"]["requirements"]}
    return elapsed, names


def run_mlflow(model: Path, python: str, env: dict[str, str]) -> tuple[float, set[str], str]:
    start = time.perf_counter()
    done = subprocess.run(
        [python, "-c", MLFLOW_INFER, str(model)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH:")), None)
    if line is None:
        return elapsed, set(), (done.stderr.strip().splitlines() or ["failed"])[-1]
    reqs = json.loads(line[len("BENCH:") :])
    # infer_pip_requirements leaves mlflow out; MLflow adds mlflow==<version> when it writes
    # requirements.txt, so count it as written
    return elapsed, {n for n in map(_name, reqs) if n} | {"mlflow"}, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/work/venvs/examples-mlflow3/bin/python")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from envbuild.installed import inspect_env

    training = inspect_env(args.python)
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    truths = {e["name"]: e for e in manifest["examples"]}
    models = sorted(p.parent for p in EXAMPLES.glob("*/MLmodel"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "TMPDIR": tmp}
        for model in models:
            entry = truths.get(model.name, {})
            load_env = {**env, **(entry.get("load_env") or {})}
            eb_times, ml_times = [], []
            eb_names: set[str] = set()
            ml_names: set[str] = set()
            ml_error = ""
            for _ in range(args.rounds):
                t, eb_names = run_envbuild(model, args.python)
                eb_times.append(t)
                t, ml_names, ml_error = run_mlflow(model, args.python, load_env)
                ml_times.append(t)
            truth = {("mlflow" if k in MLFLOW_DISTS else k) for k in (entry.get("truth") or {})}
            rows.append(
                {
                    "model": model.name,
                    "envbuild_s": statistics.median(eb_times),
                    "mlflow_s": statistics.median(ml_times),
                    "envbuild": _compare(eb_names, truth, training),
                    "mlflow": _compare(ml_names, truth, training),
                    "mlflow_error": ml_error,
                }
            )
    print(f"{args.rounds} rounds per model, medians; training env {args.python}")
    print(f"{'model':<16}{'envbuild':>10}{'mlflow':>10}{'ratio':>8}  requirements vs truth")
    for r in rows:
        ratio = r["mlflow_s"] / r["envbuild_s"]
        print(f"{r['model']:<16}{r['envbuild_s']:>9.3f}s{r['mlflow_s']:>9.3f}s{ratio:>7.1f}x")
        for who in ("envbuild", "mlflow"):
            c = r[who]
            print(
                f"{'':<16}  {who:<9} missing={c['missing'] or '-'} implied={c['implied'] or '-'} "
                f"extra={c['extra'] or '-'}"
            )
        if r["mlflow_error"]:
            print(f"{'':<16}  mlflow error: {r['mlflow_error'][:100]}")
    eb = statistics.median(r["envbuild_s"] for r in rows)
    ml = statistics.median(r["mlflow_s"] for r in rows)
    print(f"{'median':<16}{eb:>9.3f}s{ml:>9.3f}s{ml / eb:>7.1f}x")


if __name__ == "__main__":
    main()
