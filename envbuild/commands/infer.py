"""envbuild infer MODEL"""

from __future__ import annotations

import sys
from typing import Any

import click

from envbuild._paths import inside
from envbuild.cli import EXIT_CODES_HELP, common, emit_findings, exit_for, main
from envbuild.findings import Finding, Location
from envbuild.infer import Inference, check_drift, infer, merge_existing, run_trace
from envbuild.installed import start_inspect
from envbuild.model import ModelFolder, read_model
from envbuild.options import canonical_command
from envbuild.output import dumps, envelope, header, write_atomic
from envbuild.source import ModelSource, model_argument
from envbuild.spec import render_conda_yaml, render_python_env, render_requirements


def _targets(folder: ModelFolder) -> dict[str, str]:
    """kind -> file name inside the folder, as the MLmodel names them."""
    pyfunc = folder.mlmodel.pyfunc
    conda = (pyfunc.env_conda if pyfunc else None) or "conda.yaml"
    venv = (pyfunc.env_virtualenv if pyfunc else None) or "python_env.yaml"
    return {"conda": conda, "virtualenv": venv, "requirements": "requirements.txt"}


def _render(inf: Inference, folder: ModelFolder, *, force: bool, command: str) -> dict[str, str]:
    spec = inf.spec if force else merge_existing(inf.spec, folder)
    names = _targets(folder)
    head = header(command)
    return {
        names["conda"]: render_conda_yaml(spec, head),
        names["virtualenv"]: render_python_env(spec, head, requirements_file="requirements.txt"),
        names["requirements"]: render_requirements(spec, head),
    }


def _text(inf: Inference, folder: ModelFolder) -> list[str]:
    lines = [
        f"model         {folder.path}",
        f"python        {inf.spec.python.version if inf.spec.python else '(unknown)'}"
        f"  ({inf.env.executable})",
        "requirements",
    ]
    width = max([len(n.requirement.raw) for n in inf.kept if n.requirement] + [20])
    for n in inf.kept:
        if n.requirement is None:
            continue
        reasons = n.reasons() or ("(no reason recorded)",)
        lines.append(f"  {n.requirement.raw:<{width}}  {reasons[0]}")
        lines.extend(f"  {'':<{width}}  {r}" for r in reasons[1:])
    for o in inf.spec.options:
        lines.append(f"  {o.option} {o.value}")
    if inf.pruned:
        lines.append("pruned (required by a kept package; --no-prune keeps them)")
        for n in inf.pruned:
            lines.append(f"  {n.name:<{width}}  required by {', '.join(n.implied_by)}")
    return lines


def _explain_text(doc: dict[str, Any]) -> list[str]:
    head = f"{doc['name']}: {doc['status']}"
    if doc["requirement"]:
        head += f" as {doc['requirement']}"
    return [head, *(f"  {w}" for w in doc["why"])]


@main.command("infer", epilog=EXIT_CODES_HELP)
@click.option(
    "--python",
    "python",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Inspect this interpreter's environment (the one the model was trained in) "
    "instead of the one envbuild runs in.",
)
@click.option("--dry-run", is_flag=True, help="Print the files instead of writing them.")
@click.option(
    "--check",
    is_flag=True,
    help="Compare with the files in MODEL; exit 1 on a missing or extra package, version "
    "drift, a different Python or a missing index option. Writes nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the files entirely (by default option lines you wrote, such as index "
    "URLs, and conda channels and packages are kept).",
)
@click.option(
    "--no-prune",
    is_flag=True,
    help="Keep packages that another kept package already requires.",
)
@click.option("--explain", "explain", metavar="NAME", help="Say why NAME is (or is not) required.")
@click.option(
    "--trace",
    is_flag=True,
    help="EXECUTES THE MODEL: load it with mlflow.pyfunc in a subprocess of the inspected "
    "interpreter, predict on its input example, and merge the modules it imported "
    "(marked as traced).",
)
@common
@model_argument
def infer_command(
    model: ModelSource,
    python: str | None,
    dry_run: bool,
    check: bool,
    force: bool,
    no_prune: bool,
    explain: str | None,
    trace: bool,
    fmt: str,
    command: str,
) -> None:
    """Infer the environment MODEL needs from the training environment and write its
    conda.yaml, python_env.yaml and requirements.txt, every requirement with the reason it
    is there.

    Nothing is unpickled or imported: pickles are read by their opcodes and code by its
    syntax tree, unless --trace is given. Existing requirement lines are replaced; option
    lines (index URLs, find-links) are kept unless --force."""
    if not (check or dry_run or explain is not None):
        model.require_local(
            "writing the environment files", hint="use --check or --dry-run with a URI"
        )
    pending = start_inspect(python)  # runs while the model is read and scanned
    folder = read_model(model.path)
    traced = run_trace(python or sys.executable, folder.path) if trace else None
    inf = infer(folder, pending, prune=not no_prune, trace=traced)
    findings: list[Finding] = [*folder.findings, *inf.findings]
    result: dict[str, Any] = {
        "model": str(folder.path),
        "source": model.provenance(),
        **inf.to_json(),
    }
    lines: list[str] = []
    invocation = canonical_command(
        command, model.uri, ("--python", python), ("--no-prune", no_prune), ("--trace", trace)
    )

    if explain is not None:
        doc = inf.explain(explain)
        result["explain"] = doc
        lines = _explain_text(doc)
        code = 0
    elif check:
        drift = check_drift(inf, folder)
        findings.extend(drift)
        result["check"] = {"ok": not drift, "differences": [f.to_json() for f in drift]}
        lines = _text(inf, folder)
        lines.append(
            "check: the environment files match"
            if not drift
            else f"check: {len(drift)} difference(s) with the environment files"
        )
        code = exit_for(findings)
    else:
        files = _render(inf, folder, force=force, command=invocation)
        result["files"] = files
        lines = _text(inf, folder)
        if dry_run:
            result["written"] = []
            lines.append("dry run: nothing written")
            for name, text in files.items():
                lines.append(f"==> {name} <==")
                lines.extend(text.rstrip("\n").splitlines())
        else:
            written = []
            for name, text in files.items():
                target = inside(folder.path, name, location=Location(file=name))
                write_atomic(target, text)
                written.append(name)
            result["written"] = written
            lines.append("wrote " + ", ".join(written))
        code = exit_for(findings)

    if fmt == "json":
        click.echo(
            dumps(envelope(command, result=result, findings=findings, exit_code=code)), nl=False
        )
    else:
        click.echo("\n".join(lines))
        emit_findings(findings)
    sys.exit(code)
