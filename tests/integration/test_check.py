"""envbuild check: a case per finding code on a broken copy of a real example, asserting
the code, file, line and exit code; the clean examples pass; every output format is
validated (JSON schema, JUnit through an XML parser, GitHub annotation lines)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from referencing import Registry, Resource

from envbuild.cli import main
from tests.helpers import DATA, EXAMPLES, ROOT, SCHEMAS

BROKEN = DATA / "broken"
CORPUS = DATA.parent / "corpus" / "models"
PICKLES = DATA / "pickles"
OVERRIDES = DATA / "resolve" / "overrides"
SCHEMA = json.loads((SCHEMAS / "envelope-v1.schema.json").read_text())
CHECK_SCHEMA = json.loads((SCHEMAS / "check-report-v1.schema.json").read_text())
REGISTRY = Registry().with_resource(SCHEMA["$id"], Resource.from_contents(SCHEMA))
CHECK_VALIDATOR = jsonschema.Draft202012Validator(CHECK_SCHEMA, registry=REGISTRY)


def run_check(*args: str, cwd: Path | None = None) -> tuple[int, dict, str]:
    old = Path.cwd()
    if cwd:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["check", "--format", "json", *args])
    finally:
        os.chdir(old)
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    if doc["result"] is not None:
        CHECK_VALIDATOR.validate(doc["result"])
    assert "Traceback" not in result.stderr
    return result.exit_code, doc, result.stderr


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def credit(tmp: Path) -> Path:
    """sklearn-credit without MLflow's spurious torch pin (keeps resolution light)."""
    dst = tmp / "sklearn-credit"
    shutil.copytree(EXAMPLES / "sklearn-credit", dst)
    for name in ("requirements.txt", "conda.yaml"):
        text = (dst / name).read_text()
        (dst / name).write_text(
            "\n".join(line for line in text.splitlines() if "torch" not in line) + "\n"
        )
    return dst


def _as_is(name: str, tmp: Path) -> Path:
    dst = tmp / name
    shutil.copytree(EXAMPLES / name, dst)
    return dst


def pyfunc(tmp: Path) -> Path:
    dst = tmp / "pyfunc-custom"
    shutil.copytree(EXAMPLES / "pyfunc-custom", dst)
    return dst


Mutation = Callable[[Path], tuple[Path, list[str]]]


