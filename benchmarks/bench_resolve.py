"""Benchmark: envbuild lock --dry-run vs raw uv pip compile vs pip install --dry-run.

    python benchmarks/bench_resolve.py [--repeat N] [--cases a,b,...]

For each example model and each conflict case, the three run side by side in one loop
(interleaved, so a warm cache or a slow index affects all three alike), on the same
requirements (the model's plus the serving stack envbuild adds), for the same target
Python and platform. Prints medians, the ratios, and for conflict cases whether each
tool's message names both requirement lines (file:line).

Goals (issue 4): envbuild's overhead over raw uv <= 20% warm; >= 5x faster than pip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from envbuild._adapters import uv as _uv  # noqa: E402
from envbuild.read import read_model  # noqa: E402
from envbuild.resolve import _inputs, target_for  # noqa: E402

CPU_WHEELS = Path("/opt/wheels")  # torch 2.13.0+cpu: keeps pip and uv off the CUDA wheels


@dataclass
class Case:
    name: str
    path: Path
    conflict: bool
    lines: tuple[int, int] | None = None  # the two requirements.txt lines in conflict


def cases() -> list[Case]:
    out = [
        Case(p.parent.name, p.parent, False) for p in sorted((ROOT / "examples").glob("*/MLmodel"))
    ]
    data = ROOT / "tests" / "data" / "resolve"
    out.append(Case("transitive-conflict", data / "transitive-conflict", True, (1, 2)))
    out.append(Case("contradictory-pins", data / "contradictory-pins", True, (4, 8)))
    out.append(Case("needs-newer-python", data / "needs-newer-python", True, None))
    return out


def _time(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None):
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    ns = parser.parse_args()
    selected = cases()
    if ns.cases:
        wanted = set(ns.cases.split(","))
        selected = [c for c in selected if c.name in wanted]
    envbuild = str(Path(sys.executable).parent / "envbuild")
    uv = _uv.uv_bin()
    print(f"{_uv.uv_version()}; pip {_pip_version()}; python {sys.version.split()[0]}")
    print(f"{'case':22} {'envbuild':>9} {'raw uv':>8} {'pip':>8} {'eb/uv':>7} {'pip/eb':>7}  notes")
    rows = []
    for case in selected:
        folder = read_model(case.path)
        target, _ = target_for(folder)
        inputs = _inputs(
            folder,
            target,
            folder.env.spec,
            find_links=[CPU_WHEELS],
            offline=False,
            include_serving=True,
        )
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            work = Path(tmp)
            (work / "requirements.in").write_text("".join(f"{x}\n" for x in inputs.lines))
            uv_args = [
                uv,
                "pip",
                "compile",
                "requirements.in",
                "--python-version",
                str(target.python),
                "--python-platform",
                target.uv_platform,
                "--python",
                sys.executable,
                "--no-header",
                "--generate-hashes",
                "--find-links",
                str(CPU_WHEELS),
            ]
            eb_args = [
                envbuild,
                "lock",
                str(case.path),
                "--dry-run",
                "-q",
                "--find-links",
                str(CPU_WHEELS),
            ]
            xy = f"{target.python.major}.{target.python.minor}"
            # pip takes --platform literally: list every manylinux tag a 2.28 system accepts
            arch = "x86_64" if target.platform == "linux/amd64" else "aarch64"
            platforms = [f"manylinux_2_{m}_{arch}" for m in range(28, 16, -1)]
            platforms += [f"manylinux2014_{arch}"]
            if arch == "x86_64":
                platforms += [f"manylinux_2_{m}_{arch}" for m in range(16, 4, -1)]
                platforms += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
            platform_args = [a for p in platforms for a in ("--platform", p)]
            eb_t, uv_t, pip_t = [], [], []
            eb_out = pip_out = ""
            for i in range(ns.repeat + 1):  # the first round warms the caches
                t1, p1 = _time(eb_args)
                t2, _p2 = _time(uv_args, env=_uv.clean_env(), cwd=work)
                target_dir = work / f"target-{i}"
                report = work / f"report-{i}.json"
                t3, p3 = _time(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "install",
                        "--dry-run",
                        "--report",
                        str(report),
                        "--ignore-installed",
                        "--target",
                        str(target_dir),
                        "--python-version",
                        xy,
                        *platform_args,
                        "--only-binary",
                        ":all:",
                        "--find-links",
                        str(CPU_WHEELS),
                        "-r",
                        "requirements.in",
                    ],
                    cwd=work,
                )
                shutil.rmtree(target_dir, ignore_errors=True)
                if i:
                    eb_t.append(t1)
                    uv_t.append(t2)
                    pip_t.append(t3)
                eb_out, pip_out = p1.stderr, p3.stderr
        eb_m, uv_m, pip_m = (statistics.median(x) for x in (eb_t, uv_t, pip_t))
        notes = ""
        if case.conflict:
            notes = _names_both(case, eb_out, pip_out)
        else:
            failed = [
                n
                for n, rc in (
                    ("envbuild", p1.returncode),
                    ("uv", _p2.returncode),
                    ("pip", p3.returncode),
                )
                if rc != 0
            ]
            notes = f"failed: {', '.join(failed)}" if failed else ""
        print(
            f"{case.name:22} {eb_m:8.2f}s {uv_m:7.2f}s {pip_m:7.2f}s "
            f"{eb_m / uv_m:6.2f}x {pip_m / eb_m:6.1f}x  {notes}"
        )
        rows.append({"case": case.name, "envbuild": eb_m, "uv": uv_m, "pip": pip_m, "notes": notes})
    ok = [r for r in rows if not any(c.conflict for c in selected if c.name == r["case"])]
    if ok:
        overhead = statistics.median(r["envbuild"] / r["uv"] - 1 for r in ok)
        speedup = statistics.median(r["pip"] / r["envbuild"] for r in ok)
        print(
            f"satisfiable cases: median envbuild overhead over raw uv {overhead:+.0%} "
            f"(goal <= +20%); median pip/envbuild {speedup:.1f}x (goal >= 5x)"
        )
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(rows, indent=2))
    return 0


def _names_both(case: Case, eb: str, pip: str) -> str:
    if case.lines is None:
        eb_ok = bool(re.search(r"requirements\.txt:\d", eb)) and "python_env.yaml:" in eb
        pip_ok = "line " in pip and "python" in pip.lower()
        what = "line + target Python"
    else:
        a, b = case.lines
        eb_ok = f"requirements.txt:{a}" in eb and f"requirements.txt:{b}" in eb
        pip_err = pip[pip.find("ERROR") :] if "ERROR" in pip else pip
        pip_ok = f"line {a})" in pip_err and f"line {b})" in pip_err
        what = "both lines"
    return f"names {what}: envbuild {'yes' if eb_ok else 'NO'}, pip {'yes' if pip_ok else 'no'}"


def _pip_version() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()[1] if out.stdout else "?"


if __name__ == "__main__":
    raise SystemExit(main())
