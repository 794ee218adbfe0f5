"""Writers: EnvSpec -> conda.yaml, python_env.yaml, requirements.txt (text; callers
write the files)."""

from __future__ import annotations

from typing import Any

from envbuild.read.env import EnvSpec, PipOption


def _option_line(option: PipOption) -> str:
    return f"{option.option} {option.value}" if option.value else option.option


def render_requirements(spec: EnvSpec, header: str, *, reasons: bool = True) -> str:
    """requirements.txt: the header, option lines, then one requirement per line, each
    followed by ``# via`` comment lines naming why it is there (pip-tools style)."""
    lines = [header.rstrip("\n")]
    lines.extend(_option_line(o) for o in spec.options)
    for req in spec.requirements:
        lines.append(req.raw)
        if reasons:
            lines.extend(f"    # via {r}" for r in req.reasons)
    return "\n".join(lines) + "\n"


def _yaml_doc(header: str, data: dict[str, Any]) -> str:
    import yaml

    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)
    return header.rstrip("\n") + "\n" + body


def render_python_env(
    spec: EnvSpec, header: str, *, requirements_file: str | None = "requirements.txt"
) -> str:
    """python_env.yaml (MLflow's virtualenv environment file). With ``requirements_file``
    its dependencies are ``-r <file>`` as MLflow writes them; otherwise inline."""
    deps = (
        [f"-r {requirements_file}"]
        if requirements_file
        else [*(_option_line(o) for o in spec.options), *(r.raw for r in spec.requirements)]
    )
    data: dict[str, Any] = {}
    if spec.python is not None:
        data["python"] = spec.python.version
    data["build_dependencies"] = [r.raw for r in spec.build_dependencies]
    data["dependencies"] = deps
    return _yaml_doc(header, data)


def render_conda_yaml(spec: EnvSpec, header: str) -> str:
    """conda.yaml: channels, python and pip from conda, the other conda packages, then the
    pip requirements (with their option lines) in the ``pip:`` section."""
    deps: list[Any] = []
    if spec.python is not None:
        deps.append(f"python={spec.python.version}")
    pip_pin = next(
        (r.pinned_version for r in spec.build_dependencies if r.name == "pip" and r.pinned_version),
        None,
    )
    deps.append(f"pip<={pip_pin}" if pip_pin else "pip")
    deps.extend(c.raw for c in spec.conda if c.name not in ("python", "pip"))
    deps.append(
        {"pip": [*(_option_line(o) for o in spec.options), *(r.raw for r in spec.requirements)]}
    )
    data: dict[str, Any] = {
        "name": spec.name or "mlflow-env",
        "channels": list(spec.channels) or ["conda-forge"],
        "dependencies": deps,
    }
    return _yaml_doc(header, data)
