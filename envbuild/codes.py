"""Every finding and error code, gathered from the stage that emits it: the one table
the README documents (a test keeps the two equal)."""

from __future__ import annotations

import importlib

# The reader's codes (read/, _yaml.py, _paths.py) and check's settings (EB130).
READER: dict[str, str] = {
    "EB100": "the model folder, its MLmodel, or a command-line value is missing or wrong",
    "EB101": "a file is not valid YAML (or not UTF-8 text)",
    "EB102": "a file has the wrong structure (a field of the wrong type, an unknown section)",
    "EB103": "a file the MLmodel or an environment file names is missing",
    "EB104": "a path leaves the model folder (.., an absolute path, a symbolic link)",
    "EB105": "the signature is not valid (inputs, outputs or params)",
    "EB106": "the input example is not valid JSON",
    "EB110": "a requirement line is invalid",
    "EB111": "a remote requirements file (-r URL) is not read",
    "EB112": "a conda match spec is invalid",
    "EB120": "the input example does not match the signature",
    "EB130": "[tool.envbuild] in pyproject.toml is invalid or has an unknown key",
}
GENERIC: dict[str, str] = {
    "EB800": "an operation failed (resolution, build, smoke test)",
    "EB900": "uv, which envbuild depends on, is missing",
}

_MODULES = (
    "envbuild.infer",
    "envbuild.installed",
    "envbuild.contents",
    "envbuild.scan.pickles",
    "envbuild.scan.code",
    "envbuild.resolve",
    "envbuild.render",
    "envbuild._adapters.docker",
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
