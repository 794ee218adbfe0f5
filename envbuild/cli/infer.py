"""envbuild infer MODEL"""

from __future__ import annotations

from typing import Any

import click

from envbuild import api
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    common,
    env_from_option,
    model_argument,
    present,
    trust_model_option,
)
from envbuild.infer import Inference
from envbuild.read import ModelFolder
from envbuild.sources import ModelSource


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
@trust_model_option
@env_from_option
@common
@model_argument
def infer_command(
    model: ModelSource,
    env_from: str | None,
    python: str | None,
    dry_run: bool,
    check: bool,
    force: bool,
    no_prune: bool,
    explain: str | None,
    trace: bool,
    trust_model: bool,
    fmt: str,
    command: str,
) -> None:
    """Infer the environment MODEL needs from the training environment and write its
    conda.yaml, python_env.yaml and requirements.txt, every requirement with the reason it
    is there.

    Nothing is unpickled or imported: pickles are read by their opcodes and code by its
    syntax tree, unless --trace is given. Existing requirement lines are replaced; option
    lines (index URLs, find-links) are kept unless --force."""
    result = api.infer(
        model,
        env_from=env_from or "auto",
        python=python,
        dry_run=dry_run,
        check=check,
        force=force,
        prune=not no_prune,
        explain=explain,
        trace=trace,
        trust_model=trust_model,
    )
    if result.explain is not None:
        lines = _explain_text(result.explain)
    else:
        lines = _text(result.inference, result.folder)
        if result.drift is not None:
            lines.append(
                "check: the environment files match"
                if not result.drift
                else f"check: {len(result.drift)} difference(s) with the environment files"
            )
        elif result.dry_run:
            lines.append("dry run: nothing written")
            for name, text in result.files.items():
                lines.append(f"==> {name} <==")
                lines.extend(text.rstrip("\n").splitlines())
        else:
            lines.append("wrote " + ", ".join(result.written))
    present(result, fmt=fmt, command=command, text="\n".join(lines) + "\n")
