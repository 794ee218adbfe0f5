"""The resolver without the network: target, static pass, override findings, the uv
adapter's parsers, and real (offline) uv resolutions from the tiny wheelhouse."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from packaging.version import Version

from envbuild._adapters import uv as _uv
from envbuild.cli import main
from envbuild.errors import InputError
from envbuild.findings import Finding
from envbuild.read import read_model, read_workspace_env
from envbuild.resolve import (
    CODES,
    Resolution,
    override_findings,
    parse_failure,
    resolve,
    static_findings,
    target_for,
)
from envbuild.resolve.lock import read_lock, source_label
from tests.helpers import DATA, EXAMPLES, SCHEMAS

CASES = DATA / "resolve"
WHEELHOUSE = CASES / "wheelhouse"
EXAMPLE = EXAMPLES / "sklearn-credit"
SCHEMA = json.loads((SCHEMAS / "envelope-v1.schema.json").read_text())


def _where(f: Finding) -> str:
    return f"{f.location.file}:{f.location.line}"


def _by_code(findings: tuple[Finding, ...] | list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


# --- target -----------------------------------------------------------------------------


def test_target_is_the_models_python_by_default() -> None:
    target, findings = target_for(read_model(EXAMPLE))
    assert target.python == Version("3.11.7")
    assert target.platform == "linux/amd64"
    assert target.uv_platform == "x86_64-manylinux_2_28"
    assert findings == ()


def test_target_override_and_arm64() -> None:
    target, _ = target_for(read_model(EXAMPLE), python_version="3.12", platform="linux/arm64")
    assert (target.python, target.uv_platform) == (Version("3.12"), "aarch64-manylinux_2_28")
    assert target.marker_env()["platform_machine"] == "aarch64"
    assert target.marker_env()["python_version"] == "3.12"


@pytest.mark.parametrize(
    ("python", "platform"), [("3", "linux/amd64"), ("three", "linux/amd64"), ("3.11", "win")]
)
def test_bad_target_is_an_input_error(python: str, platform: str) -> None:
    with pytest.raises(InputError):
        target_for(read_model(EXAMPLE), python_version=python, platform=platform)


def test_python_disagreement_names_every_file() -> None:
    target, findings = target_for(read_model(CASES / "python-disagree"))
    assert target.python == Version("3.10.14")  # python_env.yaml wins, as in MLflow
    (f,) = _by_code(findings, "EB300")
    assert _where(f) == "conda.yaml:4"
    for where in ("python_env.yaml:1", "conda.yaml:4", "MLmodel:9"):
        assert where in f.message


# --- static pass ------------------------------------------------------------------------


def test_static_findings_point_at_lines() -> None:
    folder = read_model(CASES / "static-mix")
    target, _ = target_for(folder)
    found = {(f.code, _where(f)) for f in static_findings(folder, target)}
    assert found == {
        ("EB304", "requirements.txt:2"),  # pywin32; sys_platform == 'win32'
        ("EB306", "requirements.txt:3"),  # requests
        ("EB306", "requirements.txt:4"),  # pandas>=2.0
        ("EB306", "requirements.txt:5"),  # pandas<4
        ("EB303", "requirements.txt:5"),  # pandas twice, compatible
        ("EB305", "conda.yaml:6"),  # cudatoolkit: native
        ("EB305", "conda.yaml:7"),  # lightgbm: conda-only Python package
    }
    (lgbm,) = [f for f in static_findings(folder, target) if _where(f) == "conda.yaml:7"]
    assert "lightgbm==4.3.0" in lgbm.hint


def test_contradictory_pins_are_found_without_the_network() -> None:
    folder = read_model(CASES / "contradictory-pins")
    target, _ = target_for(folder)
    resolution = resolve(folder, target)  # stops before uv: the conflict is explained
    assert resolution.lock is None
    (f,) = _by_code(resolution.findings, "EB302")
    assert _where(f) == "requirements.txt:8"
    assert "requirements.txt:4" in f.message and "scikit-learn==1.3.0" in f.message


def test_example_has_no_static_problems() -> None:
    folder = read_model(EXAMPLE)
    target, _ = target_for(folder)
    assert static_findings(folder, target) == ()


# --- workspace override -----------------------------------------------------------------


def test_override_dropping_the_flavor_library() -> None:
    folder = read_model(EXAMPLE)
    override = read_workspace_env(CASES / "overrides" / "drops-sklearn.yml")
    findings = override_findings(folder, override)
    (f,) = _by_code(findings, "EB330")
    assert f.location.file is not None and f.location.file.endswith("drops-sklearn.yml")
    assert f.location.line == 13  # its pip: list
    assert "scikit-learn" in f.message and "requirements.txt:4" in f.message
    dropped = {m for g in _by_code(findings, "EB333") for m in ("skops", "torch") if m in g.message}
    assert dropped == {"skops", "torch"}
    assert not _by_code(findings, "EB332")  # it keeps mlflow-skinny


# --- uv adapter -------------------------------------------------------------------------


def test_parse_failure_reads_uv_derivations() -> None:
    text = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because pandas==2.2.3 depends on numpy{python_full_version < '3.11'}>=1.22.4"
        " and you require numpy==1.21.6, we can conclude that your requirements and "
        "pandas==2.2.3 are incompatible.\n"
        "         And because you require pandas==2.2.3, we can conclude that your "
        "requirements are unsatisfiable.\n"
    )
    facts = parse_failure(text)
    assert [n for n, _ in facts.required] == ["numpy", "pandas"]
    assert [(e.src, e.dst, e.dst_text) for e in facts.edges] == [
        ("pandas", "numpy", "numpy>=1.22.4")
    ]
    py = parse_failure(
        "error: No solution found when resolving dependencies\n"
        "  cause: Because the requested Python version (>=3.10) does not satisfy Python>=3.11"
        " and scikit-learn==1.9.1 depends on Python>=3.11, we can conclude that "
        "scikit-learn==1.9.1 cannot be used.\n"
    )
    assert py.python_needs == (("scikit-learn", "scikit-learn==1.9.1", "Python>=3.11"),)


def test_parse_compiled_output() -> None:
    text = (
        "a==1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via -r requirements.in\n"
        "b==2.0 \\\n    --hash=sha256:cc\n    # via\n    #   -r requirements.in\n    #   a\n"
    )
    a, b = _uv.parse_compiled(text)
    assert (a.name, a.version, a.hashes, a.via) == (
        "a",
        "1.0",
        ("sha256:aa", "sha256:bb"),
        ("-r requirements.in",),
    )
    assert b.via == ("-r requirements.in", "a")


# --- real offline resolutions from the wheelhouse ---------------------------------------


def _offline(name: str):
    folder = read_model(CASES / name)
    target, _ = target_for(folder)
    return resolve(folder, target, find_links=[WHEELHOUSE], offline=True, include_serving=False)


def test_offline_resolve_from_a_wheelhouse() -> None:
    resolution = _offline("wheelhouse-ok")
    assert resolution.ok and resolution.lock is not None
    lock = resolution.lock
    assert [(p.name, str(p.version)) for p in lock.pins] == [
        ("ebdemo-app", "1.0"),
        ("ebdemo-core", "1.5"),
    ]
    core = lock.pin("ebdemo-core")
    assert core is not None
    wheel = WHEELHOUSE / "ebdemo_core-1.5-py3-none-any.whl"
    assert core.hashes == ("sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest(),)
    assert core.requested_by == ("ebdemo-app",)
    assert lock.pin("ebdemo-app").requested_by == ("requirements.txt:1",)  # type: ignore[union-attr]
    assert lock.text.startswith("# Generated by envbuild ")
    assert f"--find-links {WHEELHOUSE}\n" in lock.text
    # each pin names where uv took it from, a local folder by its name (no host path)
    assert {p.index for p in lock.pins} == {f"local directory {WHEELHOUSE.name}"}
    assert f"    # from local directory {WHEELHOUSE.name}\n" in lock.text
    assert read_lock(lock.text).pins == lock.pins
    assert _offline("wheelhouse-ok").lock.text == lock.text  # type: ignore[union-attr]


def test_offline_conflict_names_both_lines_and_a_fix() -> None:
    resolution = _offline("wheelhouse-conflict")
    assert resolution.lock is None
    (f,) = _by_code(resolution.findings, "EB310")
    assert _where(f) == "requirements.txt:1"
    assert "requirements.txt:2" in f.message
    assert "ebdemo-core>=1.0,<2" in f.message  # the dependency between them
    assert "ebdemo-core==1.5" in f.hint  # the nearest version that resolves


def test_offline_missing_package(tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(CASES / "wheelhouse-ok", model)
    (model / "requirements.txt").write_text("ebdemo-app==1.0\nebdemo-missing==0.1\n")
    folder = read_model(model)
    target, _ = target_for(folder)
    resolution = resolve(
        folder, target, find_links=[WHEELHOUSE], offline=True, include_serving=False
    )
    (f,) = _by_code(resolution.findings, "EB312")
    assert _where(f) == "requirements.txt:2" and "wheelhouse" in f.message


def test_offline_build_dependencies_the_wheelhouse_lacks_are_left_out() -> None:
    """python_env.yaml names pip==23.2.1, setuptools==84.2.1 and wheel; the wheelhouse has
    none of them: the lock is the requirements', and EB322 says each was not installed."""
    resolution = _offline("wheelhouse-ok")
    assert resolution.ok and resolution.lock is not None
    found = {f.message.split("'")[1]: f for f in _by_code(resolution.findings, "EB322")}
    assert sorted(found) == ["pip==23.2.1", "setuptools==84.2.1", "wheel"]
    assert all("is not available" in f.message for f in found.values())
    assert _where(found["pip==23.2.1"]) == "python_env.yaml:3"


