"""Every finding and error code, gathered from the stage that emits it: the one table
the README documents (a test keeps the two equal)."""

from __future__ import annotations

import importlib

from envbuild.findings import Code, Severity, table

# The reader's codes (read/, _yaml.py, _paths.py) and check's settings (EB130).
EB100 = Code(
    "EB100",
    Severity.ERROR,
    "the model folder, its MLmodel, or a command-line value is missing or wrong",
)
EB101 = Code("EB101", Severity.ERROR, "a file is not valid YAML (or not UTF-8 text)")
EB102 = Code(
    "EB102",
    Severity.ERROR,
    "a file has the wrong structure (a field of the wrong type, an unknown section)",
)
EB103 = Code(
    "EB103",
    Severity.ERROR,
    "a file the MLmodel or an environment file names is missing",
    also=(Severity.WARNING,),
)
EB104 = Code(
    "EB104",
    Severity.ERROR,
    "a path leaves the model folder (.., an absolute path, a symbolic link)",
)
EB108 = Code(
    "EB108",
    Severity.WARNING,
    "the model folder has no environment file: the environment is derived from the "
    "MLmodel's flavors and mlflow_version",
)
EB105 = Code("EB105", Severity.ERROR, "the signature is not valid (inputs, outputs or params)")
EB106 = Code("EB106", Severity.ERROR, "the input example is not valid JSON")
EB110 = Code("EB110", Severity.ERROR, "a requirement line is invalid")
EB111 = Code("EB111", Severity.ERROR, "a remote requirements file (-r URL) is not read")
EB112 = Code("EB112", Severity.ERROR, "a conda match spec is invalid")
EB113 = Code(
    "EB113",
    Severity.WARNING,
    "conda.yaml and python_env.yaml/requirements.txt disagree on a requirement; the "
    "finding names the file envbuild follows (--env-from chooses)",
)
EB114 = Code(
    "EB114",
    Severity.WARNING,
    "the folder given holds no MLmodel but exactly one model below it: envbuild reads "
    "that folder, and only it is packaged",
)
EB120 = Code("EB120", Severity.ERROR, "the input example does not match the signature")
EB130 = Code(
    "EB130", Severity.ERROR, "[tool.envbuild] in pyproject.toml is invalid or has an unknown key"
)
READER: dict[str, str] = table(
    EB100,
    EB101,
    EB102,
    EB103,
    EB104,
    EB105,
    EB106,
    EB108,
    EB110,
    EB111,
    EB112,
    EB113,
    EB114,
    EB120,
    EB130,
)
EB800 = Code("EB800", Severity.ERROR, "an operation failed (resolution, build, smoke test)")
EB900 = Code("EB900", Severity.ERROR, "uv, which envbuild depends on, is missing")
GENERIC: dict[str, str] = table(EB800, EB900)

_MODULES = (
    "envbuild.infer",
    "envbuild.installed",
    "envbuild.contents",
    "envbuild.scan.pickles",
    "envbuild.scan.code",
    "envbuild.resolve",
    "envbuild.render",
    "envbuild.credentials",
    "envbuild._adapters.docker",
    "envbuild._adapters.buildkit",
    "envbuild.build",
    "envbuild.sources",
    "envbuild.safety",
)


def all_codes() -> dict[str, str]:
    codes = {**READER, **GENERIC}
    for name in _MODULES:
        codes.update(getattr(importlib.import_module(name), "CODES", {}))
    return dict(sorted(codes.items()))


STAGES = {
    "1": "reader",
    "2": "inferrer",
    "3": "resolver",
    "4": "builder (render)",
    "5": "safety (pickles)",
    "6": "model source (URIs)",
    "8": "failed operation",
    "9": "machine",
}


def markdown_table() -> str:
    lines = ["| code | stage | meaning |", "|---|---|---|"]
    for code, text in all_codes().items():
        lines.append(f"| {code} | {STAGES.get(code[2], '?')} | {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m envbuild.codes: print the README table
    print(markdown_table(), end="")
