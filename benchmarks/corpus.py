#!/usr/bin/env python3
"""envbuild on every model of the corpus (tests/corpus/manifest.json), default flags.

    python benchmarks/corpus.py                  # `envbuild check` on the whole corpus
    python benchmarks/corpus.py --build          # and `envbuild image` + `envbuild venv`
    python benchmarks/corpus.py --only NAME ...  # some models only
    python benchmarks/corpus.py --json out.json  # the rows as JSON too

Each model folder is given as it is in the corpus (a repository-root variant as its root).
One table: name, flavor, MLflow, Python, what the manifest expects (servable), check's
verdict, then for the image and the venv: the build result, the proof the smoke test made
(matched stored predictions, predicted on a synthesized payload, loaded, ...), whether the
predictions matched the generator's expected_predictions.json, image size and build time;
under it the ratios and totals. A crash or timeout is recorded in its row and the run
goes on. Images are tagged <--tag-prefix>-<n> and removed after their smoke test; venvs go
to a temp folder.

    python benchmarks/corpus.py --build --only A B C --image-only-for A   # a handful
    python benchmarks/corpus.py --build --batching --no-venv   # batched == alone, per image

--batching (issue #16): for each built image whose model batches by default (a row-wise
flavor, envbuild/serve/batching.py) and a stored example, the image
runs with one worker and one prediction slot; thirty-two different requests made from the
stored rows (serving_input_example.json, or input_example.json's pandas split) are sent one at a time, then three times all at once; the row's "batched"
column says whether every concurrent answer equals, byte for byte, the one the same request
got alone, and how many model calls /metrics counted for how many requests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from envbuild.serve.batching import ROW_WISE_LOADERS  # the flavors batched by default

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


def proof(smoke: dict[str, Any] | None, code: int, doc: dict[str, Any] | None) -> tuple[str, str]:
    """What the smoke test proved (smoke.proof), and whether the predictions matched those
    the generator stored (expected_predictions.json): yes, no (EB802 says they differ), or
    - (nothing stored to compare, or no prediction)."""
    message = str(((doc or {}).get("error") or {}).get("message", ""))
    if "predictions differ" in message:
        return "failed: predictions differ", "no"
    if not smoke:
        return ("failed" if code else "-"), "-"
    if not smoke.get("ok"):
        return "failed: " + str(smoke.get("message", ""))[:40], "-"
    return str(smoke.get("proof", "?")), "yes" if smoke.get("compared") else "-"


def build_image_row(
    path: Path, tag: str, keep: bool, batching: Path | None = None
) -> dict[str, Any]:
    """envbuild image on ``path``; ``batching``: the model folder (where MLmodel is, inside
    a repository-root variant) to run the --batching comparison on."""
    t0 = time.monotonic()
    code, doc, err = envbuild("image", str(path), "-t", tag)
    result = (doc or {}).get("result") or {}
    image = result.get("image") or {}
    row: dict[str, Any] = {"image_s": round(time.monotonic() - t0, 1)}
    row["image"] = "ok" if code == 0 else f"exit {code} {_err(doc, err)}"
    row["size_mb"] = round(image["size"] / 1e6) if image.get("size") else None
    row["image_proof"], row["image_match"] = proof(result.get("smoke"), code, doc)
    if batching is not None:
        row["batched"] = "-"
        if code == 0 and batches(batching):
            row.update(guarded("batched", batching_row, batching, tag))
    if image.get("id") and not keep:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    return row


def stored_payload(path: Path) -> dict[str, Any] | None:
    """The stored request: serving_input_example.json, or (MLflow before 2.12 wrote none)
    input_example.json's pandas split as a dataframe_split request."""
    serving = path / "serving_input_example.json"
    if serving.is_file():
        doc: dict[str, Any] = json.loads(serving.read_text(encoding="utf-8"))
        return doc
    example = path / "input_example.json"
    if example.is_file():
        split = json.loads(example.read_text(encoding="utf-8"))
        if isinstance(split, dict) and {"columns", "data"} <= set(split):
            return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
    return None


def batches(path: Path) -> bool:
    mlmodel = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
    loader = ((mlmodel.get("flavors") or {}).get("python_function") or {}).get("loader_module")
    return loader in ROW_WISE_LOADERS and stored_payload(path) is not None


