#!/usr/bin/env python3
"""envbuild on every model of the corpus (tests/corpus/manifest.json), default flags.

    python benchmarks/corpus.py                  # `envbuild check` on the whole corpus
    python benchmarks/corpus.py --build          # and `envbuild image` + `envbuild venv`
    python benchmarks/corpus.py --only NAME ...  # some models only
    python benchmarks/corpus.py --json out.json  # the rows as JSON too

Each model folder is given as it is in the corpus (a repository-root variant as its root).
One table: name, flavor, MLflow, Python, what the manifest expects (servable), check's
verdict, the image build and venv results, the proof the smoke test made, whether the
predictions matched expected_predictions.json, image size and build time. Images are
tagged <--tag-prefix>-<n> and removed after their smoke test; venvs go to a temp folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


def envbuild(*args: str, timeout: float = 1800) -> tuple[int, dict[str, Any] | None, str]:
    """Exit code, parsed JSON envelope (None if stdout was not JSON) and stderr's tail."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "envbuild", *args, "--format", "json"],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return -1, None, f"timeout after {timeout:.0f}s"
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = None
    tail = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
    return proc.returncode, doc, tail[0] if tail else ""


def _codes(findings: list[dict[str, Any]], *severities: str) -> list[str]:
    return sorted({f["code"] for f in findings if f.get("severity") in severities})


def verdict(model: dict[str, Any]) -> str:
    findings = model.get("findings", [])
    if model.get("input_error"):
        return "input error " + ",".join(_codes(findings, "error", "unsafe"))
    bad = _codes(findings, "error", "unsafe")
    if bad or not model.get("ok", False):
        return "FAIL " + ",".join(bad)
    warn = _codes(findings, "warning")
    return "ok" + (f" (warn {','.join(warn)})" if warn else "")


def check_all(dirs: dict[str, Path], jobs: int) -> dict[str, str]:
    _, doc, _ = envbuild("check", *map(str, dirs.values()), "-j", str(jobs), "-q")
    out: dict[str, str] = {}
    by_path = {str(p): n for n, p in dirs.items()}
    if doc and doc.get("result") and doc["result"].get("models"):
        for m in doc["result"]["models"]:
            name = by_path.get(m["model"]) or Path(m["model"]).name
            out[name] = verdict(m)
    for name in dirs:
        if name not in out:
            # one bad folder can stop the whole run: check it alone
            c, d, e = envbuild("check", str(dirs[name]), "-q")
            models = (d or {}).get("result") or {}
            if models.get("models"):
                out[name] = verdict(models["models"][0])
            else:
                error = (d or {}).get("error") or {}
                out[name] = f"exit {c}: {error.get('code', '')} {error.get('message', e)}"[:70]
    return out


def proof(smoke: dict[str, Any] | None) -> tuple[str, str]:
    """What the smoke test proved, and whether predictions matched the stored ones."""
    if not smoke:
        return "-", "-"
    if smoke.get("proof"):
        p = str(smoke["proof"])
    elif smoke.get("compared"):
        p = "matched stored predictions"
    elif smoke.get("input"):
        p = "predicted on the example"
    else:
        p = "none (no example)"
    if not smoke.get("ok"):
        return "failed: " + str(smoke.get("message", ""))[:40], "no"
    return p, "yes" if smoke.get("compared") else "-"


def build_one(name: str, path: Path, tag: str, keep: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    t0 = time.monotonic()
    code, doc, err = envbuild("image", str(path), "-t", tag)
    row["build_s"] = round(time.monotonic() - t0, 1)
    result = (doc or {}).get("result") or {}
    image = result.get("image") or {}
    row["image"] = "ok" if code == 0 else f"exit {code} {_err(doc, err)}"
    row["size_mb"] = round(image["size"] / 1e6) if image.get("size") else None
    row["proof"], row["match"] = proof(result.get("smoke"))
    if image.get("id") and not keep:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    with tempfile.TemporaryDirectory(prefix="envbuild-corpus-venv-") as tmp:
        code, doc, err = envbuild("venv", str(path), "--path", str(Path(tmp) / "venv"))
        vres = (doc or {}).get("result") or {}
        row["venv"] = "ok" if code == 0 else f"exit {code} {_err(doc, err)}"
        vproof, vmatch = proof(vres.get("smoke"))
        row["venv_proof"], row["venv_match"] = vproof, vmatch
    return row


def _err(doc: dict[str, Any] | None, stderr: str) -> str:
    if doc:
        if doc.get("error"):
            return f"{doc['error'].get('code', '')} {doc['error'].get('message', '')}"[:60]
        bad = _codes(doc.get("findings", []), "error", "unsafe")
        if bad:
            return ",".join(bad)
    return stderr[:60]


def table(rows: list[dict[str, Any]], build: bool) -> str:
    cols = ["name", "flavor", "mlflow", "python", "servable", "check"]
    if build:
        cols += ["image", "proof", "match", "size_mb", "build_s", "venv", "venv_proof"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines.append("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        lines.append("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", action="store_true", help="also envbuild image and envbuild venv")
    ap.add_argument("--only", nargs="+", help="model names from the manifest")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="models checked at once")
    ap.add_argument("--tag-prefix", default="envbuild-corpus")
    ap.add_argument("--keep", action="store_true", help="keep the images")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    opts = ap.parse_args()
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))["models"]
    entries = [e for e in manifest if not opts.only or e["name"] in opts.only]
    dirs = {e["name"]: CORPUS / "models" / e["name"] for e in entries}
    started = time.monotonic()
    verdicts = check_all(dirs, opts.jobs)
    rows: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        row = {
            "name": e["name"],
            "flavor": e["flavor"],
            "mlflow": e["mlflow_version"],
            "python": e["python"],
            "servable": "yes" if e["servable"] else "no",
            "check": verdicts[e["name"]],
        }
        if opts.build:
            row.update(build_one(e["name"], dirs[e["name"]], f"{opts.tag_prefix}-{i}", opts.keep))
            print(f"[{i + 1}/{len(entries)}] {e['name']}: {row['image']}", file=sys.stderr)
        rows.append(row)
    print(table(rows, opts.build))
    ok = sum(r["check"].startswith("ok") for r in rows)
    print(f"\n{len(rows)} models, check ok on {ok}, {time.monotonic() - started:.0f}s")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
