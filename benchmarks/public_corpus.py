"""Run envbuild on public MLflow model folders, as their authors left them (issue 14).

    python benchmarks/public_corpus.py [ROOT] [--only NAME ...] [--build [--max-build N]]
                                        [--tag-prefix envbuild-bench-] [--keep] [--json FILE]

ROOT (default /work/corpus-public) holds one model folder per subdirectory; where they came
from is recorded in benchmarks/public_corpus.json (the folders themselves are not kept in
the project). For each folder: `envbuild show` and `envbuild check` (default flags,
`--format json`), and with --build also `envbuild image` and `envbuild venv` with default
flags. Every command is a fresh process: a crash, a hang (timeout) or output that is not a
JSON envelope is recorded as `crash` with the last line of stderr, and the loop goes on.
Images built here are removed afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ROOT = Path("/work/corpus-public")
ORIGINS = Path(__file__).resolve().parent / "public_corpus.json"
ENVBUILD = [sys.executable, "-m", "envbuild"]


@dataclass
class Run:
    """One command's outcome: exit code (None when it crashed or timed out), envelope, tail."""

    code: int | None
    envelope: dict[str, Any] | None
    tail: str
    seconds: float

    @property
    def crashed(self) -> bool:
        return self.envelope is None


@dataclass
class Row:
    name: str
    flavor: str = "?"
    mlflow: str = "?"
    python: str = "?"
    show: str = "-"
    check: str = "-"
    image: str = "-"
    venv: str = "-"
    proof: str = "-"
    size: str = "-"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run(args: list[str], timeout: float) -> Run:
    start = time.monotonic()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
        return Run(None, None, f"timeout after {timeout:.0f}s {last_line(err)}".strip(), timeout)
    seconds = time.monotonic() - start
    envelope: dict[str, Any] | None = None
    try:
        doc = json.loads(proc.stdout)
        if isinstance(doc, dict) and "exit_code" in doc:
            envelope = doc
    except ValueError:
        pass
    return Run(proc.returncode, envelope, last_line(proc.stderr), seconds)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def crash(r: Run) -> str:
    return f"crash (exit {r.code}): {r.tail}" if r.code is not None else f"crash: {r.tail}"