def _flavors_not_mapping(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    text = (d / "MLmodel").read_text()
    head, _, _ = text.partition("flavors:")
    (d / "MLmodel").write_text(head + "flavors: 3\n")
    return d, ["--offline"]


def _bad_example_json(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    (d / "input_example.json").write_text('{"columns": [1,\n')
    return d, ["--offline"]


def _remote_include(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "requirements.txt", "numpy==", "-r https://example.com/more.txt\nnumpy==")
    return d, ["--offline"]


def _bad_conda_spec(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "conda.yaml", "- pip<=23.2.1", "- pip<=23.2.1\n- '!!nonsense'")
    return d, ["--offline"]


def _settings_unknown_key(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    (tmp / "pyproject.toml").write_text("[tool.envbuild]\nstrictly = true\n")
    return d, ["--offline"]


def _copy_pickle(name: str, base: Callable[[Path], Path] = pyfunc) -> Mutation:
    def mutate(tmp: Path) -> tuple[Path, list[str]]:
        d = base(tmp)
        shutil.copy(
            PICKLES / name, d / "artifacts" / name if (d / "artifacts").is_dir() else d / name
        )
        return d, ["--offline"]

    return mutate


def _write_artifact(name: str, data: bytes) -> Mutation:
    def mutate(tmp: Path) -> tuple[Path, list[str]]:
        d = pyfunc(tmp)
        (d / "artifacts" / name).write_bytes(data)
        return d, ["--offline"]

    return mutate


def _unshipped_module(tmp: Path) -> tuple[Path, list[str]]:
    """A real pickle of an instance of pre_processor.Scale, a module that existed while
    pickling and is gone (not shipped under code/)."""
    d = pyfunc(tmp)
    module = types.ModuleType("pre_processor")
    exec("class Scale:\n    pass\n", module.__dict__)
    module.Scale.__module__ = "pre_processor"
    sys.modules["pre_processor"] = module
    try:
        (d / "artifacts" / "pre.pkl").write_bytes(pickle.dumps(module.Scale()))
    finally:
        del sys.modules["pre_processor"]
    return d, []


def _corpus(name: str) -> Mutation:
    return lambda t: (CORPUS / name, ["--offline"])


def _code_syntax_error(tmp: Path) -> tuple[Path, list[str]]:
    d = pyfunc(tmp)
    (d / "code" / "broken_helper.py").write_text("def oops(:\n    pass\n")
    return d, ["--offline"]


def _undeclared_import(tmp: Path) -> tuple[Path, list[str]]:
    d = pyfunc(tmp)
    edit(d / "code" / "credit_scorer.py", "import ", "import lightgbm  # added\nimport ")
    return d, []


def _python_disagree(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "conda.yaml", "python=3.11.7", "python=3.10.12")
    return d, ["--offline"]


def _req_line(old: str, new: str, offline: bool = True) -> Mutation:
    def mutate(tmp: Path) -> tuple[Path, list[str]]:
        d = credit(tmp)
        edit(d / "requirements.txt", old, new)
        return d, ["--offline"] if offline else []

    return mutate


def _python(version: str) -> Mutation:
    def mutate(tmp: Path) -> tuple[Path, list[str]]:
        return credit(tmp), ["--python-version", version]

    return mutate


def _conda_only(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "conda.yaml", "- pip<=23.2.1", "- pip<=23.2.1\n- libgomp=13.2.0")
    return d, ["--offline"]


def _spark(tmp: Path) -> tuple[Path, list[str]]:
    dst = tmp / "spark"
    shutil.copytree(ROOT / "tests" / "corpus" / "models" / "mlflow3.17.2-py3.11-spark", dst)
    return dst, ["--offline"]


def _no_python(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "python_env.yaml", "python: 3.11.7\n", "")
    edit(d / "conda.yaml", "- python=3.11.7\n", "")
    edit(d / "MLmodel", "    python_version: 3.11.7\n", "")
    return d, ["--offline"]


def _trained_version(tmp: Path) -> tuple[Path, list[str]]:
    d = credit(tmp)
    edit(d / "MLmodel", "sklearn_version: 1.9.1", "sklearn_version: 1.8.0")
    return d, []


def _override(name: str, body: str | None = None) -> Mutation:
    def mutate(tmp: Path) -> tuple[Path, list[str]]:
        d = credit(tmp)
        env = tmp / "env.yml"
        if body is None:
            shutil.copy(OVERRIDES / name, env)
        else:
            env.write_text(body)
        return d, ["--offline", "--env-override", str(env)]

    return mutate


_ENV = """name: shared
image: python:3.11-slim
conda_file:
  dependencies:
    - python={python}
    - pip:
{pip}
"""


def _env(python: str, *pins: str) -> str:
    return _ENV.format(python=python, pip="\n".join(f"      - {p}" for p in pins))


FULL = ("mlflow-skinny==3.17.2", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "skops==0.16.0")

# code -> (mutation, exit code, file, line or None)
CASES: dict[str, tuple[Mutation, int, str | None, int | None]] = {
    "EB100": (lambda t: (BROKEN / "no-mlmodel", ["--offline"]), 2, "MLmodel", None),
    "EB101": (lambda t: (BROKEN / "invalid-yaml", ["--offline"]), 2, "MLmodel", 4),
    "EB102": (_flavors_not_mapping, 2, "MLmodel", 1),
    "EB103": (lambda t: (BROKEN / "missing-data", ["--offline"]), 2, "MLmodel", 7),
    "EB104": (lambda t: (BROKEN / "escape-dotdot", ["--offline"]), 2, "MLmodel", 7),
    "EB105": (lambda t: (BROKEN / "bad-signature", ["--offline"]), 2, "MLmodel", 28),
    "EB106": (_bad_example_json, 2, "input_example.json", 2),
    "EB108": (_corpus("mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files"), 0, "MLmodel", None),
    "EB110": (lambda t: (BROKEN / "bad-requirement", ["--offline"]), 2, "requirements.txt", 4),
    "EB111": (_remote_include, 2, "requirements.txt", 2),
    "EB112": (_bad_conda_spec, 2, "conda.yaml", 6),
    "EB113": (_corpus("mlflow2.9.2-py3.9-lightgbm-disagreeing-files"), 0, "conda.yaml", 8),
    "EB120": (
        lambda t: (BROKEN / "example-mismatch", ["--offline"]),
        1,
        "input_example.json",
        None,
    ),
    "EB130": (_settings_unknown_key, 2, "pyproject.toml", None),
    "EB200": (_copy_pickle("main_ref.pkl"), 1, "artifacts/main_ref.pkl", None),
    "EB210": (
        _write_artifact(
            "truncated.pkl",
            b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\xff\xfe",
        ),
        1,
        "artifacts/truncated.pkl",
        None,
    ),
    "EB211": (  # what cannot be opened cannot be verified: unsafe, fails the check
        _write_artifact("model.joblib", b"\x78\x9c" + b"\x00" * 64),
        1,
        "artifacts/model.joblib",
        None,
    ),
    "EB212": (_code_syntax_error, 0, "code/broken_helper.py", 1),
    "EB230": (_undeclared_import, 1, "code/credit_scorer.py", None),
    "EB232": (_unshipped_module, 1, "artifacts/pre.pkl", None),
    "EB231": (lambda t: (_as_is("sklearn-credit", t), []), 0, "requirements.txt", 7),
    "EB233": (_spark, 0, "MLmodel", None),
    "EB300": (_python_disagree, 0, "conda.yaml", 4),
    "EB301": (_req_line("numpy==", "-e ./src/helper\nnumpy=="), 1, "requirements.txt", 2),
    "EB302": (_req_line("numpy==2.4.6", "numpy==2.4.6\nnumpy<2"), 1, "requirements.txt", 3),
    "EB303": (_req_line("numpy==2.4.6", "numpy==2.4.6\nnumpy>=2"), 0, "requirements.txt", 3),
    "EB304": (
        _req_line("numpy==", "pywin32==306; sys_platform == 'win32'\nnumpy=="),
        0,
        "requirements.txt",
        2,
    ),
    "EB305": (_conda_only, 0, "conda.yaml", 6),
    "EB306": (_req_line("scipy==1.17.1", "scipy"), 0, "requirements.txt", 5),
    "EB307": (_no_python, 0, "MLmodel", None),
    "EB310": (_req_line("numpy==2.4.6", "numpy==1.21.6", offline=False), 1, "requirements.txt", 2),
    "EB311": (_python("3.8"), 1, "requirements.txt", 1),
    "EB312": (
        _req_line(
            "scipy==1.17.1", "scipy==1.17.1\nenvbuild-no-such-package-xyz==1.0", offline=False
        ),
        1,
        "requirements.txt",
        6,
    ),
    "EB313": (
        _req_line("scipy==1.17.1", "scipy==1.17.1\npywin32==306", offline=False),
        1,
        "requirements.txt",
        6,
    ),
    "EB315": (
        _req_line("numpy==", "--index-url http://127.0.0.1:9/simple\nnumpy==", offline=False),
        1,
        None,
        None,
    ),
    "EB320": (_trained_version, 0, "MLmodel", None),
    "EB330": (_override("drops-sklearn.yml"), 1, None, None),
    "EB331": (_override("", _env("3.11.7", "scikit-learn==0.24.2", *FULL)), 0, None, None),
    "EB332": (_override("", _env("3.11.7", "scikit-learn==1.9.1", *FULL[1:])), 0, None, None),
    "EB333": (_override("", _env("3.11.7", "scikit-learn==1.9.1", *FULL[:-1])), 0, None, None),
    "EB334": (_override("", _env("3.10.12", "scikit-learn==1.9.1", *FULL)), 0, None, None),
    "EB501": (_copy_pickle("dangerous_system.pkl"), 1, "artifacts/dangerous_system.pkl", None),
    "EB502": (
        _copy_pickle("cloudpickle_byvalue.pkl"),
        0,
        "artifacts/cloudpickle_byvalue.pkl",
        None,
    ),
}


@pytest.mark.network
@pytest.mark.parametrize("code", sorted(CASES))
def test_finding_code(code: str, tmp_path: Path) -> None:
    mutate, exit_code, file, line = CASES[code]
    folder, args = mutate(tmp_path)
    got_exit, doc, _ = run_check(*args, str(folder), cwd=tmp_path)
    matching = [
        f
        for f in doc["findings"]
        if f["code"] == code and (file is None or (f["file"] or "").endswith(file))
    ]
    assert matching, [(f["code"], f["file"], f["message"]) for f in doc["findings"]]
    finding = matching[0]
    if line is not None:
        assert finding["line"] == line, finding
    assert finding["message"] and finding["hint"]
    assert got_exit == exit_code, doc["findings"]


def test_unsafe_pickle_never_runs(tmp_path: Path) -> None:
    """The dangerous pickle's payload would create a file: check reads it and the file is
    never there."""
    folder = pyfunc(tmp_path)
    shutil.copy(PICKLES / "dangerous_system.pkl", folder / "artifacts" / "x.pkl")
    marker_text = (PICKLES / "dangerous_system.pkl").read_bytes()
    code, doc, _ = run_check("--offline", str(folder))
    assert code == 1
    assert any(f["code"] == "EB501" and f["severity"] == "unsafe" for f in doc["findings"])
    assert b"touch" in marker_text or b"system" in marker_text
    assert not Path("/tmp/envbuild-pwned").exists()


@pytest.mark.network
def test_clean_examples_pass_online() -> None:
    names = ["sklearn-credit", "pyfunc-custom", "pytorch-tensor", "fastai-legacy"]
    code, doc, _ = run_check(*(str(EXAMPLES / n) for n in names))
    assert code == 0, doc["findings"]
    assert [m["model"] for m in doc["result"]["models"]] == [str(EXAMPLES / n) for n in names]
    assert all(f["severity"] != "error" for f in doc["findings"])
    assert all(m["skipped"] == [] for m in doc["result"]["models"])


def test_offline_says_what_it_skipped() -> None:
    code, doc, _ = run_check("--offline", str(EXAMPLES / "sklearn-credit"))
    assert code == 0
    (model,) = doc["result"]["models"]
    assert model["skipped"] == [
        "resolution against the package index, drift and the unneeded-requirement check (--offline)"
    ]


def test_ignore_and_strict(tmp_path: Path) -> None:
    folder = credit(tmp_path)
    for name in ("requirements.txt", "conda.yaml"):  # both: files that disagree are EB113
        edit(folder / name, "scipy==1.17.1", "scipy")
    assert run_check("--offline", str(folder))[0] == 0
    assert run_check("--offline", "--strict", str(folder))[0] == 1
    code, doc, _ = run_check("--offline", "--strict", "--ignore", "EB306", str(folder))
    assert code == 0 and not [f for f in doc["findings"] if f["code"] == "EB306"]
    code, doc, _ = run_check("--offline", "--strict", "--ignore", "EB3xx", str(folder))
    assert code == 0


def test_settings_from_pyproject(tmp_path: Path) -> None:
    folder = credit(tmp_path)
    edit(folder / "requirements.txt", "scipy==1.17.1", "scipy")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.envbuild]\nstrict = true\noffline = true\nignore = ["EB999"]\n'
    )
    code, doc, _ = run_check(str(folder), cwd=tmp_path)
    assert code == 1 and doc["result"]["strict"] is True and doc["result"]["offline"] is True


def test_several_models_one_broken() -> None:
    code, doc, _ = run_check(
        "--offline", str(EXAMPLES / "sklearn-credit"), str(BROKEN / "invalid-yaml")
    )
    assert code == 2
    ok, bad = doc["result"]["models"]
    assert ok["ok"] is True and bad["input_error"] is True


def test_junit_parses(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--offline",
            "--format",
            "junit",
            str(EXAMPLES / "sklearn-credit"),
            str(BROKEN / "example-mismatch"),
        ],
    )
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        str(EXAMPLES / "sklearn-credit"),
        str(BROKEN / "example-mismatch"),
    ]
    failures = root.findall(".//failure")
    assert [f.get("type") for f in failures] == ["EB120", "EB120"]
    assert root.get("failures") == "2"


def test_github_annotations() -> None:
    result = CliRunner().invoke(
        main, ["check", "--offline", "--format", "github", str(BROKEN / "bad-requirement")]
    )
    assert result.exit_code == 2
    (line,) = result.stdout.splitlines()
    assert line.startswith(
        f"::error file={BROKEN / 'bad-requirement'}/requirements.txt,line=4,title=EB110::"
    )


def test_precommit_passes_model_files(tmp_path: Path) -> None:
    """As pre-commit calls it: file names, mapped to their model folders, deduplicated."""
    folder = credit(tmp_path)
    (tmp_path / "README.md").write_text("not a model\n")
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--offline",
            str(folder / "MLmodel"),
            str(folder / "requirements.txt"),
            str(tmp_path / "README.md"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": ok (") == 1
