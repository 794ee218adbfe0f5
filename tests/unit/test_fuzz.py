"""Random YAML and random bytes fed to every reader: an EnvbuildError or a result, never
an uncaught exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envbuild.errors import EnvbuildError
from envbuild.findings import Location
from envbuild.read import (
    parse_line,
    read_conda_yaml,
    read_model,
    read_python_env,
    read_requirements,
    read_workspace_env,
)

FILES = ("MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt", "input_example.json")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
yaml_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12)
            | st.sampled_from(
                [
                    "flavors",
                    "python_function",
                    "env",
                    "conda",
                    "virtualenv",
                    "loader_module",
                    "python_version",
                    "data",
                    "signature",
                    "inputs",
                    "params",
                    "artifacts",
                    "saved_input_example_info",
                    "artifact_path",
                    "dependencies",
                    "pip",
                    "python",
                    "build_dependencies",
                    "channels",
                    "image",
                    "conda_file",
                    "build",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read_all(folder: Path) -> None:
    for reader in (
        lambda: read_model(folder),
        lambda: read_conda_yaml(folder, "conda.yaml"),
        lambda: read_python_env(folder, "python_env.yaml"),
        lambda: read_requirements(folder, "requirements.txt"),
        lambda: read_workspace_env(folder / "conda.yaml"),
    ):
        try:
            reader()
        except EnvbuildError as exc:
            assert str(exc)
            assert all(p.message for p in exc.problems)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FILES), yaml_values, min_size=1))
def test_random_yaml(files: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, value in files.items():
            (folder / name).write_text(yaml.safe_dump(value))
        _read_all(folder)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FILES), st.binary(max_size=300), min_size=1))
def test_random_bytes(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, value in files.items():
            (folder / name).write_bytes(value)
        _read_all(folder)


@SETTINGS
@given(st.text(max_size=80))
def test_random_requirement_lines(line: str) -> None:
    parsed = parse_line(line, Location(file="requirements.txt", line=1))
    assert (parsed.requirement, parsed.option, parsed.problem).count(None) >= 2


@SETTINGS
@given(yaml_values)
def test_random_mlmodel_around_a_real_flavor(extra: object) -> None:
    doc = {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "python_version": "3.11.7",
                "env": extra,
            }
        },
        "signature": {"inputs": extra, "params": extra},
        "saved_input_example_info": extra,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "MLmodel").write_text(yaml.safe_dump(doc))
        _read_all(folder)