def all_findings(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelope's findings and, for `check`, each model's."""
    found: list[dict[str, Any]] = list(envelope.get("findings") or [])
    result = envelope.get("result")
    if isinstance(result, dict):
        for model in result.get("models") or []:
            found.extend(model.get("findings") or [])
    return found


def error_codes(envelope: dict[str, Any]) -> list[str]:
    """Codes of the findings that fail (error/unsafe), and of the envelope's error."""
    codes: list[str] = []
    found = all_findings(envelope)
    for f in found:
        if f.get("severity") in ("error", "unsafe") and f.get("code") not in codes:
            codes.append(str(f.get("code")))
    err = envelope.get("error")
    if isinstance(err, dict) and err.get("code") and err["code"] not in codes:
        codes.append(str(err["code"]))
    return codes


def first_error(envelope: dict[str, Any]) -> str:
    err = envelope.get("error")
    if isinstance(err, dict) and err.get("message"):
        first = str(err["message"]).splitlines()[0][:160]
        # a failed smoke test carries the container's log tail in the hint: its last
        # line is the cause
        hint = [ln.strip() for ln in str(err.get("hint") or "").splitlines() if ln.strip()]
        return f"{first} | {hint[-1][:240]}" if len(hint) > 1 else first
    found = all_findings(envelope)
    for f in found:
        if f.get("severity") in ("error", "unsafe"):
            return f"{f.get('code')} {str(f.get('message', '')).splitlines()[0]}"[:160]
    return ""


def from_mlmodel(folder: Path, row: Row) -> None:
    """Fallback when `show` gives nothing: the facts straight from MLmodel."""
    try:
        doc = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return
    flavors = [f for f in (doc.get("flavors") or {}) if f != "python_function"]
    row.flavor = ",".join(flavors) or "python_function"
    row.mlflow = str(doc.get("mlflow_version") or "-")
    pf = (doc.get("flavors") or {}).get("python_function") or {}
    row.python = str(pf.get("python_version") or "-")


def from_show(result: dict[str, Any], row: Row) -> None:
    flavors = [f["name"] for f in result.get("flavors") or [] if f["name"] != "python_function"]
    row.flavor = ",".join(flavors) or "python_function"
    row.mlflow = str((result.get("mlmodel") or {}).get("mlflow_version") or "-")
    row.python = str(result.get("python_version") or "-")


def proof_of(smoke: dict[str, Any] | None) -> str:
    if not smoke:
        return "none"
    if smoke.get("proof"):
        return str(smoke["proof"])
    if smoke.get("compared"):
        return "matched"
    if smoke.get("input"):
        return "predicted"
    return "no-prediction"


def verdict(r: Run) -> str:
    if r.crashed:
        return crash(r)
    assert r.envelope is not None
    if r.envelope.get("ok"):
        return "ok"
    codes = error_codes(r.envelope)
    return "FAIL " + ",".join(codes) if codes else f"FAIL (exit {r.code})"


def model_folders(root: Path, only: list[str]) -> list[Path]:
    found = sorted(p for p in root.iterdir() if (p / "MLmodel").is_file())
    return [p for p in found if not only or p.name in only]


def bench(folder: Path, args: argparse.Namespace, build: bool) -> Row:
    row = Row(folder.name)
    start = time.monotonic()
    shown = run([*ENVBUILD, "show", "--format", "json", str(folder)], args.timeout)
    row.show = str(shown.code) if not shown.crashed else crash(shown)
    result = (shown.envelope or {}).get("result")
    if isinstance(result, dict) and result.get("flavors") is not None:
        from_show(result, row)
    else:
        from_mlmodel(folder, row)
    checked = run([*ENVBUILD, "check", "--format", "json", str(folder)], args.timeout)
    row.check = verdict(checked)
    if checked.envelope and not checked.envelope.get("ok"):
        row.notes.append(f"check: {first_error(checked.envelope) or checked.tail}")
    if build:
        tag = f"{args.tag_prefix}{folder.name.lower()}"
        image = run([*ENVBUILD, "image", "--format", "json", "-t", tag, str(folder)], 3600)
        row.image = verdict(image)
        if image.envelope:
            res = image.envelope.get("result") or {}
            if isinstance(res, dict):
                if res.get("image"):
                    row.size = f"{res['image']['size'] / 1e6:.0f}MB"
                if res.get("smoke") or res.get("image"):
                    row.proof = "image:" + proof_of(res.get("smoke"))
            if not image.envelope.get("ok"):
                row.notes.append(f"image: {first_error(image.envelope) or image.tail}")
        elif image.crashed:
            row.notes.append(f"image: {image.tail}")
        inspected = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True
        )
        if inspected.returncode == 0 and row.size == "-":
            # a smoke failure leaves the built image but no size in the envelope
            row.size = f"{int(inspected.stdout.strip()) / 1e6:.0f}MB"
        if not args.keep:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
        with tempfile.TemporaryDirectory(prefix="envbuild-bench-venv-") as tmp:
            venv = run(
                [*ENVBUILD, "venv", "--format", "json", "--path", f"{tmp}/v", str(folder)], 3600
            )
        row.venv = verdict(venv)
        if venv.envelope:
            res = venv.envelope.get("result")
            if isinstance(res, dict):
                row.proof += " venv:" + proof_of(res.get("smoke"))
            if not venv.envelope.get("ok"):
                row.notes.append(f"venv: {first_error(venv.envelope) or venv.tail}")
        elif venv.crashed:
            row.notes.append(f"venv: {venv.tail}")
    row.seconds = time.monotonic() - start
    return row


COLUMNS = ("name", "flavor", "MLflow", "Python", "show", "check", "build", "proof", "size", "s")


def cells(row: Row, build: bool) -> list[str]:
    built = f"image {row.image}; venv {row.venv}" if build else "-"
    return [
        row.name,
        row.flavor,
        row.mlflow,
        row.python,
        row.show,
        row.check,
        built,
        row.proof,
        row.size,
        f"{row.seconds:.0f}",
    ]


def table(rows: list[Row], build: bool) -> str:
    data = [list(COLUMNS), *(cells(r, build) for r in rows)]
    widths = [max(len(line[i]) for line in data) for i in range(len(COLUMNS))]
    out = []
    for n, line in enumerate(data):
        out.append(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--only", nargs="*", default=[], help="folder names to run")
    parser.add_argument("--build", action="store_true", help="also envbuild image and venv")
    parser.add_argument("--max-build", type=int, default=0, help="build at most N (0: all)")
    parser.add_argument("--tag-prefix", default="envbuild-bench-")
    parser.add_argument("--keep", action="store_true", help="keep the images built")
    parser.add_argument("--timeout", type=float, default=600, help="per show/check, seconds")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    if not args.root.is_dir():
        print(f"{args.root}: not a directory", file=sys.stderr)
        return 2
    if args.build and not args.keep and shutil.which("docker") is None:
        print("--build removes its images with the docker CLI: not on PATH", file=sys.stderr)
        return 3
    folders = model_folders(args.root, args.only)
    rows: list[Row] = []
    for n, folder in enumerate(folders):
        build = args.build and (not args.max_build or n < args.max_build)
        print(f"[{n + 1}/{len(folders)}] {folder.name}", file=sys.stderr, flush=True)
        rows.append(bench(folder, args, build))
    print(table(rows, args.build))
    notes = [(r.name, note) for r in rows for note in r.notes]
    if notes:
        print("\nfirst error lines:")
        for name, note in notes:
            print(f"  {name}: {note}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
