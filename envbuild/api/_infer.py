"""``envbuild infer``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.api._common import ModelLocation, _source
from envbuild.findings import Finding, Location, exit_code_for
from envbuild.infer import Inference
from envbuild.installed import InstalledEnv, start_inspect
from envbuild.output import canonical_command, header, write_atomic
from envbuild.read import ModelFolder, read_model
from envbuild.safety import Verdict, require_safe
from envbuild.sources import ModelSource


@dataclass(frozen=True, kw_only=True)
class InferResult:
    source: ModelSource
    folder: ModelFolder
    inference: Inference
    files: dict[str, str]  # file name -> rendered text (empty with explain/check)
    written: tuple[str, ...]
    dry_run: bool
    explain: dict[str, Any] | None
    drift: tuple[Finding, ...] | None  # with check=True: the differences
    safety: Verdict | None  # with trace=True
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return 0 if self.explain is not None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "model": str(self.folder.path),
            "source": self.source.provenance(),
            **self.inference.to_json(),
        }
        if self.explain is not None:
            doc["explain"] = self.explain
        elif self.drift is not None:
            doc["check"] = {"ok": not self.drift, "differences": [f.to_json() for f in self.drift]}
        else:
            doc["files"] = self.files
            doc["written"] = list(self.written)
        return doc


def _env_targets(folder: ModelFolder) -> dict[str, str]:
    """kind -> file name inside the folder, as the MLmodel names them."""
    pyfunc = folder.mlmodel.pyfunc
    conda = (pyfunc.env_conda if pyfunc else None) or "conda.yaml"
    venv = (pyfunc.env_virtualenv if pyfunc else None) or "python_env.yaml"
    return {"conda": conda, "virtualenv": venv, "requirements": "requirements.txt"}


def infer(
    model: ModelLocation,
    *,
    env_from: str = "auto",
    python: str | None = None,
    dry_run: bool = False,
    check: bool = False,
    force: bool = False,
    prune: bool = True,
    explain: str | None = None,
    trace: bool = False,
    trust_model: bool = False,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> InferResult:
    """Infer the environment ``model`` needs from the training environment (``python``,
    default this interpreter) and write its conda.yaml, python_env.yaml and
    requirements.txt; ``check`` compares instead, ``explain`` says why one package is
    (not) required, ``trace`` loads the model (refused when the scan calls it unsafe)."""
    from envbuild._paths import inside
    from envbuild.infer import check_drift, merge_existing, run_trace
    from envbuild.infer import infer as infer_env
    from envbuild.write import render_conda_yaml, render_python_env, render_requirements

    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    if not (check or dry_run or explain is not None):
        source.require_local(
            "writing the environment files", hint="use --check or --dry-run with a URI"
        )
    pending = start_inspect(python)  # runs while the model is read and scanned
    folder = read_model(source.path, env_from=env_from)
    traced = None
    verdict = None
    env: InstalledEnv | Callable[[], InstalledEnv] = pending
    if trace:
        # --trace loads the model: the static verdict comes first, on the inspected Python.
        env = pending()
        verdict = require_safe(
            folder,
            command="envbuild infer --trace",
            target_python=env.python_version,
            trusted=trust_model,
        )
        traced = run_trace(python or sys.executable, folder.path)
    inf = infer_env(folder, env, prune=prune, trace=traced)
    findings: list[Finding] = [*folder.findings, *inf.findings]
    if verdict is not None:
        findings.extend(verdict.notices)
    files: dict[str, str] = {}
    written: list[str] = []
    drift: tuple[Finding, ...] | None = None
    explained = inf.explain(explain) if explain is not None else None
    if explained is None and check:
        drift = tuple(check_drift(inf, folder))
        findings.extend(drift)
    elif explained is None:
        invocation = canonical_command(
            "envbuild infer",
            source.uri,
            ("--python", python),
            ("--no-prune", not prune),
            ("--trace", trace),
        )
        spec = inf.spec if force else merge_existing(inf.spec, folder)
        names = _env_targets(folder)
        head = header(invocation)
        files = {
            names["conda"]: render_conda_yaml(spec, head),
            names["virtualenv"]: render_python_env(
                spec, head, requirements_file="requirements.txt"
            ),
            names["requirements"]: render_requirements(spec, head),
        }
        if not dry_run:
            for name, text in files.items():
                write_atomic(inside(folder.path, name, location=Location(file=name)), text)
                written.append(name)
    return InferResult(
        source=source,
        folder=folder,
        inference=inf,
        files=files,
        written=tuple(written),
        dry_run=dry_run,
        explain=explained,
        drift=drift,
        safety=verdict,
        findings=tuple(findings),
    )
