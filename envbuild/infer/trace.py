"""``infer --trace`` (opt-in: it executes the model): load and predict in a sandboxed
subprocess of the training interpreter and report the modules that imported."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from envbuild._adapters import sandbox as _sandbox
from envbuild.errors import FailedError
from envbuild.findings import Code, Severity, table

EB214 = Code(
    "EB214",
    Severity.WARNING,
    "--trace could not load or predict; only what was imported before the failure was merged",
)
CODES: dict[str, str] = table(EB214)


@dataclass(frozen=True, kw_only=True)
class TraceResult:
    modules: tuple[str, ...]
    error: str | None = None
    predicted: bool = False
    sandbox: str | None = None  # what the trace ran under: "bwrap" | "process"


_TRACE_SCRIPT = Path(__file__).parent.parent / "_scripts" / "trace.py"
TRACE_MARKER = "ENVBUILD-TRACE:"


def run_trace(python: str, model: Path, *, timeout: float = 600) -> TraceResult:
    """Load the model with mlflow.pyfunc in a subprocess of ``python`` and predict on its
    input example; return the modules imported beyond ``import mlflow.pyfunc``. This runs
    the model's code: only on the user's request (``--trace``), and in the sandbox
    (envbuild/_adapters/sandbox.py), which reads the interpreter's prefixes and the model."""
    exe = Path(shutil.which(python) or python).absolute()
    model_dir = model.resolve()
    try:
        with _sandbox.Sandbox(
            readable=_sandbox.interpreter_roots(exe), readonly=[model_dir]
        ) as box:
            env = {
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": os.environ.get(
                    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true"
                ),
                "MLFLOW_TRACKING_URI": (box.tmp / "mlruns").as_uri(),
            }
            script = _TRACE_SCRIPT.read_text(encoding="utf-8")
            ran = box.run([str(exe), "-c", script, str(model_dir)], env=env, timeout=timeout)
    except OSError as exc:
        raise FailedError(f"--trace: cannot run {python}: {exc}", code="EB214") from None
    if ran.timed_out:
        raise FailedError(f"--trace: {python} did not finish within {timeout:.0f} s", code="EB214")
    doc = None
    for line in ran.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(TRACE_MARKER):
            doc = json.loads(line[len(TRACE_MARKER) :])
    if not isinstance(doc, dict):
        last = (ran.stderr_tail(1) or ["no output"])[-1]
        return TraceResult(
            modules=(), error=f"the trace did not finish: {last}", sandbox=ran.sandbox
        )
    return TraceResult(
        modules=tuple(sorted(str(m) for m in doc.get("modules") or ())),
        error=doc.get("error"),
        predicted=bool(doc.get("predicted")),
        sandbox=ran.sandbox,
    )
