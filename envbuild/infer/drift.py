"""``infer --check``: the inferred environment against the files in the model folder
(missing and extra packages, version drift, the Python, needed index options)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier
from packaging.version import InvalidVersion, Version

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.infer.names import MLFLOW, MLFLOW_DISTS
from envbuild.read import ModelFolder, PipOption, ReqKind, Requirement

if TYPE_CHECKING:
    from envbuild.infer import Inference

EB220 = Code(
    "EB220", Severity.ERROR, "--check: a required package is missing from the environment files"
)
EB221 = Code(
    "EB221", Severity.ERROR, "--check: the environment files list a package the model does not need"
)
EB222 = Code(
    "EB222", Severity.ERROR, "--check: a pinned version differs from the installed (inferred) one"
)
EB223 = Code(
    "EB223", Severity.ERROR, "--check: the Python version differs from the inspected interpreter's"
)
EB224 = Code(
    "EB224",
    Severity.ERROR,
    "--check: an index option a requirement needs (e.g. for torch +cpu) is missing",
)
CODES: dict[str, str] = table(EB220, EB221, EB222, EB223, EB224)


def _key(name: str) -> str:
    return MLFLOW if name in MLFLOW_DISTS else name


def check_drift(inference: Inference, folder: ModelFolder) -> list[Finding]:
    """Compare the inferred environment with the files in the folder: missing packages,
    extra ones, version drift, the Python version and needed index options."""
    env = folder.env
    sources: list[tuple[str, Sequence[Requirement], Sequence[PipOption]]] = []
    if env.requirements is not None:
        sources.append(
            (env.requirements.file, env.requirements.requirements, env.requirements.options)
        )
    if env.conda is not None:
        sources.append((env.conda.file, env.conda.pip.requirements, env.conda.pip.options))
    if env.python_env is not None and not (
        env.requirements is not None
        and any(
            r.location.file == env.requirements.file
            for r in env.python_env.dependencies.requirements
        )
    ):
        deps = env.python_env.dependencies
        if deps.requirements:
            sources.append((env.python_env.file, deps.requirements, deps.options))
    inferred = {_key(n.name): n for n in inference.kept}
    known = inferred | {_key(p.name): p for p in inference.pruned}
    out: list[Finding] = []
    if not sources:
        out.append(
            EB220.at(
                Location(),
                "the model folder has no environment files (requirements.txt, "
                "conda.yaml, python_env.yaml)",
                hint="run `envbuild infer MODEL` to write them",
            )
        )
    for file, reqs, opts in sources:
        present: dict[str, Requirement] = {}
        for r in reqs:
            if r.name:
                present.setdefault(_key(r.name), r)
        for key, needed in inferred.items():
            if needed.requirement is None:
                continue
            have = present.get(key)
            if have is None:
                out.append(
                    EB220.at(
                        Location(file=file),
                        f"{file} does not list {needed.requirement.raw} "
                        f"({(needed.reasons() or ('needed',))[0]})",
                        hint="run `envbuild infer MODEL` to rewrite the environment files",
                    )
                )
                continue
            drift = _drift(have, needed.requirement)
            if drift:
                out.append(
                    EB222.at(
                        have.location,
                        f"{have.raw} {drift}; the training environment has "
                        f"{needed.requirement.raw}",
                        hint="run `envbuild infer MODEL` to re-pin, or install that version "
                        "where the model is trained",
                    )
                )
        for key, have in present.items():
            if key in known:
                continue
            out.append(
                EB221.at(
                    have.location,
                    f"{have.raw} is listed but nothing in the model needs it",
                    hint="remove it (`envbuild infer MODEL` rewrites the files), or "
                    "`envbuild infer --explain NAME` to see what was scanned",
                )
            )
        for o in inference.spec.options:
            if all((o.option, o.value) != (x.option, x.value) for x in opts):
                out.append(
                    EB224.at(
                        Location(file=file),
                        f"{file} lacks `{o.option} {o.value}`, which "
                        + ", ".join(
                            n.requirement.raw
                            for n in inference.kept
                            if n.requirement and "+" in n.requirement.raw
                        )
                        + " needs",
                        hint="add the line, or run `envbuild infer MODEL`",
                    )
                )
    python = inference.spec.python.version if inference.spec.python else None
    for pin in env.spec.python_pins:
        if python and not _python_matches(pin.version, python):
            out.append(
                EB223.at(
                    pin.location,
                    f"Python {pin.version} is pinned; the training interpreter is {python}",
                    hint="run `envbuild infer MODEL` to re-pin, or inspect the right "
                    "interpreter with --python",
                )
            )
    return out


def _python_matches(written: str, actual: str) -> bool:
    want = written.rstrip(".*").split(".")
    return actual.split(".")[: len(want)] == want


def _drift(have: Requirement, want: Requirement) -> str | None:
    if have.kind is not ReqKind.NAMED or want.kind is not ReqKind.NAMED:
        return None if have.raw == want.raw else "is a different source"
    want_v = want.pinned_version
    if want_v is None or have.requirement is None:
        return None
    have_v = have.pinned_version
    try:
        if have_v is not None:
            return None if Version(have_v) == Version(want_v) else "differs"
        if not have.requirement.specifier:
            return None  # unpinned: any version is allowed
        return (
            None
            if have.requirement.specifier.contains(want_v, prereleases=True)
            else ("does not allow it")
        )
    except (InvalidVersion, InvalidSpecifier):
        return None if have_v == want_v else "differs"