def _with_build_deps(tmp_path: Path, *lines: str) -> Resolution:
    model = tmp_path / "m"
    shutil.copytree(CASES / "wheelhouse-ok", model)
    (model / "requirements.txt").write_text("ebdemo-app==1.0\n")
    deps = "".join(f"- {line}\n" for line in lines)
    (model / "python_env.yaml").write_text(
        f"python: 3.11.7\nbuild_dependencies:\n{deps}dependencies:\n- -r requirements.txt\n"
    )
    folder = read_model(model)
    target, _ = target_for(folder)
    return resolve(folder, target, find_links=[WHEELHOUSE], offline=True, include_serving=False)


def test_offline_build_dependency_pin_is_locked(tmp_path: Path) -> None:
    resolution = _with_build_deps(tmp_path, "ebdemo-core==1.0")
    assert resolution.ok and resolution.lock is not None
    pin = resolution.lock.pin("ebdemo-core")
    assert pin is not None and str(pin.version) == "1.0"
    assert "python_env.yaml:3: build_dependencies[0]" in pin.requested_by
    assert not _by_code(resolution.findings, "EB322")


def test_offline_build_dependency_pin_the_requirements_exclude_yields(tmp_path: Path) -> None:
    """ebdemo-app needs ebdemo-core>=1.0,<2: a build dependency pin of 2.0 is what MLflow's
    second pip install would replace, so the lock takes what the requirements allow."""
    resolution = _with_build_deps(tmp_path, "ebdemo-core==2.0", "pip==23.2.1")
    assert resolution.ok and resolution.lock is not None
    assert str(resolution.lock.pin("ebdemo-core").version) == "1.5"  # type: ignore[union-attr]
    messages = sorted(f.message for f in _by_code(resolution.findings, "EB322"))
    assert messages == [
        "'ebdemo-core==2.0' cannot be installed with the model's requirements; "
        "ebdemo-core 1.5 is locked instead",
        "'pip==23.2.1' is not available from the index or --find-links; it is not installed",
    ]