def request_bodies(payload: dict[str, Any]) -> list[bytes]:
    """Thirty-two different requests: rotations and repeats of the stored rows, in the
    stored payload's own form."""
    key = next(k for k in ("dataframe_split", "dataframe_records", "inputs", "instances")
               if k in payload)  # fmt: skip
    split = payload[key] if key == "dataframe_split" else None
    rows = split["data"] if split else payload[key]
    bodies = []
    for i in range(32):
        chosen = [rows[(i + j) % len(rows)] for j in range(1 + i % len(rows))]
        value: Any = {"columns": split["columns"], "data": chosen} if split else chosen
        bodies.append(json.dumps({key: value}).encode())
    return bodies


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return bytes(r.read())


def _post(url: str, body: bytes) -> bytes:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return bytes(r.read())


def _batch_counters(base: str) -> tuple[float, float]:
    calls = requests = 0.0
    for line in _get(base + "/metrics").decode().splitlines():
        if line.startswith("envbuild_batch_requests_count "):
            calls = float(line.split()[1])
        elif line.startswith("envbuild_batch_requests_sum "):
            requests = float(line.split()[1])
    return calls, requests


def batching_row(path: Path, tag: str) -> dict[str, Any]:
    """Concurrent answers against answers alone in the built image (see --batching)."""
    payload = stored_payload(path)
    assert payload is not None
    bodies = request_bodies(payload)
    run = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8080", "-e", "ENVBUILD_WORKERS=1",
         "-e", "ENVBUILD_THREADS=1", "-e", "ENVBUILD_ACCESS_LOG=0", tag],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    container = run.stdout.strip()
    try:
        port = subprocess.run(["docker", "port", container, "8080/tcp"], capture_output=True,
                              text=True, check=True).stdout.split(":")[-1].strip()  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(base + "/ping")
                break
            except OSError:
                if time.monotonic() > deadline:
                    return {"batched": "not ready in 180 s"}
                time.sleep(0.2)
        url = base + "/invocations"
        alone = [_post(url, b) for b in bodies]
        before = _batch_counters(base)
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            together = [list(pool.map(lambda b: _post(url, b), bodies)) for _ in range(3)]
        after = _batch_counters(base)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    calls, requests = after[0] - before[0], after[1] - before[1]
    same = all(t == alone for t in together)
    return {"batched": f"{'equal' if same else 'DIFFER'} ({requests:g} in {calls:g} calls)"}


def build_venv_row(path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="envbuild-corpus-venv-") as tmp:
        t0 = time.monotonic()
        code, doc, err = envbuild("venv", str(path), "--path", str(Path(tmp) / "venv"))
        result = (doc or {}).get("result") or {}
        row: dict[str, Any] = {"venv_s": round(time.monotonic() - t0, 1)}
        row["venv"] = "ok" if code == 0 else f"exit {code} {_err(doc, err)}"
        row["venv_proof"], row["venv_match"] = proof(result.get("smoke"), code, doc)
    return row


