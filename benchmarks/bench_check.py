"""Benchmark: `envbuild check` vs MLflow's nearest route to the same answers.

    python benchmarks/bench_check.py [--repeat N] [--mlflow-python PATH]

For each example, side by side in one loop: `envbuild check` warm (index cache warm) and
`--offline`, each a fresh process (interpreter start included); and MLflow's route,
`mlflow.models.predict(model_uri, input_data, env_manager="uv")`, which builds the
model's environment and runs the model to find the same problems. MLflow runs in the
interpreter given by --mlflow-python (default: the examples' venv), so it sees the
same model folders. Also reports whether each route finds an undeclared dependency
(pyfunc-custom's joblib).

Goals (issue 6): offline check under 1 s per model; >= 20x faster than MLflow's route.
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

from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MLFLOW_PYTHON = Path("/work/venvs/examples-mlflow3/bin/python")

MLFLOW_ROUTE = """
import json, sys, mlflow
from mlflow.models import predict
model, example = sys.argv[1], sys.argv[2]
predict(model_uri=model, input_path=example, content_type="json", env_manager="uv",
        output_path=sys.argv[3])
"""


def _timed(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlflow-python", type=Path, default=MLFLOW_PYTHON)
    parser.add_argument("--examples", default="sklearn-credit,pyfunc-custom,pytorch-tensor")
    args = parser.parse_args()
    envbuild = [sys.executable, "-m", "envbuild", "check", "--format", "json", "-q"]
    rows = []
    for name in args.examples.split(","):
        folder = EXAMPLES / name
        info = json.loads((folder / "expected_predictions.json").read_text())
        example = folder / info["input"]
        _timed([*envbuild, str(folder)])  # warm the index cache
        warm, offline, mlflow = [], [], []
        found = {"envbuild": "", "mlflow": ""}
        for _ in range(args.repeat):
            seconds, proc = _timed([*envbuild, str(folder)])
            warm.append(seconds)
            doc = json.loads(proc.stdout)
            found["envbuild"] = ",".join(sorted({f["code"] for f in doc["findings"]})) or "-"
            offline.append(_timed([*envbuild, "--offline", str(folder)])[0])
            if args.mlflow_python.exists():
                with tempfile.TemporaryDirectory() as tmp:
                    env = {
                        **os.environ,
                        # MLflow's env_manager="uv" runs the uv on PATH: envbuild's own
                        "PATH": f"{Path(find_uv_bin()).parent}{os.pathsep}{os.environ['PATH']}",
                        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                        "MLFLOW_DISABLE_TELEMETRY": "true",
                    }
                    seconds, proc = _timed(
                        [
                            str(args.mlflow_python),
                            "-c",
                            MLFLOW_ROUTE,
                            str(folder),
                            str(example),
                            f"{tmp}/out.json",
                        ],
                        env=env,
                    )
                mlflow.append(seconds)
                found["mlflow"] = (
                    "ok"
                    if proc.returncode == 0
                    else "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:80]
                )
        row = {
            "model": name,
            "envbuild_warm_s": statistics.median(warm),
            "envbuild_offline_s": statistics.median(offline),
            "mlflow_predict_uv_s": statistics.median(mlflow) if mlflow else None,
            "envbuild_findings": found["envbuild"],
            "mlflow_result": found["mlflow"],
        }
        if mlflow:
            row["ratio_warm"] = row["mlflow_predict_uv_s"] / row["envbuild_warm_s"]
            row["ratio_offline"] = row["mlflow_predict_uv_s"] / row["envbuild_offline_s"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(
        f"{'model':<16} {'warm s':>7} {'offline s':>9} {'mlflow s':>9} {'x warm':>7} {'x offl':>7}  envbuild findings / mlflow"
    )
    for r in rows:
        ml = r["mlflow_predict_uv_s"]
        print(
            f"{r['model']:<16} {r['envbuild_warm_s']:7.2f} {r['envbuild_offline_s']:9.2f} "
            + (
                f"{ml:9.2f} {r['ratio_warm']:7.1f} {r['ratio_offline']:7.1f}"
                if ml
                else f"{'n/a':>9} {'':>7} {'':>7}"
            )
            + f"  {r['envbuild_findings']} / {r['mlflow_result']}"
        )
    offline_all = [r["envbuild_offline_s"] for r in rows]
    print(f"offline median {statistics.median(offline_all):.2f}s per model (goal < 1 s)")
    ratios = [r["ratio_offline"] for r in rows if "ratio_offline" in r]
    if ratios:
        print(
            f"median speed-up over MLflow's route: offline {statistics.median(ratios):.1f}x, "
            f"warm {statistics.median([r['ratio_warm'] for r in rows]):.1f}x (goal >= 20x)"
        )


if __name__ == "__main__":
    main()