# --- the command ------------------------------------------------------------------------


def _lock_cli(model: Path, *extra: str):
    return CliRunner().invoke(
        main,
        ["lock", str(model), "--offline", "--find-links", str(WHEELHOUSE), "--no-serving", *extra],
    )


def test_lock_command_writes_checks_and_detects_staleness(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(CASES / "wheelhouse-ok", model)
    first = _lock_cli(model)
    assert first.exit_code == 0, first.output
    lock_file = model / "requirements.lock"
    text = lock_file.read_text()
    assert "--python-version 3.11.7 --platform linux/amd64" in text.splitlines()[0]
    assert _lock_cli(model).exit_code == 0
    assert lock_file.read_text() == text  # byte-identical for identical inputs
    assert _lock_cli(model, "--check").exit_code == 0
    (model / "requirements.txt").write_text("ebdemo-app==1.0\nebdemo-core==1.0\n")
    stale = _lock_cli(model, "--check", "--format", "json")
    assert stale.exit_code == 1
    doc = json.loads(stale.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["result"]["stale"] is True
    (f,) = [f for f in doc["findings"] if f["code"] == "EB340"]
    assert "ebdemo-core 1.5 -> 1.0" in f["message"]
    assert lock_file.read_text() == text  # --check writes nothing


def test_lock_command_dry_run_and_output(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(CASES / "wheelhouse-ok", model)
    dry = _lock_cli(model, "--dry-run")
    assert dry.exit_code == 0 and "ebdemo-core==1.5" in dry.stdout
    assert not (model / "requirements.lock").exists()
    out = tmp_path / "elsewhere" / "env.lock"
    assert _lock_cli(model, "--output", str(out)).exit_code == 0
    assert out.read_text() == dry.stdout


def test_lock_command_conflict_exit_1(tmp_path: Path) -> None:
    result = _lock_cli(CASES / "wheelhouse-conflict", "--dry-run")
    assert result.exit_code == 1
    assert "ERROR EB310 requirements.txt:1:" in result.stderr


def test_codes_are_in_the_resolver_range() -> None:
    assert all(code.startswith("EB3") and len(code) == 5 for code in CODES)


def test_credentials_never_reach_the_lock_or_output(tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(CASES / "wheelhouse-ok", model)
    (model / "requirements.txt").write_text(
        "--extra-index-url https://ci-user:s3cret-token@pypi.example.invalid/simple\n"
        "--index-url https://${INDEX_USER}:${INDEX_TOKEN}@mirror.example.invalid/simple\n"
        "ebdemo-app==1.0\n"
    )
    result = _lock_cli(model, "--format", "json")
    assert result.exit_code == 0, result.output
    text = (model / "requirements.lock").read_text()
    assert "--extra-index-url https://pypi.example.invalid/simple\n" in text
    # an environment-variable reference is kept: pip expands it at install time
    assert "--index-url https://${INDEX_USER}:${INDEX_TOKEN}@mirror.example.invalid/simple" in text
    for out in (text, result.stdout, result.stderr):
        assert "s3cret" not in out


def test_wheel_check_asks_uv_once_per_missing_pin_and_stops_on_other_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Error path (a fake uv): each round sets aside the pin uv names, with the lock's own
    target and index; a failure that names no wheel-less pin ends the search, keeping
    what was found, rather than calling every pin a source build."""
    from envbuild.findings import Location
    from envbuild.read import PipOption
    from envbuild.resolve import source_builds
    from envbuild.resolve.lock import Lock, Pin
    from envbuild.resolve.target import Target

    asked: list[_uv.CompileRequest] = []
    answers = [
        "  cause: Because psutil==5.8.0 has no usable wheels and you require psutil==5.8.0, "
        "we can conclude that your requirements are unsatisfiable.",
        "error: Failed to fetch: `https://mirror.example.com/simple/numpy/`",
    ]

    def fake(req: _uv.CompileRequest, *, timeout: float = 600) -> _uv.CompileResult:
        asked.append(req)
        stderr = "error: No solution found when resolving dependencies\n" + answers.pop(0)
        return _uv.CompileResult(ok=False, stdout="", stderr=stderr, returncode=1, seconds=0)

    monkeypatch.setattr(_uv, "compile_requirements", fake)
    pins = tuple(
        Pin(name=n, version=Version(v), hashes=(), requested_by=())
        for n, v in (("numpy", "2.4.6"), ("psutil", "5.8.0"))
    )
    index = PipOption(
        option="--index-url", value="https://mirror.example.com/simple", location=Location()
    )
    lock = Lock(
        target=Target(python=Version("3.11"), platform="linux/arm64"),
        pins=pins,
        text="",
        options=(index,),
    )
    assert source_builds(lock) == ("psutil",)
    assert [r.requirements for r in asked] == [("numpy==2.4.6", "psutil==5.8.0"), ("numpy==2.4.6",)]
    first = asked[0]
    assert first.only_binary == (":all:",) and first.no_deps and not first.generate_hashes
    assert first.platform == "aarch64-manylinux_2_28" and first.python_version == "3.11"
    assert first.index_url == "https://mirror.example.com/simple"


def test_a_package_from_an_index_only_uvs_own_configuration_names_is_eb414(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv reads uv.toml (here through UV_CONFIG_FILE) on the machine that locks; the image
    build never sees it. Packages it took from there are EB325; named in the lock, not."""
    mirror = tmp_path / "team mirror"
    shutil.copytree(WHEELHOUSE, mirror)
    (tmp_path / "uv.toml").write_text(f'find-links = ["{mirror}"]\nno-index = true\n')
    monkeypatch.setenv("UV_CONFIG_FILE", str(tmp_path / "uv.toml"))
    folder = read_model(CASES / "wheelhouse-ok")
    target, _ = target_for(folder)
    resolution = resolve(folder, target, offline=True, include_serving=False)
    assert resolution.ok
    (f,) = _by_code(resolution.findings, "EB325")
    assert f.message.startswith("ebdemo-app==1.0, ebdemo-core==1.5 came from file://")
    assert "team%20mirror" in f.message and "--extra-index-url" in f.hint
    told = resolve(folder, target, find_links=[mirror], offline=True, include_serving=False)
    assert told.ok and not _by_code(told.findings, "EB325")
    monkeypatch.delenv("UV_CONFIG_FILE")
    plain = resolve(folder, target, find_links=[WHEELHOUSE], offline=True, include_serving=False)
    assert plain.ok and not _by_code(plain.findings, "EB325")


def test_a_pins_source_is_shown_without_credentials_or_host_paths() -> None:
    assert source_label("https://alice:s3cr3t@pypi.corp.example/simple/") == (
        "https://****@pypi.corp.example/simple"
    )
    assert source_label("https://signed.example/simple?sig=abc") == (
        "https://signed.example/simple?sig=****"
    )
    assert source_label("file:///home/alice/team%20mirror") == "local directory team mirror"
    assert source_label("/opt/wheels/") == "local directory wheels"
    assert source_label("https://pypi.org/simple") == "https://pypi.org/simple"