def guarded(what: str, fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)``, or the crash recorded in the row: the run goes on."""
    try:
        row: dict[str, Any] = fn(*args)
    except Exception as exc:  # a benchmark records what broke and continues
        return {what: f"crash: {type(exc).__name__}: {exc}"[:70]}
    return row


def _err(doc: dict[str, Any] | None, stderr: str) -> str:
    if doc:
        if doc.get("error"):
            return f"{doc['error'].get('code', '')} {doc['error'].get('message', '')}"[:90]
        bad = _codes(doc.get("findings", []), "error", "unsafe")
        if bad:
            return ",".join(bad)
    return stderr[:60]


IMAGE_COLS = ["image", "image_proof", "image_match", "size_mb", "image_s"]
VENV_COLS = ["venv", "venv_proof", "venv_match", "venv_s"]


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines.append("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        lines.append("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def totals(rows: list[dict[str, Any]], built: list[str]) -> list[str]:
    """The ratios under the table: check, each build, proofs, matches, expectations."""
    n = len(rows)
    out = [f"check ok: {sum(r['check'].startswith('ok') for r in rows)}/{n}"]
    for kind in built:
        done = [r for r in rows if kind in r]
        if not done:
            continue
        ok = [r for r in done if r[kind] == "ok"]
        proofs: dict[str, int] = {}
        for r in ok:
            proofs[r[f"{kind}_proof"]] = proofs.get(r[f"{kind}_proof"], 0) + 1
        stored = [r for r in done if r["has_example"]]
        matched = sum(r.get(f"{kind}_match") == "yes" for r in stored)
        # what the manifest says a correct tool achieves: servable builds, the rest fail
        agree = sum((r[kind] == "ok") == (r["servable"] == "yes") for r in done)
        seconds = sum(float(r.get(f"{kind}_s") or 0) for r in done)
        out.append(
            f"{kind}: built and proven {len(ok)}/{len(done)}; proofs "
            + (", ".join(f"{p} {c}" for p, c in sorted(proofs.items())) or "none")
            + f"; predictions match {matched}/{len(stored)} with stored predictions"
            + f"; as the manifest expects {agree}/{len(done)}; {seconds:.0f}s in all"
        )
    sizes = [r["size_mb"] for r in rows if r.get("size_mb")]
    if sizes:
        out.append(f"image size: median {sorted(sizes)[len(sizes) // 2]} MB, max {max(sizes)} MB")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", action="store_true", help="also envbuild image and envbuild venv")
    ap.add_argument("--only", nargs="+", help="model names from the manifest")
    ap.add_argument(
        "--image-only-for",
        nargs="+",
        metavar="NAME",
        help="with --build: build images for these models only (venvs for all)",
    )
    ap.add_argument("--no-image", action="store_true", help="with --build: venvs only")
    ap.add_argument("--no-venv", action="store_true", help="with --build: images only")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="models checked at once")
    ap.add_argument("--tag-prefix", default="envbuild-corpus")
    ap.add_argument("--keep", action="store_true", help="keep the images")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument(
        "--batching", action="store_true", help="with --build: batched == alone in each image"
    )
    opts = ap.parse_args()
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))["models"]
    entries = [e for e in manifest if not opts.only or e["name"] in opts.only]
    unknown = sorted(set(opts.only or ()) - {e["name"] for e in entries})
    if unknown:
        ap.error(f"not in the manifest: {', '.join(unknown)}")
    dirs = {e["name"]: CORPUS / "models" / e["name"] for e in entries}
    started = time.monotonic()
    verdicts = check_all(dirs, opts.jobs)
    rows: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        name = e["name"]
        row: dict[str, Any] = {
            "name": name,
            "flavor": e["flavor"],
            "mlflow": e["mlflow_version"],
            "python": e["python"],
            "servable": "yes" if e["servable"] else "no",
            "has_example": e["has_input_example"],
            "check": verdicts[name],
        }
        if opts.build:
            images = not opts.no_image and (not opts.image_only_for or name in opts.image_only_for)
            if images:
                tag = f"{opts.tag_prefix}-{i}"
                row.update(
                    guarded(
                        "image",
                        build_image_row,
                        dirs[name],
                        tag,
                        opts.keep,
                        dirs[name] / e["model_dir"] if opts.batching else None,
                    )
                )
            if not opts.no_venv:
                row.update(guarded("venv", build_venv_row, dirs[name]))
            said = ", ".join(f"{k} {row[k]}" for k in ("image", "batched", "venv") if k in row)
            print(f"[{i + 1}/{len(entries)}] {name}: {said}", file=sys.stderr, flush=True)
        rows.append(row)
    cols = ["name", "flavor", "mlflow", "python", "servable", "check"]
    built = []
    if opts.build:
        built = [k for k in ("image", "venv") if any(k in r for r in rows)]
        cols += (IMAGE_COLS if "image" in built else []) + (VENV_COLS if "venv" in built else [])
        cols += ["batched"] if opts.batching else []
    print(table(rows, cols))
    print()
    print("\n".join(totals(rows, built)))
    if opts.batching:
        tried = [r["batched"] for r in rows if r.get("batched", "-") != "-"]
        equal = sum(b.startswith("equal") for b in tried)
        print(f"batched == alone: {equal}/{len(tried)} images whose model batches by default")
    print(f"{len(rows)} models in {time.monotonic() - started:.0f}s")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
