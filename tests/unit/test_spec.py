"""Environment file readers: every requirement keeps its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild._redact import redact
from envbuild.errors import InputError, ProblemsError
from envbuild.findings import Location, Severity
from envbuild.read import (
    ReqKind,
    parse_conda_spec,
    parse_line,
    read_conda_yaml,
    read_model_env,
    read_python_env,
    read_requirements,
    read_workspace_env,
)

LOC = Location(file="requirements.txt", line=1)


@pytest.mark.parametrize(
    ("text", "name", "version", "channel"),
    [
        ("python=3.8.5", "python", "=3.8.5", None),
        ("numpy>=1.20,<2", "numpy", ">=1.20,<2", None),
        ("conda-forge::pandas", "pandas", None, "conda-forge"),
        ("conda-forge::pandas=1.3.5", "pandas", "=1.3.5", "conda-forge"),
        ("pip<=23.0", "pip", "<=23.0", None),
        ("scikit-learn", "scikit-learn", None, None),
        ("libgomp 11.2.0", "libgomp", "11.2.0", None),
    ],
)
def test_conda_match_specs(text: str, name: str, version: str | None, channel: str | None) -> None:
    dep = parse_conda_spec(text, LOC)
    assert not hasattr(dep, "severity"), dep
    assert (dep.name, dep.version, dep.channel) == (name, version, channel)  # type: ignore[union-attr]


def test_conda_build_string() -> None:
    dep = parse_conda_spec("numpy=1.21.2=py39h20f2e39_0", LOC)
    assert dep.version == "=1.21.2" and dep.build == "py39h20f2e39_0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "kind", "name"),
    [
        ("numpy==1.26.4", ReqKind.NAMED, "numpy"),
        ("scikit-learn>=1.3; python_version >= '3.9'", ReqKind.NAMED, "scikit-learn"),
        ("torch==2.13.0+cpu", ReqKind.NAMED, "torch"),
        ("mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl", ReqKind.NAMED, "mypkg"),
        ("https://example.com/pkgs/foo-1.2.3-py3-none-any.whl", ReqKind.URL, "foo"),
        ("git+https://github.com/org/repo.git@v1#egg=repo", ReqKind.VCS, "repo"),
        ("./wheels/bar-0.1-py3-none-any.whl", ReqKind.PATH, None),
        ("-e ./src/pkg", ReqKind.EDITABLE, None),
    ],
)
def test_requirement_lines(line: str, kind: ReqKind, name: str | None) -> None:
    parsed = parse_line(line, LOC)
    assert parsed.problem is None
    assert parsed.requirement is not None
    assert parsed.requirement.kind is kind
    assert parsed.requirement.name == name


@pytest.mark.parametrize(
    ("line", "option", "value"),
    [
        (
            "--extra-index-url https://pypi.example/simple",
            "--extra-index-url",
            "https://pypi.example/simple",
        ),
        ("--index-url=https://i.example/simple", "--index-url", "https://i.example/simple"),
        ("-f ./wheels", "--find-links", "./wheels"),
        ("--trusted-host pypi.example", "--trusted-host", "pypi.example"),
        ("--pre", "--pre", None),
    ],
)
def test_option_lines(line: str, option: str, value: str | None) -> None:
    parsed = parse_line(line, LOC)
    assert parsed.option is not None
    assert (parsed.option.option, parsed.option.value) == (option, value)


@pytest.mark.parametrize("line", ["numpy===", "scikit learn", "pandas>>1", "--bogus-flag x"])
def test_bad_lines_are_findings(line: str) -> None:
    parsed = parse_line(line, LOC)
    assert parsed.problem is not None
    assert parsed.problem.code == "EB110"
    assert parsed.problem.location == LOC


def test_requirements_file_nested_and_lines(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# top\nnumpy==1.26.4\n\n-r more.txt\n-c constraints.txt\npandas \\\n  >=2.0\n"
    )
    (tmp_path / "more.txt").write_text("scipy==1.13.0\n")
    (tmp_path / "constraints.txt").write_text("urllib3<3\n")
    parsed = read_requirements(tmp_path, "requirements.txt")
    got = [(r.name, r.location.file, r.location.line) for r in parsed.requirements]
    assert got == [
        ("numpy", "requirements.txt", 2),
        ("scipy", "more.txt", 1),
        ("pandas", "requirements.txt", 6),
    ]
    assert [(c.name, c.location.file) for c in parsed.constraints] == [
        ("urllib3", "constraints.txt")
    ]
    assert parsed.problems == ()


def test_requirements_include_cannot_escape(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "outside.txt").write_text("evil==1\n")
    (model / "requirements.txt").write_text("-r ../outside.txt\n")
    parsed = read_requirements(model, "requirements.txt")
    assert [p.code for p in parsed.problems] == ["EB104"]
    assert parsed.requirements == ()


def test_conda_yaml_locations(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text(
        "name: env\nchannels:\n- conda-forge\ndependencies:\n- python=3.8.12\n- pip<=21.2\n"
        "- conda-forge::libgomp\n- pip:\n  - mlflow\n  - --extra-index-url https://u:secret@pkgs.example/simple\n"
        "  - fastai==2.4.1\n"
    )
    conda = read_conda_yaml(tmp_path, "conda.yaml")
    assert conda.python is not None and conda.python.version == "3.8.12"
    assert conda.python.location.line == 5
    assert [(r.name, r.location.line, r.location.field) for r in conda.pip.requirements] == [
        ("mlflow", 9, "dependencies[3].pip[0]"),
        ("fastai", 11, "dependencies[3].pip[2]"),
    ]
    assert conda.pip.options[0].option == "--extra-index-url"
    assert "secret" not in str(conda.pip.options[0].to_json())
    assert [d.name for d in conda.conda] == ["python", "pip", "libgomp"]
    assert conda.channels == ("conda-forge",)


def test_conda_yaml_collects_every_problem(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text(
        "dependencies:\n- python=3.8\n- 42abc===\n- pip:\n  - numpy===\n  - pandas>>1\n- {foo: bar}\n"
    )
    conda = read_conda_yaml(tmp_path, "conda.yaml")
    assert [(p.code, p.location.line) for p in conda.problems] == [
        ("EB112", 3),
        ("EB110", 5),
        ("EB110", 6),
        ("EB102", 7),
    ]


def test_python_env(tmp_path: Path) -> None:
    (tmp_path / "python_env.yaml").write_text(
        "python: 3.10.12\nbuild_dependencies:\n- pip==23.3\n- setuptools\ndependencies:\n- -r requirements.txt\n"
    )
    (tmp_path / "requirements.txt").write_text("mlflow==2.9.2\nscikit-learn==1.3.2\n")
    env = read_python_env(tmp_path, "python_env.yaml")
    assert env.python is not None and env.python.version == "3.10.12"
    assert [r.name for r in env.build_dependencies] == ["pip", "setuptools"]
    assert [(r.name, r.location.file, r.location.line) for r in env.dependencies.requirements] == [
        ("mlflow", "requirements.txt", 1),
        ("scikit-learn", "requirements.txt", 2),
    ]


def test_model_env_precedence_and_python_pins(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text("dependencies:\n- python=3.9.1\n- pip:\n  - numpy==1.0\n")
    (tmp_path / "python_env.yaml").write_text(
        "python: 3.10.2\ndependencies:\n- -r requirements.txt\n"
    )
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    env = read_model_env(
        tmp_path, conda_path="conda.yaml", virtualenv_path="python_env.yaml", mlmodel_python=None
    )
    # the files disagree on numpy: reported, and MLflow's virtualenv path is followed
    assert [(p.code, p.location.file, p.location.line) for p in env.problems] == [
        ("EB113", "requirements.txt", 1)
    ]
    assert env.followed == "python_env.yaml"
    assert env.spec.python is not None and env.spec.python.version == "3.10.2"
    assert [p.version for p in env.spec.python_pins] == ["3.10.2", "3.9.1"]
    assert [r.raw for r in env.spec.requirements] == ["numpy==1.26.4"]
    assert env.spec.files == ("conda.yaml", "python_env.yaml", "requirements.txt")


def test_missing_declared_env_file(tmp_path: Path) -> None:
    """No environment file at all: one EB108 warning naming the missing file, derived."""
    env = read_model_env(
        tmp_path, conda_path="conda.yaml", virtualenv_path=None, mlmodel_python=None
    )
    assert [(p.code, p.severity, p.location.file, p.location.field) for p in env.problems] == [
        ("EB108", Severity.WARNING, "MLmodel", "conda")
    ]
    assert env.followed == "MLmodel"


def test_missing_declared_env_file_with_another_present(tmp_path: Path) -> None:
    """MLflow falls back to the files present: a warning, not an error."""
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    env = read_model_env(
        tmp_path, conda_path="conda.yaml", virtualenv_path=None, mlmodel_python=None
    )
    assert [(p.code, p.severity, p.location.field) for p in env.problems] == [
        ("EB103", Severity.WARNING, "conda")
    ]
    assert env.followed == "requirements.txt"
    assert [r.raw for r in env.spec.requirements] == ["numpy==1.26.4"]


def test_workspace_env(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: sklearn-serving\nversion: '3'\n"
        "image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
        "conda_file: conda.yml\n"
        "inference_config:\n  liveness_route: {port: 5001, path: /}\n"
    )
    (tmp_path / "conda.yml").write_text(
        "dependencies:\n- python=3.10\n- pip:\n  - scikit-learn==1.4.2\n"
    )
    env = read_workspace_env(tmp_path / "env.yml")
    assert env.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert env.version == "3"
    assert env.spec.python is not None and env.spec.python.version == "3.10"
    assert [r.name for r in env.spec.requirements] == ["scikit-learn"]
    assert env.inference_config["liveness_route"]["port"] == 5001


def test_workspace_env_inline_conda_and_errors(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(
        "name: x\nimage: 'bad image ref'\nbogus: 1\nconda_file:\n  dependencies:\n  - python=3.11\n"
    )
    with pytest.raises(ProblemsError) as info:
        read_workspace_env(tmp_path / "env.yml")
    assert sorted(p.code for p in info.value.problems) == ["EB102", "EB102"]
    assert {p.location.line for p in info.value.problems} == {2, 3}


def test_workspace_env_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_workspace_env(tmp_path / "nope.yml")
    assert info.value.code == "EB103"


def test_redact() -> None:
    assert redact("https://user:tok@host/simple") == "https://****@host/simple"
    assert redact("--extra-index-url https://tok@h/x") == "--extra-index-url https://****@h/x"
    assert redact("https://host/simple") == "https://host/simple"


def test_python_version_written_as_a_yaml_float(tmp_path: Path) -> None:
    """`python: 3.10` is the float 3.1 to YAML; the version as written is kept."""
    (tmp_path / "python_env.yaml").write_text("python: 3.10\ndependencies: []\n")
    env = read_python_env(tmp_path, "python_env.yaml")
    assert env.python is not None and env.python.version == "3.10"
